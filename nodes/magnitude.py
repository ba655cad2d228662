"""Magnitude-Ratio Threshold: adaptive whole-stack reuse driven by how the magnitude of the
stack's residual changes per step, from a profile of the model in use or a published curve."""
from __future__ import annotations

from comfy_api.latest import io

from ..cache_core.adapters import magnitude_presets
from ..cache_core.profiles.curve_sources import AUTO, magnitude_curve, uncalibrated_note
from ..cache_core.profiles.profile_io import profiled_part
from ..cache_core.policies import MagnitudeRatioThreshold
from .apply import apply_cache
from .common_inputs import CATEGORY, cache_device_input, cached_model_output, model_input, window_inputs
from .profile_type import CacheProfile


def published_settings() -> str:
    """The curves' published settings, read from the adapters' presets."""
    return ", ".join(f"{p.name} {p.threshold} with max_skip {p.max_skip}" for p in magnitude_presets())


class MagnitudeThreshold(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DiTCacheMagnitudeThreshold",
            display_name="Magnitude-Ratio Threshold (MagCache-style)",
            category=CATEGORY,
            description="Skips whole steps while the error predicted from the per-step magnitude ratio of the block "
                        "stack's residual stays under the threshold (the MagCache idea). Uses a published curve, or "
                        "the curve measured by a Block Profiler profile of your model.",
            inputs=[
                model_input(),
                io.Float.Input("threshold", default=0.12, min=0.0, max=2.0, step=0.01,
                               tooltip="Accumulated error allowed while reusing; higher skips more. Start at 0.12 "
                                       f"(MagCache's published settings: {published_settings()}). 0 computes "
                                       "every step."),
                io.Int.Input("max_skip", default=3, min=0, max=10,
                             tooltip="Compute after this many reused steps in a row, whatever the error says."),
                io.Float.Input("retention_ratio", default=0.2, min=0.0, max=0.9, step=0.01,
                               tooltip="Fraction of the first steps always computed (they set the layout). Start at "
                                       "0.2."),
                io.Combo.Input("curve", options=[AUTO, *(p.name for p in magnitude_presets())], default=AUTO,
                               tooltip="Published ratio curve to use when no profile is connected; 'auto' picks the "
                                       "model's family (a family without one uses a curve averaged over the published "
                                       "ones until profiled). On the project's "
                                       "reference models a profiled curve did not beat these (see README)."),
                *window_inputs(),
                cache_device_input(),
                CacheProfile.Input("profile", optional=True,
                                   tooltip="A profile of this model from Load Cache Profile: its measured ratio "
                                           "curve replaces the preset, resampled to your step count."),
            ],
            outputs=[cached_model_output()],
            hidden=[io.Hidden.unique_id],
        )

    @staticmethod
    def policy(adapter, threshold: float, max_skip: int, retention_ratio: float, curve: str,
               profile: dict | None = None) -> MagnitudeRatioThreshold:
        """The node's policy for `adapter`'s family (DiT Cache builds it the same way when it picks
        this node)."""
        return MagnitudeRatioThreshold(magnitude_curve(adapter, curve, profile), threshold, max_skip, retention_ratio,
                                       profiled_part(profile) if profile is not None else None)

    @classmethod
    def execute(cls, model, threshold: float, max_skip: int, retention_ratio: float, curve: str,
                start_percent: float, end_percent: float, cache_device: str, profile: dict | None = None) -> io.NodeOutput:
        def make_policy(adapter) -> MagnitudeRatioThreshold:
            return cls.policy(adapter, threshold, max_skip, retention_ratio, curve, profile)

        patched = apply_cache(model, "MagnitudeRatio", make_policy, node_id=cls.hidden.unique_id,
                              start_percent=start_percent, end_percent=end_percent, cache_device=cache_device,
                              run_note=lambda adapter: uncalibrated_note(adapter, "MagnitudeRatio", curve, profile))
        return io.NodeOutput(patched)
