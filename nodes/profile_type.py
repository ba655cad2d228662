"""The socket type that carries a Block Profiler profile between nodes."""
from comfy_api.latest import io

CacheProfile = io.Custom("DIT_CACHE_PROFILE")
