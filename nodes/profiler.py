"""Block Profiler (patches a model to measure every block) and Load Cache Profile (reads a
saved profile back for the threshold node and shows its heatmap).

A profile exists only after a sampling run, so the flow is two queue runs: profile once with
Block Profiler -> sampler; then pick the saved profile in Load Cache Profile."""
from __future__ import annotations

from pathlib import Path

import folder_paths
from comfy_api.latest import io, ui

import comfy.patcher_extension

from ..cache_core.calibration.calibrating_run import CalibratingWrapper
from ..cache_core.calibration.request import CALIBRATION_KEY, CalibrationRequest, parse_speedups
from ..cache_core.profiles.heatmap import heatmap_tensor
from ..cache_core.support.log import get_logger
from ..cache_core.policies import AlwaysCompute
from ..cache_core.profiles.profile_io import ProfileError, list_profiles, load_profile, resolve_profile, safe_profile_name
from ..cache_core.profiles.profiler import BlockProfileRecorder
from ..cache_core.profiles.run_profile import save_profile_of_run
from ..cache_core.run.report import RunReport
from .apply import apply_cache
from .common_inputs import CATEGORY, model_input
from .profile_type import CacheProfile

log = get_logger(__name__)


def profiles_directory() -> Path:
    return Path(folder_paths.get_output_directory()) / "dit_cache" / "profiles"


def save_run_profile(report: RunReport, name: str) -> None:
    """Report listener: the profile and its heatmap saved in the profiles folder."""
    save_profile_of_run(report, name, profiles_directory(), Path(folder_paths.get_output_directory()))


class BlockProfiler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DiTCacheBlockProfiler",
            display_name="Block Profiler",
            category=CATEGORY,
            description="Computes every step and measures how much each block changes from step to step. After the "
                        "run it saves a profile (JSON + heatmap PNG) under output/dit_cache/profiles/, which Load "
                        "Cache Profile reads.",
            inputs=[
                model_input("The diffusion model to profile"),
                io.String.Input("profile_name", default="profile",
                                tooltip="File name of the saved profile (letters, digits, '_', '-', '.'). "
                                        "Name it after the model and step count, e.g. my-model-28steps."),
                io.String.Input("calibrate_speedups", default="",
                                tooltip="Empty: profile only. Speedups to calibrate plans for, for Calibrated Cache "
                                        "(e.g. '4, 6'): after the profiled run the same workflow is sampled again, "
                                        "uncached on extra seeds and cached with candidate plans, and the plan "
                                        "with the least final damage on the worst case is kept. The log states the "
                                        "cost in uncached runs (about 16 for '4, 6' with the defaults); this node "
                                        "shows the calibration's progress, and Cancel keeps the finished speedups."),
                io.Int.Input("extra_seeds", default=1, min=0, max=8,
                             tooltip="Calibration noise seeds besides the run's own (each costs one uncached run, "
                                     "and every candidate plan is sampled on each). Every batch element is a "
                                     "calibration case too: a batch of different prompts (a batched "
                                     "conditioning) calibrates on all of them in one run."),
                io.Int.Input("search_evaluations", default=12, min=1, max=200,
                             tooltip="Candidate plans sampled per speedup (the evenly spaced start included). The "
                                     "first 8 try the plan's shape (last step computed, stand-in, spacing, "
                                     "warm-up), the rest local moves."),
            ],
            outputs=[io.Model.Output(tooltip="The model, patched to record a profile (and calibrate) while "
                                             "sampling.")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def validate_inputs(cls, profile_name: str | None = None, calibrate_speedups: str | None = None) -> bool | str:
        """Before anything runs: a name that cannot be saved, or speedups that cannot be
        calibrated, would otherwise fail the prompt only after sampling (an input fed by a link
        is checked when the node runs)."""
        try:
            if profile_name is not None:
                safe_profile_name(profile_name)
            speedups = parse_speedups(calibrate_speedups) if calibrate_speedups is not None else ()
            if speedups:
                CalibrationRequest(speedups, extra_seeds=0, evaluations=1)
        except ValueError as err:
            return str(err)
        return True

    @classmethod
    def execute(cls, model, profile_name: str, calibrate_speedups: str = "", extra_seeds: int = 1,
                search_evaluations: int = 12) -> io.NodeOutput:
        name = safe_profile_name(profile_name)
        speedups = parse_speedups(calibrate_speedups)
        if speedups:
            # Registered before the engine's own wrappers, so that its extra sampler calls go
            # through the engine's run scope.
            model = model.clone()
            model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, CALIBRATION_KEY,
                                       CalibratingWrapper(CalibrationRequest(speedups, extra_seeds, search_evaluations),
                                                          cls.hidden.unique_id))
        patched = apply_cache(
            model, "Profiler", lambda adapter: AlwaysCompute(), node_id=cls.hidden.unique_id,
            observer_factory=lambda blocks, adapter: BlockProfileRecorder(blocks, adapter.family),
            listeners=(lambda report: save_run_profile(report, name),))
        return io.NodeOutput(patched)


class LoadCacheProfile(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DiTCacheLoadProfile",
            display_name="Load Cache Profile",
            category=CATEGORY,
            description="Reads a profile saved by Block Profiler, shows its heatmap on the node, and outputs it "
                        "for TeaCache-style or Magnitude-Ratio Threshold.",
            inputs=[
                io.Combo.Input("profile", options=list_profiles(profiles_directory()),
                               tooltip="A profile saved by Block Profiler (output/dit_cache/profiles/). Refresh "
                                       "the page after a profiling run to see new ones."),
            ],
            outputs=[
                CacheProfile.Output(display_name="profile",
                                    tooltip="The profile, for the profile input of TeaCache-style or Magnitude-Ratio "
                                            "Threshold (their curve then comes from your model)."),
                io.Image.Output(display_name="heatmap", tooltip="Steps (rows) x blocks (columns); brighter = "
                                                                 "more change = less cacheable."),
                io.Int.Output(display_name="suggested_fora_interval",
                              tooltip="The longest FORA interval whose accumulated output change stays small on "
                                      "this model; connect it to Apply FORA's interval (convert the widget to an "
                                      "input) or read it off."),
            ],
        )

    @classmethod
    def validate_inputs(cls, profile: str) -> bool | str:
        """Before anything runs: the choice must be a profile in the profiles folder (a client can
        send any string, and ComfyUI does not check it against the list on every version)."""
        try:
            resolve_profile(profiles_directory(), profile)
        except ProfileError as err:
            return str(err)
        return True

    @classmethod
    def execute(cls, profile: str) -> io.NodeOutput:
        data = load_profile(resolve_profile(profiles_directory(), profile))
        heatmap = heatmap_tensor(data)
        return io.NodeOutput(data, heatmap, int(data["suggested_fora_interval"]), ui=ui.PreviewImage(heatmap, cls=cls))

    @classmethod
    def fingerprint_inputs(cls, profile: str) -> str:
        try:
            path = resolve_profile(profiles_directory(), profile)
        except ProfileError:
            return "not a profile"
        return f"{path}:{path.stat().st_mtime}"
