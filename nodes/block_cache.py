"""Block Cache (profiled): Block Caching's per-block schedule, each block recomputed when its own
accumulated change since it was last computed, read from a Block Profiler profile of the model,
reaches the threshold."""
from __future__ import annotations

from comfy_api.latest import io

from ..cache_core.policies import ProfiledBlockSchedule
from ..cache_core.profiles.profile_io import block_changes, profiled_part
from .apply import apply_cache
from .common_inputs import CATEGORY, cache_device_input, cached_model_output, model_input, window_inputs
from .profile_type import CacheProfile


class BlockCache(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DiTCacheBlockCache",
            display_name="Block Cache (profiled)",
            category=CATEGORY,
            description="Caches each transformer block on its own (Block Caching, Wimbauer et al.): a block is "
                        "recomputed when its accumulated change since it was last computed, measured by a Block "
                        "Profiler profile of this model, reaches the threshold; the other blocks reuse their own "
                        "cached contribution. The run report says how many block computes it ran.",
            inputs=[
                model_input(),
                CacheProfile.Input("profile", tooltip="A Block Profiler profile of this model (Load Cache Profile): "
                                                      "its per-block change per step sets each block's schedule."),
                io.Float.Input("threshold", default=0.15, min=0.0, max=10.0, step=0.01,
                               tooltip="Accumulated relative change at which a block is recomputed; higher skips "
                                       "more. Start at 0.15 and read the run report's 'blocks computed'; 0 computes "
                                       "every block."),
                io.Int.Input("max_skip", default=3, min=0, max=20,
                             tooltip="Recompute a block after this many reuses in a row, whatever the profile says."),
                *window_inputs(),
                cache_device_input(),
            ],
            outputs=[cached_model_output()],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, model, profile: dict, threshold: float, max_skip: int, start_percent: float, end_percent: float,
                cache_device: str) -> io.NodeOutput:
        def make_policy(adapter) -> ProfiledBlockSchedule:
            changes = block_changes(profile, adapter, adapter.blocks(model.model.diffusion_model))
            return ProfiledBlockSchedule(changes, threshold, max_skip, profiled_part(profile))

        return io.NodeOutput(apply_cache(model, "BlockCache", make_policy, node_id=cls.hidden.unique_id,
                                         start_percent=start_percent, end_percent=end_percent,
                                         cache_device=cache_device))
