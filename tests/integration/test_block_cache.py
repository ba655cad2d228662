"""Block Cache (profiled) on the real runtime: a per-block schedule from a Block Profiler profile.
Each block computed on every step is bit-identical to the unpatched model; where blocks add
nothing every schedule reproduces the uncached run exactly; with real blocks the run equals an
independent per-block cache that computes each block on the steps the run computed it; the run
report counts block computes; a profile of another model is refused."""
from __future__ import annotations

import pytest
import torch

import tiny_models
from helpers import CFG, STEPS, WINDOW, fora, run_node, sample_with_report
from per_block_reference import per_block_cache

from comfyui_dit_cache.cache_core.attachment.attach import adapter_for
from comfyui_dit_cache.cache_core.profiles.profile_io import ProfileError
from comfyui_dit_cache.nodes import BlockCache, BlockProfiler


def profile_of(tiny) -> dict:
    """The Block Profiler's profile of `tiny` at the tests' step count (as Load Cache Profile gives it)."""
    reports = []
    (profiler,) = run_node(BlockProfiler, model=tiny.patcher, profile_name="unused")
    from comfyui_dit_cache.cache_core.attachment.attach import attached_engine

    engine = attached_engine(profiler)
    engine.report_listeners = [reports.append]   # the profile itself, not its file
    tiny_models.sample(profiler, tiny, steps=STEPS, cfg=CFG)
    return {**reports[0].extras["profile"], "name": "tiny"}


def block_cache(patcher, profile: dict, threshold: float, max_skip: int = 3):
    return run_node(BlockCache, model=patcher, profile=profile, threshold=threshold, max_skip=max_skip, **WINDOW)[0]


