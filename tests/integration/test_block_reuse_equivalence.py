"""FORA and TaylorSeer are defined per block: every block's residual is cached (or forecast) and
added to that block's input. The engine keeps one residual of the whole stack instead. This
checks that the two give the same picture, against an independent per-block implementation
(per_block_reference.py) through ComfyUI's own `patches_replace["dit"]` block hooks."""
from __future__ import annotations

import pytest
import torch

import tiny_models
from helpers import block_modules, run_node
from per_block_reference import per_block_cache

from comfyui_dit_cache.cache_core.attachment.attach import attached_engine
from comfyui_dit_cache.nodes import ApplyFORA, TaylorSeerForecast

STEPS = 10
WINDOW = dict(start_percent=0.0, end_percent=1.0, cache_device="model device")


def engine_run(patched, tiny) -> tuple[torch.Tensor, list[int]]:
    reports = []
    attached_engine(patched).report_listeners.append(reports.append)
    out = tiny_models.sample(patched, tiny, steps=STEPS, cfg=3.0)
    computed = [s for s, a in enumerate(reports[0].step_actions()) if a == "compute"]
    return out, computed


@pytest.mark.parametrize("method", ["fora", "taylorseer order 1", "taylorseer order 2", "taylorseer foca"])
def test_one_stack_residual_gives_the_per_block_result(block_tiny, method):
    tiny = block_tiny
    foca = method == "taylorseer foca"
    if method == "fora":
        node, inputs, order = ApplyFORA, dict(interval=3, warmup_steps=1), 0
    else:
        order = 2 if foca else int(method[-1])
        node, inputs = TaylorSeerForecast, dict(interval=3, warmup_steps=2, order=order, guard_tolerance=0.0,
                                                forecaster="foca" if foca else "taylor")
    stack_out, computed = engine_run(run_node(node, model=tiny.patcher, **inputs, **WINDOW)[0], tiny)
    assert len(computed) < STEPS

    calls = [0] * len(block_modules(tiny))
    hooks = [m.register_forward_pre_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
             for i, m in enumerate(block_modules(tiny))]
    try:
        per_block_out = tiny_models.sample(per_block_cache(tiny.patcher, set(computed), order, foca), tiny, steps=STEPS,
                                           cfg=3.0)
    finally:
        for h in hooks:
            h.remove()
    assert calls == [len(computed) * tiny.calls_per_step] * len(calls)   # the reference really skipped the other steps

    uncached = tiny_models.sample(tiny.patcher, tiny, steps=STEPS, cfg=3.0)
    scale = float(uncached.abs().max())
    assert float((per_block_out - uncached).abs().max()) > 1e-2 * scale   # the caches did act
    assert torch.allclose(stack_out, per_block_out, rtol=1e-4, atol=1e-4 * scale)


def test_each_channel_forecast_by_its_own_solver_gives_the_per_block_result(block_tiny):
    """HyCa's `H` steps: per hidden channel reuse, Taylor 1, Taylor 2 or FoCa, on the real blocks
    of every family, against the per-block reference forecasting each channel itself. The
    assignment's width is the one a calibration's reference run records on the model."""
    from comfyui_dit_cache.cache_core.calibration.channel_recording import RecordingReference
    from comfyui_dit_cache.cache_core.policies import PlannedSchedule
    from helpers import attach_policy

    tiny = block_tiny
    recording = RecordingReference()
    uncached = tiny_models.sample(attach_policy(tiny, recording)[0], tiny, steps=STEPS, cfg=3.0)
    trajectories = recording.trajectories()
    assert torch.equal(uncached, tiny_models.sample(tiny.patcher, tiny, steps=STEPS, cfg=3.0))   # recording only
    if tiny.family == "ltx2":   # the engine holds its (video, audio) packed flat: no channels to assign
        assert trajectories == []
        return
    assert trajectories and all(t.shape[0] == STEPS for t in trajectories)   # every step of every stream
    solvers = "".join("PR12"[c % 4] for c in range(trajectories[0].shape[-1]))
    plan = "CCCHHCHHCH"
    stack_out = tiny_models.sample(attach_policy(tiny, PlannedSchedule(plan, channel_solvers=solvers))[0], tiny,
                                   steps=STEPS, cfg=3.0)
    computed = {step for step, letter in enumerate(plan) if letter == "C"}
    per_block_out = tiny_models.sample(per_block_cache(tiny.patcher, computed, 2, channel_solvers=solvers), tiny,
                                       steps=STEPS, cfg=3.0)
    scale = float(uncached.abs().max())
    assert float((per_block_out - uncached).abs().max()) > 1e-2 * scale   # the caches did act
    assert torch.allclose(stack_out, per_block_out, rtol=1e-4, atol=1e-4 * scale)


def _post_block_patch(calls: list):
    """A per-block patch of ComfyUI's own kind (`set_model_double_block_patch`, run by the model's
    forward after each block, as DiffSynth ControlNets and Wan's newer forward do): it adds a
    fixed term to the image tokens after block 1."""
    def patch(args: dict) -> dict:
        calls.append(1)
        out = dict(args)
        if args.get("block_index") == 1:
            img = args["img"]
            direction = torch.randn(1, 1, img.shape[-1], generator=torch.Generator().manual_seed(11))
            out["img"] = img + 0.5 * direction.to(img)
        return out
    return patch


def test_terms_a_post_block_patch_adds_are_not_reused_with_the_blocks(block_tiny):
    """A skipped step adds the blocks' own residuals, and the patch its own term on top, once:
    the same as the per-block reference (where the model runs such patches on this ComfyUI)."""
    tiny = block_tiny
    calls: list = []
    patched = tiny.patcher.clone()
    patched.set_model_double_block_patch(_post_block_patch(calls))
    tiny_models.sample(patched, tiny, steps=2, cfg=3.0)
    if not calls:
        pytest.skip(f"{tiny.family}'s forward runs no post-block patches on this ComfyUI")

    stack_out, computed = engine_run(run_node(ApplyFORA, model=patched, interval=3, warmup_steps=1, **WINDOW)[0], tiny)
    assert len(computed) < STEPS
    per_block_out = tiny_models.sample(per_block_cache(patched, set(computed), 0), tiny, steps=STEPS, cfg=3.0)
    scale = float(per_block_out.abs().max())
    assert torch.allclose(stack_out, per_block_out, rtol=1e-4, atol=1e-4 * scale)
