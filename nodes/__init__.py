"""ComfyUI node definitions: thin wrappers over cache_core."""
from .block_cache import BlockCache
from .calibrated import CalibratedCache
from .fora import ApplyFORA
from .magnitude import MagnitudeThreshold
from .profiler import BlockProfiler, LoadCacheProfile
from .quality_check import CacheQualityCheck
from .speed import DiTCacheSpeed
from .taylorseer import TaylorSeerForecast
from .teacache import TeaCacheThreshold

NODE_LIST = [DiTCacheSpeed, ApplyFORA, TeaCacheThreshold, MagnitudeThreshold, TaylorSeerForecast, BlockCache,
             CalibratedCache, BlockProfiler, LoadCacheProfile, CacheQualityCheck]
