"""Profiles of part of a schedule (one sampler of a split run, or img2img with denoise below 1):
the profile records which steps of which schedule it covers; Magnitude-Ratio and Calibrated Cache
use it on those steps and refuse it, with the fix, on a run of other steps; a calibration on such
a run searches plans for its own steps. A cancel during the calibration keeps the profile."""
from __future__ import annotations

import comfy.model_management
import nodes as comfy_nodes
import pytest
import torch

import tiny_models
from helpers import CFG, WINDOW, run_node

from comfyui_dit_cache.cache_core.attachment.attach import attached_engine
from comfyui_dit_cache.cache_core.policies.base import StepsMismatchError
from comfyui_dit_cache.nodes import BlockProfiler, CalibratedCache, LoadCacheProfile, MagnitudeThreshold

STEPS = 8
SPLIT_AT = 4


def _prompts(tiny) -> tuple[list, list]:
    g = torch.Generator().manual_seed(1234)
    return tiny.make_cond(g), tiny.make_cond(g)


def advanced(patcher, tiny, start: int, end: int, latent: torch.Tensor, first: bool, last: bool) -> torch.Tensor:
    """Steps start..end of an 8-step schedule through ComfyUI's KSamplerAdvanced."""
    positive, negative = _prompts(tiny)
    return comfy_nodes.KSamplerAdvanced().sample(
        patcher, "enable" if first else "disable", 0, STEPS, CFG, "euler", "simple", positive, negative,
        {"samples": latent}, start, end, "disable" if last else "enable")[0]["samples"]


def second_half(patcher, tiny, first_half=None) -> torch.Tensor:
    """Steps 4-8 of 8 through `patcher`, after steps 0-4 through `first_half` (the uncached model)."""
    latent = torch.full(tiny.latent_shape, 0.01)
    middle = advanced(first_half or tiny.patcher, tiny, 0, SPLIT_AT, latent, first=True, last=False)
    return advanced(patcher, tiny, SPLIT_AT, 10000, middle, first=False, last=True)


def img2img(patcher, tiny, denoise: float = 0.6) -> torch.Tensor:
    positive, negative = _prompts(tiny)
    latent = {"samples": torch.full(tiny.latent_shape, 0.3)}
    return comfy_nodes.KSampler().sample(patcher, 0, STEPS, CFG, "euler", "simple", positive, negative, latent,
                                         denoise=denoise)[0]["samples"]


def whole(patcher, tiny) -> torch.Tensor:
    return advanced(patcher, tiny, 0, 10000, torch.full(tiny.latent_shape, 0.01), first=True, last=True)


def profile_of(run, tiny, name: str, **settings) -> dict:
    (profiler,) = run_node(BlockProfiler, model=tiny.patcher, profile_name=name, **settings)
    run(profiler, tiny)
    return run_node(LoadCacheProfile, profile=f"{name}.json")[0]


def magnitude_from(tiny, profile: dict):
    return run_node(MagnitudeThreshold, model=tiny.patcher, threshold=0.3, max_skip=2, retention_ratio=0.0,
                    curve="auto", profile=profile, **WINDOW)[0]


@pytest.fixture
def flux():
    return tiny_models.tiny_flux()


def test_a_profile_of_the_second_sampler_records_its_part_and_its_steps_own_ratios(output_dir, flux):
    part = profile_of(second_half, flux, "second-half")
    entire = profile_of(whole, flux, "whole")
    assert part["steps"] == SPLIT_AT and part["schedule"] == {"first_step": SPLIT_AT, "total_steps": STEPS}
    assert entire["schedule"] == {"first_step": 0, "total_steps": STEPS}
    # the curve Magnitude-Ratio decides with at steps 5-7 is those steps' measured ratios, not the
    # part's curve stretched over the whole schedule
    patched = magnitude_from(flux, part)
    curve = attached_engine(patched).policy._curve_for(STEPS)
    assert curve[SPLIT_AT + 1:] == pytest.approx(entire["residual_magnitude_ratio"][SPLIT_AT + 1:], rel=1e-4)


def test_a_part_profile_drives_magnitude_ratio_on_that_part_and_is_refused_on_a_whole_run(output_dir, flux):
    part = profile_of(second_half, flux, "second-half")
    patched = magnitude_from(flux, part)
    reports = []
    attached_engine(patched).report_listeners.append(reports.append)
    assert torch.isfinite(second_half(patched, flux)).all()
    assert sorted({c.step for c in reports[0].calls}) == [4, 5, 6, 7]
    with pytest.raises(StepsMismatchError, match=r"curve was made on steps 5-8 of a schedule of 8 \(a split sampler or "
                                                 r"denoise below 1\), but this sampler runs a whole schedule of 8 "
                                                 r"steps; profile the part this sampler runs"):
        whole(patched, flux)


@pytest.mark.parametrize("run, first, total", [(second_half, SPLIT_AT, STEPS), (img2img, 5, 13)],
                         ids=["second sampler of a split run", "denoise 0.6"])
def test_calibrating_a_part_plans_its_steps_and_calibrated_cache_runs_them(output_dir, flux, run, first, total):
    profile = profile_of(run, flux, "part", calibrate_speedups="2", extra_seeds=0, search_evaluations=3)
    assert profile["schedule"] == {"first_step": first, "total_steps": total}
    (plan,) = profile["calibration"]["plans"]
    assert len(plan["plan"]) == total and plan["plan"][:first] == "C" * first
    assert plan["computes"] == plan["plan"][first:].count("C") == (total - first) // 2

    (cached,) = run_node(CalibratedCache, model=flux.patcher, profile=profile, speedup=2.0, cache_device="model device")
    reports = []
    attached_engine(cached).report_listeners.append(reports.append)
    run(cached, flux)
    letters = "".join("C" if a == "compute" else "S" for a in reports[0].step_actions())
    assert letters == "".join("C" if c == "C" else "S" for c in plan["plan"][first:])
    with pytest.raises(StepsMismatchError, match="the calibrated plan was made on steps"):
        img2img(cached, flux, denoise=0.3) if run is second_half else second_half(cached, flux)


def test_a_cancel_during_the_calibration_keeps_the_profile_and_says_so(output_dir, flux, caplog):
    calls = []

    def cancel_in_the_calibration(apply_model, args: dict):
        calls.append(1)
        if len(calls) > STEPS + 2:   # the profiled run is done; a calibration run is under way
            comfy.model_management.interrupt_current_processing()
            comfy.model_management.throw_exception_if_processing_interrupted()
        return apply_model(args["input"], args["timestep"], **args["c"])

    (profiler,) = run_node(BlockProfiler, model=flux.patcher, profile_name="cancelled", calibrate_speedups="2",
                           extra_seeds=1, search_evaluations=3)
    profiler.set_model_unet_function_wrapper(cancel_in_the_calibration)
    with pytest.raises(comfy.model_management.InterruptProcessingException):
        whole(profiler, flux)
    comfy.model_management.interrupt_current_processing(False)
    profile = run_node(LoadCacheProfile, profile="cancelled.json")[0]
    assert profile["steps"] == STEPS and not profile.get("calibration")
    assert "the calibration was cancelled: the profile is saved without calibrated plans" in caplog.text
    with pytest.raises(ValueError, match="no calibrated plans"):
        run_node(CalibratedCache, model=flux.patcher, profile=profile, speedup=2.0, cache_device="model device")
