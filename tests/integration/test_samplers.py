"""Every sampler of ComfyUI's KSampler list, and the custom sampler path, with every caching
node: a step is a sampler step however many times the sampler evaluates the model in it.

The report counts the steps the sampler reports (its progress callback), step-decided nodes
decide the steps they decide under euler, computing every step is bit-identical to the unpatched
model, and the cached output stays closer to the uncached one than another seed's uncached output
is (the bound: a cache that broke the trajectory would land anywhere)."""
from __future__ import annotations

import comfy.samplers
import pytest
import torch

import tiny_models
from helpers import (CFG, STEPS, attach_policy, chosen_profile, fora, magnitude, run_node, sample_with_report,
                     taylorseer, teacache)

from comfyui_dit_cache.cache_core.attachment.attach import attached_engine
from comfyui_dit_cache.cache_core.policies import PlannedSchedule, ReuseSchedule
from comfyui_dit_cache.cache_core.run.sampler_steps import OWN_STEPS
from comfyui_dit_cache.nodes import CalibratedCache

SAMPLERS = list(comfy.samplers.KSampler.SAMPLERS)
FORA_COMPUTES = [0, 1, 4, 7]   # Apply FORA interval 3, warm-up 1, at 10 steps
PLAN = "CCRRC1RCRR"


def plan_profile(model, sigmas: list[float]) -> dict:
    """A profile holding PLAN as its 2.5x plan, calibrated at these step sigmas."""
    return chosen_profile(model, steps=STEPS, sigmas=sigmas,
                          calibration={"plans": [{"speedup": 2.5, "plan": PLAN, "psnr_worst": 30.0, "psnr_mean": 30.0}]})


def calibrated(model, sigmas: list[float] = ()):
    return run_node(CalibratedCache, model=model, profile=plan_profile(model, list(sigmas)), speedup=2.5,
                    cache_device="model device")[0]


NODES = {
    "fora": lambda m: fora(m, interval=3),
    "teacache": lambda m: teacache(m, rel_l1_thresh=0.4),
    "magnitude": lambda m: magnitude(m, threshold=0.12, max_skip=2),
    "taylorseer": lambda m: taylorseer(m, interval=3, warmup_steps=2, order=1),
    "calibrated": calibrated,
}
STEP_DECIDED = {"fora": FORA_COMPUTES, "calibrated": [i for i, c in enumerate(PLAN) if c == "C"]}


@pytest.fixture(scope="module")
def flux():
    return tiny_models.tiny_flux()


@pytest.fixture(scope="module")
def uncached(flux):
    """Per sampler: the uncached output, another seed's, and the steps the sampler reported."""
    found = {}

    def of(sampler: str):
        if sampler not in found:
            reported: set[int] = set()
            out = tiny_models.sample(flux.patcher, flux, steps=STEPS, cfg=CFG, sampler=sampler,
                                     callback=lambda step, *_: reported.add(step))
            other = tiny_models.sample(flux.patcher, flux, steps=STEPS, cfg=CFG, sampler=sampler, seed=7)
            found[sampler] = (out, other, len(reported))
        return found[sampler]
    return of


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_computing_every_step_is_bit_identical_on_every_sampler(flux, uncached, sampler):
    patched, reports = attach_policy(flux, ReuseSchedule(interval=1))
    out = tiny_models.sample(patched, flux, steps=STEPS, cfg=CFG, sampler=sampler)
    assert torch.equal(out, uncached(sampler)[0])
    assert reports[0].steps == min(uncached(sampler)[2], STEPS)


@pytest.mark.parametrize("node", sorted(NODES))
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_node_counts_sampler_steps_on_every_sampler(flux, uncached, sampler, node):
    reference, other_seed, steps = uncached(sampler)
    out, report = sample_with_report(NODES[node](flux.patcher), flux, sampler=sampler)
    assert torch.isfinite(out).all()
    if steps > STEPS:   # dpm_adaptive: steps of its own, not the schedule's
        assert report.steps == STEPS and OWN_STEPS in " ".join(report.notes)
        return
    assert report.steps == steps
    if node in STEP_DECIDED and steps == STEPS:
        assert [s for s, a in enumerate(report.step_actions()) if a == "compute"] == STEP_DECIDED[node]
    if sampler not in RENOISES_EVERY_STEP:
        assert float((out - reference).norm()) < float((other_seed - reference).norm())


# Samplers that replace the noise at every step (LCM): a skipped step's stand-in comes from an
# input noised with other noise, so no bound holds; the README says so.
RENOISES_EVERY_STEP = {"lcm"}


@pytest.mark.parametrize("node", ["teacache", "magnitude"])
def test_a_two_evaluation_sampler_computes_the_share_of_steps_euler_does(flux, node):
    """The threshold nodes' accumulators and curves count sampler steps: heun computes about what
    euler computes, and its report says 10 steps for 10."""
    shares = {}
    for sampler in ("euler", "heun"):
        _, report = sample_with_report(NODES[node](flux.patcher), flux, sampler=sampler)
        shares[sampler] = report.full_steps / report.steps
        assert report.steps == STEPS and f"{STEPS} steps" in report.summary_line()
    assert shares["euler"] < 1.0 and abs(shares["heun"] - shares["euler"]) <= 0.1


