"""Policies decide when to compute and what stands in for a skipped step; they never name a
model family."""
from .always_compute import AlwaysCompute
from .base import CachePolicy, StepAction, StepContext
from .block_caching import ProfiledBlockSchedule
from .fora import ReuseSchedule
from .magnitude import MagnitudeRatioThreshold, resample_ratios
from .planned import PlannedSchedule
from .taylorseer import TaylorForecastSchedule
from .teacache import AdaptiveThreshold

__all__ = [
    "AdaptiveThreshold", "AlwaysCompute", "CachePolicy", "MagnitudeRatioThreshold", "PlannedSchedule", "ProfiledBlockSchedule",
    "ReuseSchedule", "StepAction",
    "StepContext", "TaylorForecastSchedule", "resample_ratios",
]
