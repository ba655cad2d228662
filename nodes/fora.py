"""Apply FORA: static interval reuse of every block's residual."""
from comfy_api.latest import io

from ..cache_core.policies import ReuseSchedule
from .apply import apply_cache
from .common_inputs import CATEGORY, cache_device_input, cached_model_output, model_input, window_inputs


class ApplyFORA(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DiTCacheApplyFORA",
            display_name="Apply FORA",
            category=CATEGORY,
            description="Fast-Forward Caching: compute every block every `interval` steps and reuse each block's "
                        "cached contribution in between. Deterministic: the speedup is known before you sample.",
            inputs=[
                model_input(),
                io.Int.Input("interval", default=3, min=1, max=20,
                             tooltip="Compute all blocks every N steps (1 = no caching). 2-3 is nearly lossless "
                                     "at 28+ steps; higher is faster and softer."),
                io.Int.Input("warmup_steps", default=1, min=0, max=100,
                             tooltip="Steps computed fully at the start, where the image layout forms. Start at 1-3."),
                *window_inputs(),
                cache_device_input(),
            ],
            outputs=[cached_model_output()],
            hidden=[io.Hidden.unique_id],
        )

    @staticmethod
    def policy(adapter, interval: int, warmup_steps: int) -> ReuseSchedule:
        """The node's policy (DiT Cache builds it the same way when it picks this node)."""
        return ReuseSchedule(interval, warmup_steps)

    @classmethod
    def execute(cls, model, interval: int, warmup_steps: int, start_percent: float, end_percent: float,
                cache_device: str) -> io.NodeOutput:
        patched = apply_cache(model, "FORA", lambda adapter: cls.policy(adapter, interval, warmup_steps),
                              node_id=cls.hidden.unique_id, start_percent=start_percent, end_percent=end_percent,
                              cache_device=cache_device)
        return io.NodeOutput(patched)
