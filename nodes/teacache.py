"""TeaCache-style Threshold: adaptive whole-stack reuse driven by the change of the first
block's modulated input, rescaled by a published or profiled polynomial."""
from __future__ import annotations

from comfy_api.latest import io

from ..cache_core.adapters import teacache_presets
from ..cache_core.profiles.curve_sources import AUTO, teacache_coefficients, uncalibrated_note
from ..cache_core.policies import AdaptiveThreshold
from .apply import apply_cache
from .common_inputs import CATEGORY, cache_device_input, cached_model_output, model_input, window_inputs
from .profile_type import CacheProfile


def recommended_thresholds() -> str:
    """The published starting thresholds, read from the adapters' presets."""
    return ", ".join(f"{preset.name} {preset.threshold}" for preset in teacache_presets())


class TeaCacheThreshold(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DiTCacheTeaCacheThreshold",
            display_name="TeaCache-style Threshold",
            category=CATEGORY,
            description="Skips whole steps while the accumulated, rescaled change of the first block's modulated "
                        "input stays under the threshold, reusing the cached output of the block stack. Each "
                        "step's change is used two steps later, so deciding never waits for the GPU.",
            inputs=[
                model_input(),
                io.Float.Input("rel_l1_thresh", default=0.4, min=0.0, max=10.0, step=0.01,
                               tooltip="Higher skips more. Published starting points: "
                                       f"{recommended_thresholds()}. 0 computes every step."),
                io.Combo.Input("coefficients", options=[AUTO, *(p.name for p in teacache_presets())], default=AUTO,
                               tooltip="Rescale polynomial. 'auto' picks the published one for the model's family "
                                       "(a family without one uses the raw signal until profiled); a connected "
                                       "profile overrides this."),
                io.Int.Input("max_consecutive_reuse", default=3, min=0, max=50,
                             tooltip="Compute after this many reused steps in a row, whatever the threshold says "
                                     "(0 = no limit). 2-4 guards against drift."),
                *window_inputs(),
                cache_device_input(),
                CacheProfile.Input("profile", optional=True,
                                   tooltip="A profile of this model from Load Cache Profile: its fitted polynomial "
                                           "replaces the preset."),
            ],
            outputs=[cached_model_output()],
            hidden=[io.Hidden.unique_id],
        )

    @staticmethod
    def policy(adapter, rel_l1_thresh: float, coefficients: str, max_consecutive_reuse: int,
               profile: dict | None = None) -> AdaptiveThreshold:
        """The node's policy for `adapter`'s family (DiT Cache builds it the same way when it picks
        this node)."""
        return AdaptiveThreshold(teacache_coefficients(adapter, coefficients, profile), rel_l1_thresh,
                                 max_consecutive_reuse)

    @classmethod
    def execute(cls, model, rel_l1_thresh: float, coefficients: str, max_consecutive_reuse: int,
                start_percent: float, end_percent: float, cache_device: str, profile: dict | None = None) -> io.NodeOutput:
        def make_policy(adapter) -> AdaptiveThreshold:
            return cls.policy(adapter, rel_l1_thresh, coefficients, max_consecutive_reuse, profile)

        patched = apply_cache(model, "TeaCache", make_policy, node_id=cls.hidden.unique_id,
                              start_percent=start_percent, end_percent=end_percent, cache_device=cache_device,
                              run_note=lambda adapter: uncalibrated_note(adapter, "TeaCache", coefficients, profile))
        return io.NodeOutput(patched)
