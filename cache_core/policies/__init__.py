"""Policies decide when to compute; they never name a model family."""
from .always_compute import AlwaysCompute
from .base import CachePolicy, StepAction, StepContext
from .fora import ReuseSchedule
from .magnitude import DEFAULT_MAGNITUDE_PRESET, MAGNITUDE_PRESETS, MagnitudeRatioThreshold, resample_ratios
from .taylorseer import TaylorForecastSchedule
from .teacache import DEFAULT_PRESET_FOR_FAMILY, TEACACHE_PRESETS, AdaptiveThreshold

__all__ = [
    "AdaptiveThreshold", "AlwaysCompute", "CachePolicy", "DEFAULT_MAGNITUDE_PRESET", "DEFAULT_PRESET_FOR_FAMILY",
    "MAGNITUDE_PRESETS", "MagnitudeRatioThreshold", "ReuseSchedule", "StepAction", "StepContext",
    "TEACACHE_PRESETS", "TaylorForecastSchedule", "resample_ratios",
]
