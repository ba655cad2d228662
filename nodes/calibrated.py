"""Calibrated Cache: the plan a calibrating Block Profiler searched on the user's own model and
step count (cache_core/calibration/plan_search.py): which steps are computed and what stands in for each run
of skipped steps, chosen for the least final damage on the worst calibration case."""
from comfy_api.latest import io

from ..cache_core.support.log import get_logger
from ..cache_core.policies import PlannedSchedule
from ..cache_core.profiles.plan_policy import planned_schedule
from ..cache_core.profiles.profile_io import ProfileError, calibrated_plan
from .apply import apply_cache
from .common_inputs import CATEGORY, cache_device_input, cached_model_output, model_input
from .profile_type import CacheProfile

log = get_logger(__name__)


class CalibratedCache(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DiTCacheCalibrated",
            display_name="Calibrated Cache",
            category=CATEGORY,
            description="Runs the cache plan a Block Profiler calibrated on this model and step count: at the "
                        "chosen speedup, the computed steps and the stand-ins for skipped ones (reuse or a Taylor "
                        "forecast) that kept the final output closest to the uncached one on the worst "
                        "calibration seed. The sampler must run the profile's step count.",
            inputs=[
                model_input(),
                CacheProfile.Input("profile", tooltip="A calibrated profile of this model, from Load Cache Profile "
                                                      "(Block Profiler with calibrate_speedups set, at the step "
                                                      "count you sample with)."),
                io.Float.Input("speedup", default=4.0, min=1.0, max=8.0, step=0.5,
                               tooltip="Steps over computed steps; one of the speedups the profile was calibrated "
                                       "for (its calibrate_speedups, shown in the log of the profiling run)."),
                cache_device_input(),
            ],
            outputs=[cached_model_output()],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, model, profile: dict, speedup: float, cache_device: str) -> io.NodeOutput:
        def make_policy(adapter) -> PlannedSchedule:
            return calibrated_policy(model, adapter, profile, speedup)

        return io.NodeOutput(apply_cache(model, "Calibrated", make_policy, node_id=cls.hidden.unique_id,
                                         cache_device=cache_device))


def calibrated_policy(model, adapter, profile: dict, speedup: float) -> PlannedSchedule:
    """The profile's plan for `speedup` on `model`, refused (ProfileError) where it cannot be this
    model's; shared with the DiT Cache node's Calibrated speed."""
    chosen = calibrated_plan(profile, speedup, adapter.family)
    blocks = len(adapter.blocks(model.model.diffusion_model))
    kept = tuple(chosen.get("kept_blocks") or ())
    if any(b >= blocks for b in kept):
        raise ProfileError(f"profile '{profile.get('name', '?')}' keeps block {max(kept)} computed, but this "
                           f"model has {blocks} blocks: it is a profile of another model; profile this model")
    policy = planned_schedule(profile, chosen, blocks)
    log.info("Calibrated Cache: %s from profile '%s', %gx asked; worst calibration case %.1f dB",
             policy.describe(), profile.get("name", "?"), speedup, chosen["psnr_worst"])
    return policy