def mixing_threshold(profile: dict) -> float:
    """A threshold between the blocks' typical changes: some blocks reuse, others compute."""
    changes = sorted(v for row in profile["block_rel_l1"][1:] for v in row if v is not None and v == v)
    return 2 * changes[len(changes) // 2]


def blocks_computed_at(report, tiny) -> dict[tuple, set[int]]:
    """Per block key, the steps at which the run computed it (every call of a step agrees)."""
    specs = adapter_for(tiny.patcher).blocks(tiny.patcher.model.diffusion_model)
    return {spec.key: {c.step for c in report.calls if c.block_actions[i] == "C"} for i, spec in enumerate(specs)}


@pytest.fixture(scope="module")
def profiles(tiny_cache):
    return {}


def _profile(profiles: dict, name: str, tiny) -> dict:
    if name not in profiles:
        profiles[name] = profile_of(tiny)
    return profiles[name]


def test_every_block_computed_is_bit_identical_to_the_model(block_tiny, profiles, request):
    profile = _profile(profiles, request.node.callspec.id, block_tiny)
    out, report = sample_with_report(block_cache(block_tiny.patcher, profile, threshold=0.0), block_tiny)
    assert torch.equal(out, tiny_models.sample(block_tiny.patcher, block_tiny, steps=STEPS, cfg=CFG))
    assert report.full_steps == STEPS


def test_where_blocks_add_nothing_a_per_block_schedule_reproduces_the_uncached_run(block_tiny, profiles, request):
    silent = tiny_models.with_silent_blocks(block_tiny)
    profile = _profile(profiles, request.node.callspec.id, block_tiny)
    out, report = sample_with_report(block_cache(silent.patcher, profile, mixing_threshold(profile)), silent)
    assert report.blocks_scheduled_alone
    assert torch.equal(out, tiny_models.sample(silent.patcher, silent, steps=STEPS, cfg=CFG))


def test_with_real_blocks_the_run_equals_a_per_block_cache_on_the_same_block_steps(block_tiny, profiles, request):
    profile = _profile(profiles, request.node.callspec.id, block_tiny)
    out, report = sample_with_report(block_cache(block_tiny.patcher, profile, mixing_threshold(profile)), block_tiny)
    assert report.blocks_scheduled_alone and 0 < report.blocks_computed < report.block_evaluations
    assert f"blocks computed {report.blocks_computed}/{report.block_evaluations}" in report.summary_line()
    reference = tiny_models.sample(per_block_cache(block_tiny.patcher, blocks_computed_at(report, block_tiny), 0),
                                   block_tiny, steps=STEPS, cfg=CFG)
    scale = float(reference.abs().max())
    assert torch.allclose(out, reference, rtol=1e-4, atol=1e-4 * scale)


def test_a_per_block_cache_holds_one_residual_per_block_and_reports_it(profiles):
    flux = tiny_models.tiny_flux()
    profile = _profile(profiles, "flux", flux)
    _, per_block = sample_with_report(block_cache(flux.patcher, profile, mixing_threshold(profile)), flux)
    _, whole_stack = sample_with_report(fora(flux.patcher, interval=3), flux)
    # 2 two-stream blocks (image and text) and 4 joint blocks, against one stack residual
    assert per_block.cache_peak_bytes > 4 * whole_stack.cache_peak_bytes > 0


def test_a_profile_of_another_model_is_refused_with_the_fix(profiles):
    flux, wan = tiny_models.tiny_flux(), tiny_models.tiny_wan()
    profile = _profile(profiles, "flux", flux)
    with pytest.raises(ProfileError, match="made on a flux model but this model is wan"):
        block_cache(wan.patcher, profile, 0.1)
    fewer = {**profile, "blocks": profile["blocks"][:-1], "block_rel_l1": [r[:-1] for r in profile["block_rel_l1"]]}
    with pytest.raises(ProfileError, match="measured 5 blocks, but this model has 6 .* a profile of another model"):
        block_cache(flux.patcher, fewer, 0.1)


def per_block_plan(profile: dict, plan: str, kept: list[int]) -> dict:
    """`profile` holding one calibrated plan that keeps `kept` blocks computed on its skipped steps."""
    return {**profile, "calibration": {"plans": [{"speedup": 2.0, "computes": plan.count("C"), "plan": plan,
                                                  "kept_blocks": kept, "psnr_worst": 30.0}]}}


def calibrated(patcher, profile: dict):
    from comfyui_dit_cache.nodes import CalibratedCache

    return run_node(CalibratedCache, model=patcher, profile=profile, speedup=2.0, cache_device="model device")[0]


def test_a_per_block_plan_computes_its_kept_blocks_on_skipped_steps_as_a_per_block_cache_would(profiles):
    flux = tiny_models.tiny_flux()
    plan, kept = "CRRCRRCRRC", [0, 5]
    profile = per_block_plan(_profile(profiles, "flux", flux), plan, kept)
    out, report = sample_with_report(calibrated(flux.patcher, profile), flux)
    skipped = [c.block_actions for c in report.calls if plan[c.step] != "C"]
    assert skipped and all(letters == "CRRRRC" for letters in skipped)
    calls_per_step = len(report.calls) // STEPS
    assert report.blocks_computed == (4 * 6 + 6 * 2) * calls_per_step   # 4 full steps, 6 skipped ones of 2 blocks
    reference = tiny_models.sample(per_block_cache(flux.patcher, blocks_computed_at(report, flux), 0), flux,
                                   steps=STEPS, cfg=CFG)
    scale = float(reference.abs().max())
    assert torch.allclose(out, reference, rtol=1e-4, atol=1e-4 * scale)
    silent = tiny_models.with_silent_blocks(flux)
    out, _ = sample_with_report(calibrated(silent.patcher, profile), silent)
    assert torch.equal(out, tiny_models.sample(silent.patcher, silent, steps=STEPS, cfg=CFG))


def test_every_family_runs_a_per_block_plan_as_a_per_block_cache_would(block_tiny, profiles, request):
    """The blocks between the kept ones stand in as one span (one residual of the span, not one
    per block): the same output as a cache of each block's own residual, on every block family."""
    tiny = block_tiny
    plan = "CRRCRRCRRC"
    count = len(adapter_for(tiny.patcher).blocks(tiny.patcher.model.diffusion_model))
    kept = [0, count - 1]
    profile = per_block_plan(_profile(profiles, request.node.callspec.id, tiny), plan, kept)
    out, report = sample_with_report(calibrated(tiny.patcher, profile), tiny)
    skipped = [c.block_actions for c in report.calls if plan[c.step] != "C"]
    assert skipped and all(letters == "C" + "R" * (count - 2) + "C" for letters in skipped)
    reference = tiny_models.sample(per_block_cache(tiny.patcher, blocks_computed_at(report, tiny), 0), tiny,
                                   steps=STEPS, cfg=CFG)
    scale = float(reference.abs().max())
    assert torch.allclose(out, reference, rtol=1e-4, atol=1e-4 * scale)


def test_a_per_block_plan_adds_a_post_block_patch_once(block_tiny, profiles, request):
    """Terms added between blocks (ComfyUI's own per-block patches) inside a span that stands in:
    the span's residual holds its blocks' own residuals, the patch adds its term once on top."""
    from test_block_reuse_equivalence import _post_block_patch

    tiny = block_tiny
    calls: list = []
    patched = tiny.patcher.clone()
    patched.set_model_double_block_patch(_post_block_patch(calls))
    tiny_models.sample(patched, tiny, steps=2, cfg=CFG)
    if not calls:
        pytest.skip(f"{tiny.family}'s forward runs no post-block patches on this ComfyUI")
    plan = "CRRCRRCRRC"
    count = len(adapter_for(tiny.patcher).blocks(tiny.patcher.model.diffusion_model))
    profile = per_block_plan(_profile(profiles, request.node.callspec.id, tiny), plan, [0, count - 1])
    out, report = sample_with_report(calibrated(patched, profile), tiny)
    reference = tiny_models.sample(per_block_cache(patched, blocks_computed_at(report, tiny), 0), tiny,
                                   steps=STEPS, cfg=CFG)
    scale = float(reference.abs().max())
    assert torch.allclose(out, reference, rtol=1e-4, atol=1e-4 * scale)


def test_a_per_block_plan_holds_one_residual_for_the_blocks_between_its_kept_ones(profiles):
    """FLUX with its first and last blocks kept: the blocks between them stand in with one
    residual of the joined sequence, as much as a whole-stack cache holds (not one per block)."""
    flux = tiny_models.tiny_flux()
    profile = per_block_plan(_profile(profiles, "flux", flux), "CRRCRRCRRC", [0, 5])
    _, per_block = sample_with_report(calibrated(flux.patcher, profile), flux)
    _, whole_stack = sample_with_report(fora(flux.patcher, interval=3), flux)
    assert per_block.cache_peak_bytes == whole_stack.cache_peak_bytes > 0


def test_a_per_block_plan_of_another_model_is_refused(profiles):
    flux = tiny_models.tiny_flux()
    profile = per_block_plan(_profile(profiles, "flux", flux), "CRRCRRCRRC", [0, 5])
    profile["calibration"]["plans"][0]["kept_blocks"] = [0, 40]
    with pytest.raises(ProfileError, match="keeps block 40 computed, but this model has 6 blocks"):
        calibrated(flux.patcher, profile)


def test_the_profiler_says_the_speedup_a_per_block_plan_runs_in_block_computes(profiles, output_dir):
    from comfyui_dit_cache.cache_core.run.report import RunReport
    from comfyui_dit_cache.nodes.profiler import save_run_profile

    flux = tiny_models.tiny_flux()
    report = RunReport("Profiler", "flux", "", total_steps=STEPS)
    report.extras["profile"] = per_block_plan(_profile(profiles, "flux", flux), "CRRCRRCRRC", [0, 5])
    save_run_profile(report, "per-block")
    # 4 full steps of 6 blocks and 6 skipped steps of 2: 60 block evaluations over 36 computes
    assert any(note.startswith("calibrated 2x (runs 1.67x:") and "blocks 0, 5 computed on every step" in note
               for note in report.notes), report.notes
