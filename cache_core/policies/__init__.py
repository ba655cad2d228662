"""Policies decide when to compute and what stands in for a skipped step; they never name a
model family."""
from .always_compute import AlwaysCompute
from .base import CachePolicy, StepAction, StepContext
from .fora import ReuseSchedule
from .magnitude import MagnitudeRatioThreshold, resample_ratios
from .planned import PlannedSchedule
from .taylorseer import TaylorForecastSchedule
from .teacache import AdaptiveThreshold

__all__ = [
    "AdaptiveThreshold", "AlwaysCompute", "CachePolicy", "MagnitudeRatioThreshold", "PlannedSchedule", "ReuseSchedule", "StepAction",
    "StepContext", "TaylorForecastSchedule", "resample_ratios",
]
