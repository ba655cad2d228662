"""The papers' solvers in a calibration, end to end. HyCa: with `H` among the plan search's
stand-ins, the Block Profiler's uncached reference runs record the stack's residual per channel,
the calibration fits each channel's solver and saves the assignment in the profile, and Calibrated
Cache runs a plan with `H` steps from it as the policy built outside the node does. ERTACache's
residual gains: fitted per plan from the same recordings, saved with each plan, run by the node."""
from __future__ import annotations

import pytest
import torch

import tiny_models
from helpers import CFG, STEPS, attach_policy, run_node, sample_with_report
from comfyui_dit_cache.cache_core.calibration import solver_choices
from comfyui_dit_cache.cache_core.calibration.solver_choices import SolverChoice
from comfyui_dit_cache.cache_core.policies import PlannedSchedule
from comfyui_dit_cache.cache_core.profiles.profile_io import ProfileError
from comfyui_dit_cache.cache_core.stand_ins.hybrid import CHANNEL_SOLVERS
from comfyui_dit_cache.nodes import BlockProfiler, CalibratedCache, LoadCacheProfile


def calibrate(flux, name: str, extra_seeds: int) -> dict:
    (patched,) = run_node(BlockProfiler, model=flux.patcher, profile_name=name, calibrate_speedups="3",
                          extra_seeds=extra_seeds, search_evaluations=6)
    sample_with_report(patched, flux)
    return run_node(LoadCacheProfile, profile=f"{name}.json")[0]


@pytest.fixture(scope="module")
def hybrid_search(tmp_path_factory):
    import folder_paths

    previous, choice = folder_paths.get_output_directory(), solver_choices.OVERRIDE
    folder_paths.set_output_directory(str(tmp_path_factory.mktemp("out")))
    solver_choices.OVERRIDE = SolverChoice("R12VH")
    try:
        flux = tiny_models.tiny_flux()
        profiles = calibrate(flux, "tiny-flux-hyca", 1), calibrate(flux, "tiny-flux-no-seeds", 0)
    finally:
        solver_choices.OVERRIDE = choice
        folder_paths.set_output_directory(previous)
    return flux, *profiles


def test_the_calibration_saves_one_solver_per_hidden_channel(hybrid_search):
    flux, profile, _ = hybrid_search
    fitted = profile["calibration"]["channel_solvers"]
    hidden = flux.patcher.model.diffusion_model.hidden_size
    assert len(fitted["solvers"]) == hidden and set(fitted["solvers"]) <= set(CHANNEL_SOLVERS)
    errors = fitted["backtest_error_over_reuse"]
    assert errors["R"] == 1.0 and errors["hybrid"] <= min(errors[s] for s in CHANNEL_SOLVERS) + 1e-9
    assert 1 <= fitted["clusters"] <= 8


def test_without_extra_seeds_the_runs_own_case_is_recorded_once_more(hybrid_search):
    flux, _, unseeded = hybrid_search
    calibration = unseeded["calibration"]
    assert len(calibration["channel_solvers"]["solvers"]) == flux.patcher.model.diffusion_model.hidden_size
    assert calibration["cases"] == 1 and calibration["cost_runs"] >= 2.0   # the profiled run and its recording


def test_calibrated_cache_runs_h_steps_with_the_profiles_assignment(hybrid_search):
    """The profile's plan with its skipped steps made `H`, and (the tiny untrained model's own fit
    is plain reuse on every channel) an assignment of every solver: the node runs what the policy
    built outside it runs, and not what reuse alone would."""
    flux, profile, _ = hybrid_search
    plan = profile["calibration"]["plans"][0]
    hybrid_plan = "".join("H" if letter in "R12P" else letter for letter in plan["plan"])
    assert "H" in hybrid_plan
    hidden = flux.patcher.model.diffusion_model.hidden_size
    solvers = "".join("PR12"[c % 4] for c in range(hidden))
    edited = {**profile, "calibration": {**profile["calibration"], "plans": [{**plan, "plan": hybrid_plan}],
                                         "channel_solvers": {"solvers": solvers}}}
    (cached,) = run_node(CalibratedCache, model=flux.patcher, profile=edited, speedup=3.0, cache_device="model device")
    out, report = sample_with_report(cached, flux)
    assert report.full_steps == plan["computes"]
    direct, _ = attach_policy(flux, PlannedSchedule(hybrid_plan, channel_solvers=solvers))
    assert torch.equal(out, tiny_models.sample(direct, flux, steps=STEPS, cfg=CFG))
    reused = "".join("R" if letter == "H" else letter for letter in hybrid_plan)
    plain, _ = attach_policy(flux, PlannedSchedule(reused))
    assert not torch.equal(out, tiny_models.sample(plain, flux, steps=STEPS, cfg=CFG))   # the solvers acted