def test_a_profile_made_with_heun_calibrates_plans_for_heuns_steps(flux, tmp_path):
    """The Block Profiler counts sampler steps too: a heun profile of 10 steps holds plans of 10
    letters, which Calibrated Cache then samples with heun at 10 steps."""
    import folder_paths

    from comfyui_dit_cache.nodes import BlockProfiler, LoadCacheProfile

    previous = folder_paths.get_output_directory()
    folder_paths.set_output_directory(str(tmp_path))
    try:
        (profiling,) = run_node(BlockProfiler, model=flux.patcher, profile_name="heun", calibrate_speedups="2.5",
                                extra_seeds=0, search_evaluations=4)
        tiny_models.sample(profiling, flux, steps=STEPS, cfg=CFG, sampler="heun")
        profile, _, _ = run_node(LoadCacheProfile, profile="heun.json")
    finally:
        folder_paths.set_output_directory(previous)
    assert profile["steps"] == STEPS and len(profile["sigmas"]) == STEPS
    assert all(len(plan["plan"]) == STEPS for plan in profile["calibration"]["plans"])
    cached = run_node(CalibratedCache, model=flux.patcher, profile=profile, speedup=2.5, cache_device="model device")[0]
    out, report = sample_with_report(cached, flux, sampler="heun")
    assert report.steps == STEPS and report.full_steps < STEPS and torch.isfinite(out).all()


def test_every_evaluation_of_a_skipped_step_gets_its_own_stand_in(flux):
    """On heun, a reused step's two evaluations each add the cached residual to their own input:
    both are stood in for (no block runs), and their outputs differ as their inputs do."""
    patched, reports = attach_policy(flux, ReuseSchedule(interval=3, warmup_steps=1))
    tiny_models.sample(patched, flux, steps=STEPS, cfg=CFG, sampler="heun")
    by_step: dict[int, list[str]] = {}
    for call in reports[0].calls:
        by_step.setdefault(call.step, []).append(call.block_actions)
    assert all(len(calls) == 2 for step, calls in by_step.items() if step > 0)
    for step in (2, 3, 5, 6, 8, 9):
        assert all(set(actions) == {"R"} for actions in by_step[step])


def test_the_custom_sampler_path_counts_sampler_steps(flux):
    """SamplerCustomAdvanced with heun: the report's steps are the sampler's."""
    import comfy_extras.nodes_custom_sampler as custom

    patched = fora(flux.patcher, interval=3)
    reports = []
    attached_engine(patched).report_listeners.append(reports.append)
    g = torch.Generator().manual_seed(1234)
    guider = custom.CFGGuider.execute(patched, flux.make_cond(g), flux.make_cond(g), CFG)[0]
    sampler = custom.KSamplerSelect.execute("heun")[0]
    sigmas = custom.BasicScheduler.execute(patched, "simple", STEPS, 1.0)[0]
    noise = custom.RandomNoise.execute(0)[0]
    out = custom.SamplerCustomAdvanced.execute(noise, guider, sampler, sigmas, {"samples": torch.zeros(flux.latent_shape)})
    assert reports[0].steps == STEPS
    assert [s for s, a in enumerate(reports[0].step_actions()) if a == "compute"] == FORA_COMPUTES
    assert torch.isfinite(out[0]["samples"]).all()


@pytest.mark.parametrize("sampler", [s for s in SAMPLERS if s.endswith("cfg_pp")])
def test_a_cfg_pp_sampler_reads_each_streams_own_stand_in_on_output_reuse_steps(flux, sampler):
    """CFG++ samplers read the uncond prediction through a post-CFG function: on a plan's V steps
    the calls still run through ComfyUI's guidance, and the uncond prediction the sampler gets is
    x - sigma * d of the uncond stream's last computed step."""
    plan = "CCVVCVVCVV"
    patched, _ = attach_policy(flux, PlannedSchedule(plan))
    seen = []

    def capture(args: dict) -> torch.Tensor:
        seen.append((args["input"].clone(), args["sigma"].clone(), args["uncond_denoised"].clone()))
        return args["denoised"]

    patched.set_model_sampler_post_cfg_function(capture)
    reports = []
    attached_engine(patched).report_listeners.append(reports.append)
    out = tiny_models.sample(patched, flux, steps=STEPS, cfg=CFG, sampler=sampler)
    assert torch.isfinite(out).all()
    calls = reports[0].calls                        # one per evaluation: cond and uncond batched
    assert len(seen) == len(calls)                  # the post-CFG functions ran on every evaluation, V steps too
    assert {plan[c.step] for c in calls if c.block_actions.startswith("V")} == {"V"}
    direction = None
    for call, (x, sigma, uncond) in zip(calls, seen):
        s = sigma.reshape(-1, *([1] * (x.ndim - 1)))
        if plan[call.step] == "C":
            direction = (x - uncond) / s
        else:
            assert torch.allclose(uncond, x - s * direction, rtol=1e-5, atol=1e-5 * float(uncond.abs().max()))


def test_a_calibrated_plan_is_refused_on_another_schedule_of_the_same_step_count(flux):
    """A plan carries the sigmas it was calibrated on: a run at the same step count under another
    scheduler is refused before it samples, with the fix named."""
    from comfyui_dit_cache.cache_core.policies.base import StepsMismatchError

    sigmas = comfy.samplers.calculate_sigmas(flux.patcher.get_model_object("model_sampling"), "simple", STEPS)
    patched = calibrated(flux.patcher, sigmas[:-1].tolist())
    out = tiny_models.sample(patched, flux, steps=STEPS, cfg=CFG, scheduler="simple")
    assert torch.isfinite(out).all()
    with pytest.raises(StepsMismatchError, match="another schedule.*scheduler, shift or denoise"):
        tiny_models.sample(patched, flux, steps=STEPS, cfg=CFG, scheduler="karras")
