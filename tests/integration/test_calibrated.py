"""Calibrated Cache end to end: a Block Profiler with calibrate_speedups samples the run's
calibration cases and candidate plans through ComfyUI's own sampler, saves the chosen plans in
the profile, and the Calibrated Cache node runs them; and every way of feeding it a wrong
profile or step count is refused with the fix."""
from __future__ import annotations

import json
import logging

import pytest
import torch

import tiny_models
from helpers import CFG, STEPS, run_node, sample_with_report
from comfyui_dit_cache.cache_core.calibration.calibrating_run import NOISE_SEED_STRIDE
from comfyui_dit_cache.cache_core.calibration.progress import planned_evaluations
from comfyui_dit_cache.cache_core.calibration.request import CalibrationRequest
from comfyui_dit_cache.cache_core.support.tensor_measures import batch_psnr
from comfyui_dit_cache.cache_core.policies import StepAction
from comfyui_dit_cache.cache_core.profiles.profile_io import ProfileError
from comfyui_dit_cache.nodes import BlockProfiler, CalibratedCache, LoadCacheProfile

SEED = 0
PROFILER_NODE = "1"   # run_node's unique id


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A tiny FLUX, calibrated at 2.5x and 5x on its own noise and one extra seed, 6 plans each;
    the uncached output of the profiled run and the log of the whole run."""
    import folder_paths

    previous = folder_paths.get_output_directory()
    folder_paths.set_output_directory(str(tmp_path_factory.mktemp("out")))
    flux = tiny_models.tiny_flux()
    (patched,) = run_node(BlockProfiler, model=flux.patcher, profile_name="tiny-flux", calibrate_speedups="2.5, 5",
                          extra_seeds=1, search_evaluations=6)
    handler, logger = _Collect(), logging.getLogger("dit_cache")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    progress = ProgressSeen()
    try:
        with progress:
            profiled, report = sample_with_report(patched, flux, seed=SEED)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    profile, _, _ = run_node(LoadCacheProfile, profile="tiny-flux.json")
    yield flux, profile, profiled, report, handler.lines, progress.updates
    folder_paths.set_output_directory(previous)


class ProgressSeen:
    """ComfyUI's progress hook (what its server installs) for the sampling inside the `with`: the
    updates (value, total, node) it receives; `cancel_at` makes it raise ComfyUI's cancel, as the
    server's hook does after Cancel, at the first update for the profiler's node at or past that value."""

    def __init__(self, cancel_at: float | None = None) -> None:
        self.updates: list[tuple[float, float, str | None]] = []
        self.cancel_at = cancel_at

    def __call__(self, value, total, preview=None, node_id=None) -> None:
        self.updates.append((value, total, node_id))
        if self.cancel_at is not None and node_id == PROFILER_NODE and value >= self.cancel_at:
            import comfy.model_management

            self.cancel_at = None
            raise comfy.model_management.InterruptProcessingException()

    def __enter__(self) -> "ProgressSeen":
        import comfy.utils

        self._previous = comfy.utils.PROGRESS_BAR_HOOK
        comfy.utils.set_progress_bar_global_hook(self)
        return self

    def __exit__(self, *exc) -> None:
        import comfy.utils

        comfy.utils.set_progress_bar_global_hook(self._previous)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_the_profiled_run_is_the_uncached_one_and_the_profile_holds_the_plans(calibrated):
    flux, profile, profiled, report, log_lines, _ = calibrated
    assert torch.equal(profiled, tiny_models.sample(flux.patcher, flux, steps=STEPS, cfg=CFG, seed=SEED))
    assert report.full_steps == STEPS and profile["steps"] == STEPS
    calibration = profile["calibration"]
    assert calibration["cases"] == 2 and [p["speedup"] for p in calibration["plans"]] == [2.5, 5.0]
    for plan in calibration["plans"]:
        assert len(plan["plan"]) == STEPS and plan["plan"].count("C") == plan["computes"]
        assert set(plan["plan"]) <= set("CR12V") and plan["plan"][0] == "C"
        assert plan["psnr_worst"] >= plan["start_psnr_worst"]
    # 2.5x: 6 whole-stack plans, one that keeps the first and last of the 6 blocks computed on
    # its skipped steps, with 1 step computed in full (1 x 6 + 9 x 2 = 24 block computes, as 4
    # steps of 6), and the 5x plan with 2 steps added; 5x: no per-block plan fits its 12 block
    # computes
    assert [p["evaluations"] for p in calibration["plans"]] == [8, 6]
    assert all(p["computes"] == int(STEPS // p["speedup"]) for p in calibration["plans"] if not p["kept_blocks"])
    # cost: the profiled run, one uncached extra seed, 6 plans x 2 cases at 4 and 2 computes of
    # 10, the per-block plan on 2 cases at 24 of 60 block computes, the 5x plan with steps added
    # on 2 cases at 4 computes
    assert calibration["cost_runs"] == pytest.approx(2 + 6 * 2 * (4 + 2) / STEPS + 2 * 24 / 60 + 2 * 4 / STEPS)
    assert any("Calibration cost: 10.8 uncached runs" in line for line in log_lines)
    # a slower plan never keeps less on the calibration cases than the faster one
    assert calibration["plans"][0]["psnr_worst"] >= calibration["plans"][1]["psnr_worst"]
    assert sum("Calibration: " in line for line in log_lines) == 2
    assert any("calibrated 5x (runs 5.00x: Calibrated plan=" in note and "(2 of 10 steps computed, 5.00x)" in note
               for note in report.notes)
    # the 2.5x plan says the speedup it runs, per-block plans (kept blocks) counted in block computes
    speedups = {p["speedup"]: p for p in calibration["plans"]}
    kept = speedups[2.5]["kept_blocks"]
    runs = 2.5 if not kept else 60 / (speedups[2.5]["computes"] * 6 + len(kept) * (10 - speedups[2.5]["computes"]))
    assert any(f"calibrated 2.5x (runs {runs:.2f}x:" in note for note in report.notes)
    assert any("Calibration: 2.5x asked, 2.50x run (4 of 10 steps computed)" in line for line in log_lines)


def test_the_recorded_damage_is_what_the_plan_does_on_the_calibration_seeds(calibrated):
    """The profile's worst-case PSNR is measured, not predicted: sampling the chosen plan again with
    the Calibrated Cache node on the two calibration seeds gives it back."""
    flux, profile, profiled, _, _, _ = calibrated
    plan = profile["calibration"]["plans"][1]
    (cached,) = run_node(CalibratedCache, model=flux.patcher, profile=profile, speedup=5.0, cache_device="model device")
    scores = []
    for seed, uncached in ((SEED, profiled), (SEED + NOISE_SEED_STRIDE, None)):
        out, report = sample_with_report(cached, flux, seed=seed)
        if uncached is None:
            uncached = tiny_models.sample(flux.patcher, flux, steps=STEPS, cfg=CFG, seed=seed)
        scores += batch_psnr(out, uncached)
        assert "".join(StepAction(a).letter for a in report.step_actions()) == plan["plan"].translate(
            str.maketrans("12", "FF"))
        assert report.full_steps == plan["computes"]
    assert min(scores) == pytest.approx(plan["psnr_worst"], abs=1e-4)


def test_a_plan_that_computes_every_step_is_bit_identical_to_the_model(calibrated):
    flux, profile, _, _, _, _ = calibrated
    every_step = {**profile, "calibration": {"plans": [{"speedup": 2.0, "computes": STEPS, "plan": "C" * STEPS,
                                                          "psnr_worst": 100.0}]}}
    (cached,) = run_node(CalibratedCache, model=flux.patcher, profile=every_step, speedup=2.0,
                         cache_device="model device")
    out, _ = sample_with_report(cached, flux)
    assert torch.equal(out, tiny_models.sample(flux.patcher, flux, steps=STEPS, cfg=CFG))


def test_wrong_profiles_speedups_and_step_counts_are_refused_with_the_fix(calibrated):
    flux, profile, _, _, _, _ = calibrated
    wan = tiny_models.tiny_wan()
    with pytest.raises(ProfileError, match="made on a flux model but this model is wan"):
        run_node(CalibratedCache, model=wan.patcher, profile=profile, speedup=5.0, cache_device="model device")
    with pytest.raises(ProfileError, match=r"calibrated for speedup 2.5, 5, not 4; pick one of those, or profile again"):
        run_node(CalibratedCache, model=flux.patcher, profile=profile, speedup=4.0, cache_device="model device")
    uncalibrated = {k: v for k, v in profile.items() if k != "calibration"}
    with pytest.raises(ProfileError, match="no calibrated plans; profile the model again with the Block Profiler's "
                                           "calibrate_speedups set"):
        run_node(CalibratedCache, model=flux.patcher, profile=uncalibrated, speedup=5.0, cache_device="model device")
    (cached,) = run_node(CalibratedCache, model=flux.patcher, profile=profile, speedup=5.0, cache_device="model device")
    with pytest.raises(ValueError, match=f"plan is for {STEPS} steps, but this sampler runs 12; set the sampler to "
                                         f"{STEPS} steps, or calibrate at 12 steps"):
        tiny_models.sample(cached, flux, steps=12)


@pytest.mark.parametrize("speedups", ["1", "9", "four"])
def test_calibration_settings_out_of_range_are_refused(speedups):
    with pytest.raises(ValueError, match="calibrate_speedups"):
        run_node(BlockProfiler, model=tiny_models.tiny_flux().patcher, profile_name="x", calibrate_speedups=speedups,
                 extra_seeds=1, search_evaluations=4)


def test_a_saved_profile_keeps_its_plans(calibrated, tmp_path):
    import folder_paths
    from pathlib import Path

    saved = Path(folder_paths.get_output_directory()) / "dit_cache" / "profiles" / "tiny-flux.json"
    raw = json.loads(saved.read_text())
    assert raw["calibration"]["plans"] == calibrated[1]["calibration"]["plans"]


def test_one_progress_bar_on_the_profiler_node_goes_over_the_whole_calibration_to_100(calibrated):
    """ComfyUI's progress for the Block Profiler's node: from the start of the calibration to
    100% at its end, never going back, while the calibration runs show no step bar of their own."""
    updates = [(value, total) for value, total, node in calibrated[5] if node == PROFILER_NODE]
    assert len(updates) >= 2 and updates[-1] == (100, 100)
    assert all(total == 100 for _, total in updates)
    assert [value for value, _ in updates] == sorted(value for value, _ in updates)
    # the profiled run's own sampler bar aside (KSampler's, on no node here), no other bar
    assert all(node in (PROFILER_NODE, None) for _, _, node in calibrated[5])
    # the bar's planned work is the work sampled: every run after the profiled one, in evaluations
    request = CalibrationRequest((2.5, 5.0), extra_seeds=1, evaluations=6)
    cost = calibrated[1]["calibration"]["cost_runs"]
    assert planned_evaluations(request, STEPS, 6) == pytest.approx((cost - 1) * STEPS)


def test_cancel_during_the_calibration_keeps_the_plans_finished_before(tmp_path):
    """Cancel (ComfyUI's progress hook raising its interrupt) while the second speedup is searched:
    the prompt stops, and the saved profile keeps the first speedup's plan, saying so."""
    import comfy.model_management
    import folder_paths

    previous = folder_paths.get_output_directory()
    folder_paths.set_output_directory(str(tmp_path))
    flux = tiny_models.tiny_flux()
    try:
        (patched,) = run_node(BlockProfiler, model=flux.patcher, profile_name="cancelled",
                              calibrate_speedups="2.5, 5", extra_seeds=1, search_evaluations=6)
        reports = []
        from comfyui_dit_cache.cache_core.attachment.attach import attached_engine

        attached_engine(patched).report_listeners.append(reports.append)
        # the fastest speedup is searched first: its work ends at 35% of the plan (10 + 24 of 98
        # evaluations of one case)
        with ProgressSeen(cancel_at=60), pytest.raises(comfy.model_management.InterruptProcessingException):
            tiny_models.sample(patched, flux, steps=STEPS, cfg=CFG, seed=SEED)
        profile, _, _ = run_node(LoadCacheProfile, profile="cancelled.json")
    finally:
        folder_paths.set_output_directory(previous)
    assert [p["speedup"] for p in profile["calibration"]["plans"]] == [5.0]
    assert any("was cancelled: the profile is saved with the plans finished before (5x), without 2.5x" in note
               for note in reports[0].notes)