def test_a_profile_with_h_steps_but_no_assignment_is_refused_with_the_fix(hybrid_search):
    flux, profile, _ = hybrid_search
    plan = profile["calibration"]["plans"][0]
    hybrid_plan = "".join("H" if letter != "C" else letter for letter in plan["plan"])
    broken = {**profile, "calibration": {"plans": [{**plan, "plan": hybrid_plan}]}}
    with pytest.raises(ProfileError, match="no calibration.channel_solvers"):
        run_node(CalibratedCache, model=flux.patcher, profile=broken, speedup=3.0, cache_device="model device")


@pytest.fixture(scope="module")
def gains_fitted(tmp_path_factory):
    import folder_paths

    previous, choice = folder_paths.get_output_directory(), solver_choices.OVERRIDE
    folder_paths.set_output_directory(str(tmp_path_factory.mktemp("out")))
    solver_choices.OVERRIDE = SolverChoice("R12V", fit_residual_gains=True)
    try:
        flux = tiny_models.tiny_flux()
        profile = calibrate(flux, "tiny-flux-gains", 1)
    finally:
        solver_choices.OVERRIDE = choice
        folder_paths.set_output_directory(previous)
    return flux, profile


def test_each_plan_holds_its_residual_gains_and_the_node_runs_them(gains_fitted):
    flux, profile = gains_fitted
    plan = profile["calibration"]["plans"][0]
    gains = plan["residual_gains"]
    assert len(gains) == STEPS and all(g == 1.0 for g, letter in zip(gains, plan["plan"]) if letter in "CV")
    assert any(g != 1.0 for g in gains)
    assert "channel_solvers" not in profile["calibration"]     # H not searched: nothing fitted for it
    (cached,) = run_node(CalibratedCache, model=flux.patcher, profile=profile, speedup=3.0,
                         cache_device="model device")
    out, _ = sample_with_report(cached, flux)
    direct, _ = attach_policy(flux, PlannedSchedule(plan["plan"], residual_gains=tuple(gains)))
    assert torch.equal(out, tiny_models.sample(direct, flux, steps=STEPS, cfg=CFG))
    plain, _ = attach_policy(flux, PlannedSchedule(plan["plan"]))
    assert not torch.equal(out, tiny_models.sample(plain, flux, steps=STEPS, cfg=CFG))


def test_a_saved_profile_with_h_plans_is_described_in_the_report(hybrid_search, tmp_path):
    """The profiler's report describes each plan it saved, H plans included (with the channel
    solvers of the same profile)."""
    from comfyui_dit_cache.cache_core.profiles.run_profile import save_profile_of_run
    from comfyui_dit_cache.cache_core.run.report import RunReport

    _, profile, _ = hybrid_search
    plan = profile["calibration"]["plans"][0]
    hybrid_plan = "".join("H" if letter != "C" else letter for letter in plan["plan"])
    edited = {**profile, "calibration": {**profile["calibration"], "plans": [{**plan, "plan": hybrid_plan}]}}
    report = RunReport("Block Profiler", "flux", "", STEPS, extras={"profile": edited})
    save_profile_of_run(report, "with-h", tmp_path, tmp_path)
    assert (tmp_path / "with-h.json").exists()
    assert any(note.startswith("calibrated 3x") and hybrid_plan in note for note in report.notes), report.notes


def test_without_an_override_a_calibration_uses_its_familys_measured_solvers(tmp_path):
    """What calibration/solver_choices.json says for FLUX is what a Block Profiler on a FLUX model
    searches and fits, and the profile says which."""
    import folder_paths

    previous, choice = folder_paths.get_output_directory(), solver_choices.OVERRIDE
    folder_paths.set_output_directory(str(tmp_path))
    solver_choices.OVERRIDE = None
    try:
        flux = tiny_models.tiny_flux()
        measured = solver_choices.solver_choice("flux")
        profile = calibrate(flux, "tiny-flux-family", 1)
    finally:
        solver_choices.OVERRIDE = choice
        folder_paths.set_output_directory(previous)
    calibration = profile["calibration"]
    assert calibration["solvers"] == measured.variant
    assert ("channel_solvers" in calibration) == ("H" in measured.stand_ins)
    assert all(set(plan["plan"]) <= set("C" + measured.stand_ins) for plan in calibration["plans"])
    assert all(("residual_gains" in plan) <= measured.fit_residual_gains for plan in calibration["plans"])
