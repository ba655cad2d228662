"""The whole model's output as a calibrated plan's stand-in (letter V, cache_core/stand_ins/output_stand_in.py):
on such a step no part of the model runs and the sampler gets the last computed step's direction
from this step's latent, per stream of calls, and a call that adds terms between blocks reuses
the blocks' residual instead."""
from __future__ import annotations

import pytest
import torch

import tiny_models
from helpers import CFG, STEPS, attach_policy, count_block_calls, guided_direction_reuse
from comfyui_dit_cache.cache_core.policies import PlannedSchedule

PLAN = "CCVVCVVC2V"


def test_a_reused_output_step_runs_no_block_and_gets_the_last_computed_direction():
    tiny = tiny_models.tiny_flux()
    plan = "CCVVCVVCVV"
    patched, reports = attach_policy(tiny, PlannedSchedule(plan))
    with count_block_calls(tiny) as counts:
        cached = tiny_models.sample(patched, tiny, steps=STEPS, cfg=CFG)
    assert set(counts) == {plan.count("C")}      # cond and uncond batched: one call per computed step
    report = reports[0]
    assert report.step_actions() == ["compute" if c == "C" else "reuse_output" for c in plan]
    assert "6 model output reused" in report.summary_line() and report.cache_peak_bytes > 0

    reference_model = tiny.patcher.clone()
    reference_model.set_model_sampler_post_cfg_function(guided_direction_reuse(plan))
    reference = tiny_models.sample(reference_model, tiny, steps=STEPS, cfg=CFG)
    uncached = tiny_models.sample(tiny.patcher, tiny, steps=STEPS, cfg=CFG)
    scale = float(uncached.abs().max())
    assert float((reference - uncached).abs().max()) > 1e-2 * scale   # the stand-in did act
    assert torch.allclose(cached, reference, rtol=1e-4, atol=1e-5 * scale)


def counting_model_calls(patched) -> tuple[object, list]:
    """The patched model with ComfyUI's unet function wrapper counting the model calls that
    ComfyUI's conditioning batching makes (it wraps every apply_model)."""
    calls = []

    def wrapper(apply_model, args):
        calls.append(float(args["timestep"].flatten()[0]))
        return apply_model(args["input"], args["timestep"], **args["c"])

    counted = patched.clone()
    counted.set_model_unet_function_wrapper(wrapper)
    return counted, calls


def test_a_reused_output_step_skips_comfyuis_model_calls_altogether():
    tiny = tiny_models.tiny_flux()
    plan = "CCVVCVVCVV"
    patched, reports = attach_policy(tiny, PlannedSchedule(plan))
    counted, calls = counting_model_calls(patched)
    tiny_models.sample(counted, tiny, steps=STEPS, cfg=CFG)
    assert len(calls) == plan.count("C")
    assert sum(c.block_actions.startswith("V") for c in reports[0].calls) == plan.count("V")


def test_output_and_block_stand_ins_mix_in_one_plan():
    tiny = tiny_models.tiny_flux()
    patched, reports = attach_policy(tiny, PlannedSchedule(PLAN))
    with count_block_calls(tiny) as counts:
        tiny_models.sample(patched, tiny, steps=STEPS, cfg=CFG)
    assert set(counts) == {PLAN.count("C")}
    assert reports[0].step_actions()[8:] == ["forecast", "reuse_output"]


def test_a_plan_without_output_reuse_keeps_no_output():
    tiny = tiny_models.tiny_flux()
    patched, reports = attach_policy(tiny, PlannedSchedule("CCRRCRRC2R"))
    tiny_models.sample(patched, tiny, steps=STEPS, cfg=CFG)
    assert "reuse_output" not in reports[0].step_actions()


@pytest.mark.parametrize("sampler", ["euler_ancestral", "dpmpp_2m", "uni_pc", "heun", "res_multistep"])
def test_reused_outputs_serve_other_samplers(sampler):
    """Multistep, ancestral and two-evaluation samplers: the run finishes finite, skips the model
    on the plan's V steps and differs from the uncached run (the stand-in acted)."""
    tiny = tiny_models.tiny_flux()
    patched, reports = attach_policy(tiny, PlannedSchedule("CCVVCVVCVV"))
    cached = tiny_models.sample(patched, tiny, steps=STEPS, cfg=CFG, sampler=sampler)
    uncached = tiny_models.sample(tiny.patcher, tiny, steps=STEPS, cfg=CFG, sampler=sampler)
    assert torch.isfinite(cached).all() and not torch.equal(cached, uncached)
    assert "reuse_output" in reports[0].step_actions()


def test_a_v_step_applies_its_fitted_share_of_the_reused_direction():
    """ERTACache's rescaled step: a plan's output scales of 1 change no bit; others give the V
    steps x - sigma * scale * d, as the independent stand-in does."""
    tiny = tiny_models.tiny_flux()
    plan = "CCVVCVVCVV"
    plain = tiny_models.sample(attach_policy(tiny, PlannedSchedule(plan))[0], tiny, steps=STEPS, cfg=CFG)
    ones = tiny_models.sample(attach_policy(tiny, PlannedSchedule(plan, output_scales=(1.0,) * len(plan)))[0], tiny,
                              steps=STEPS, cfg=CFG)
    assert torch.equal(ones, plain)
    scales = tuple(0.8 + 0.05 * step if letter == "V" else 1.0 for step, letter in enumerate(plan))
    scaled = tiny_models.sample(attach_policy(tiny, PlannedSchedule(plan, output_scales=scales))[0], tiny,
                                steps=STEPS, cfg=CFG)
    reference_model = tiny.patcher.clone()
    reference_model.set_model_sampler_post_cfg_function(guided_direction_reuse(plan, scales))
    reference = tiny_models.sample(reference_model, tiny, steps=STEPS, cfg=CFG)
    size = float(plain.abs().max())
    assert float((scaled - plain).abs().max()) > 1e-3 * size
    assert torch.allclose(scaled, reference, rtol=1e-4, atol=1e-5 * size)
