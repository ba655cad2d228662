"""DiT Cache: one node for people who do not want to tune. A named speed runs the method and
setting the pack's own benchmarks measured best for the model's family at that compute
(cache_core/speeds/speed_choices.json, made from bench/results/quality.md), or a connected profile's
calibrated plan; the run report says which and why."""
from __future__ import annotations

from typing import Any

from comfy_api.latest import io

from ..cache_core.adapters import ADAPTERS, ModelAdapter
from ..cache_core.policies import CachePolicy
from ..cache_core.profiles.profile_io import ProfileError
from ..cache_core.speeds.speed_choices import CALIBRATED, CALIBRATED_SPEEDUP, SpeedChoice, choose, speed_names
from .apply import apply_cache
from .calibrated import calibrated_policy
from .common_inputs import CATEGORY, cache_device_input, cached_model_output, model_input
from .fora import ApplyFORA
from .magnitude import MagnitudeThreshold
from .profile_type import CacheProfile
from .taylorseer import TaylorSeerForecast
from .teacache import TeaCacheThreshold

METHOD = "DiT Cache"

# The node each choice names, whose own policy builder (without a profile) runs its inputs.
NODE_OF: dict[str, type] = {node.GET_SCHEMA().node_id: node
                            for node in (ApplyFORA, TeaCacheThreshold, MagnitudeThreshold, TaylorSeerForecast)}


def family_names() -> dict[str, str]:
    """Each registered family's name as users know it (its base adapter's display name)."""
    names: dict[str, str] = {}
    for adapter in sorted(ADAPTERS, key=lambda a: len(type(a).__mro__)):
        names.setdefault(adapter.family, adapter.display_name)
    return names


def preset_kinds(adapter: ModelAdapter) -> set[str]:
    """Which published presets the family has: what a threshold method needs to run as measured."""
    return {kind for kind, presets in (("teacache", adapter.teacache_presets),
                                       ("magnitude", adapter.magnitude_presets)) if presets}


def speed_choice(adapter: ModelAdapter, speed: str) -> SpeedChoice:
    """What `speed` runs on `adapter`'s family."""
    names = family_names()
    return choose(adapter.family, names.get(adapter.family, adapter.display_name), speed, preset_kinds(adapter), names)


def nearest_calibrated_speedup(profile: dict) -> float:
    """The profile's calibrated speedup nearest CALIBRATED_SPEEDUP; a profile without plans is
    refused by calibrated_plan with the fix."""
    plans = (profile.get("calibration") or {}).get("plans") or []
    speedups = [p["speedup"] for p in plans if isinstance(p, dict) and "speedup" in p]
    return min(speedups, key=lambda s: abs(s - CALIBRATED_SPEEDUP)) if speedups else CALIBRATED_SPEEDUP


class DiTCacheSpeed(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DiTCacheSpeed",
            display_name="DiT Cache",
            category=CATEGORY,
            description="Pick a speed; the node runs the method and setting that the pack's own benchmarks measured "
                        "best at that speed for your model's family (or, for a family without measurements, the "
                        "one that ranked best across the measured families). 'Calibrated' runs a connected "
                        "profile's calibrated plan nearest 4x. The run report says what it chose and why.",
            inputs=[
                model_input(),
                io.Combo.Input("speed", options=[*speed_names(), CALIBRATED], default=speed_names()[1],
                               tooltip="Ideal speedup (steps skipped; at full size the real one is close for "
                                       "these). Safe keeps most of the image, Fast changes details. 'Calibrated' "
                                       "needs a profile: a Block Profiler run with calibrate_speedups, loaded with "
                                       "Load Cache Profile."),
                cache_device_input(),
                CacheProfile.Input("profile", optional=True,
                                   tooltip="Only for 'Calibrated': a calibrated profile of this model from Load Cache "
                                           "Profile (its plan nearest 4x runs). The named speeds do not use it."),
            ],
            outputs=[cached_model_output()],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, model, speed: str, cache_device: str, profile: dict | None = None) -> io.NodeOutput:
        if speed == CALIBRATED:
            return io.NodeOutput(cls.calibrated(model, profile, cache_device))

        def make_policy(adapter: ModelAdapter) -> CachePolicy:
            choice = speed_choice(adapter, speed)
            return NODE_OF[choice.node].policy(adapter, **choice.inputs)

        def run_info(adapter: ModelAdapter) -> str:
            unused = "; the connected profile is used only by 'Calibrated'" if profile is not None else ""
            return speed_choice(adapter, speed).note() + unused

        return io.NodeOutput(apply_cache(model, METHOD, make_policy, node_id=cls.hidden.unique_id,
                                         cache_device=cache_device, run_info=run_info))

    @classmethod
    def calibrated(cls, model, profile: dict | None, cache_device: str) -> Any:
        """Calibrated Cache at the profile's plan nearest 4x."""
        if profile is None:
            raise ProfileError("DiT Cache: 'Calibrated' needs a calibrated profile of this model: run the Block "
                               "Profiler with calibrate_speedups (e.g. '4, 6') once, then connect Load Cache Profile "
                               "to this node's profile input; or pick a named speed")
        speedup = nearest_calibrated_speedup(profile)

        def run_info(adapter: ModelAdapter) -> str:
            return (f"Calibrated runs the plan profile '{profile.get('name', '?')}' calibrated for {speedup:g}x "
                    f"(its nearest to {CALIBRATED_SPEEDUP:g}x), as Calibrated Cache would")

        return apply_cache(model, METHOD, lambda adapter: calibrated_policy(model, adapter, profile, speedup),
                           node_id=cls.hidden.unique_id, cache_device=cache_device, run_info=run_info)
