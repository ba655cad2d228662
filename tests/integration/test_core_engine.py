"""The foundation's promises, on tiny real models of every family through comfy.sample.sample."""
from __future__ import annotations

import copy
import gc

import pytest
import torch

import tiny_models
from helpers import attach_policy, block_modules, count_block_calls, reference

from comfyui_dit_cache.cache_core.attachment.attach import UnsupportedModelError, adapter_for
from comfyui_dit_cache.cache_core.run.engine import ENGINE_KEY, RUN_KEY
from comfyui_dit_cache.cache_core.policies import AlwaysCompute, ReuseSchedule
from comfyui_dit_cache.cache_core.run.sampling_run import SamplingRun

STEPS = 8


def live_runs() -> int:
    gc.collect()
    return sum(isinstance(o, SamplingRun) for o in gc.get_objects())


def test_compute_all_is_bit_identical_with_cfg(tiny, reference_outputs):
    patched, reports = attach_policy(tiny, AlwaysCompute())
    out = tiny_models.sample(patched, tiny, steps=STEPS, cfg=3.0)
    assert torch.equal(out, reference(tiny, reference_outputs, steps=STEPS, cfg=3.0))
    batched = {frozenset({"cond", "uncond"})} if tiny.calls_per_step == 1 else {frozenset({"cond"}), frozenset({"uncond"})}
    assert {frozenset(c.stream.split("+")) for c in reports[0].calls} == batched


def test_hooks_see_every_block_of_every_step(tiny):
    patched, reports = attach_policy(tiny, AlwaysCompute())
    with count_block_calls(tiny) as counts:
        tiny_models.sample(patched, tiny, steps=STEPS, cfg=3.0)
    report = reports[0]
    n_blocks = len(block_modules(tiny))
    assert [c.step for c in report.calls] == [s for s in range(STEPS) for _ in range(tiny.calls_per_step)]
    assert all(c.block_actions == "C" * n_blocks for c in report.calls)
    assert counts == [STEPS * tiny.calls_per_step] * n_blocks


def test_reuse_every_other_step_skips_real_block_computation(tiny, reference_outputs):
    patched, reports = attach_policy(tiny, ReuseSchedule(interval=2))
    with count_block_calls(tiny) as counts:
        out = tiny_models.sample(patched, tiny, steps=STEPS, cfg=3.0)
    assert counts == [STEPS // 2 * tiny.calls_per_step] * len(counts)
    assert reports[0].step_actions() == ["compute", "reuse"] * (STEPS // 2)
    assert out.shape == tiny.sample_shape and torch.isfinite(out).all()
    assert not torch.equal(out, reference(tiny, reference_outputs, steps=STEPS, cfg=3.0))


# Their conditioning pads prompts to one length, so cond and uncond are always batched.
PADS_PROMPTS = {"flux2", "ltx2", "ltx2_video_only", "sd15_whole_model"}


def test_cond_and_uncond_in_separate_calls_make_one_step(tiny, request):
    """A negative prompt of another length cannot be batched with the positive one, so ComfyUI
    calls the model twice per step; both calls belong to the same step and follow its decision."""
    padded = request.node.callspec.params["tiny"] in PADS_PROMPTS
    g = torch.Generator().manual_seed(1234)
    positive, negative = tiny.make_cond(g), tiny.make_cond(g)
    options = dict(negative[0][1])
    if "attention_mask" in options:   # a text encoder's mask has one entry per token
        options["attention_mask"] = options["attention_mask"][:, :7]
    negative = [[negative[0][0][:, :7], options]]   # 7 tokens against 8
    patched, reports = attach_policy(tiny, ReuseSchedule(interval=2))
    with count_block_calls(tiny) as counts:
        tiny_models.sample(patched, tiny, steps=STEPS, cfg=3.0, conds=(positive, negative))
    report = reports[0]
    calls_per_step = 1 if padded else 2
    assert sorted(c.stream for c in report.calls if c.step == 0) == (["uncond+cond"] if padded else ["cond", "uncond"])
    assert [c.step for c in report.calls] == [s for s in range(STEPS) for _ in range(calls_per_step)]
    assert report.step_actions() == ["compute", "reuse"] * (STEPS // 2)
    assert counts == [STEPS // 2 * calls_per_step] * len(counts)
    assert len(report.sigmas) == STEPS and report.sigmas == sorted(report.sigmas, reverse=True)


def test_run_state_is_gone_after_a_run(tiny):
    patched, reports = attach_policy(tiny, ReuseSchedule(interval=2))
    tiny_models.sample(patched, tiny, steps=4)
    assert RUN_KEY not in patched.model_options["transformer_options"]
    assert live_runs() == 0
    assert reports[0].interrupted is False


def test_run_state_is_gone_after_an_interrupted_run(tiny):
    patched, reports = attach_policy(tiny, ReuseSchedule(interval=2))

    def stop_at_step_two(step, *_):
        if step == 2:
            raise KeyboardInterrupt("user cancelled")

    with pytest.raises(KeyboardInterrupt):
        tiny_models.sample(patched, tiny, steps=6, callback=stop_at_step_two)
    assert RUN_KEY not in patched.model_options["transformer_options"]
    assert live_runs() == 0
    assert reports[0].interrupted is True and reports[0].steps == 3


def test_attaching_leaves_the_original_patcher_unchanged(tiny, reference_outputs):
    options_before = copy.deepcopy(tiny.patcher.model_options)
    wrappers_before = copy.deepcopy(tiny.patcher.wrappers)
    patched, _ = attach_policy(tiny, ReuseSchedule(interval=2))
    assert tiny.patcher.model_options == options_before
    assert tiny.patcher.wrappers == wrappers_before
    assert ENGINE_KEY in patched.model_options["transformer_options"]
    tiny_models.sample(patched, tiny, steps=STEPS, cfg=3.0)
    assert torch.equal(tiny_models.sample(tiny.patcher, tiny, steps=STEPS, cfg=3.0),
                       reference(tiny, reference_outputs, steps=STEPS, cfg=3.0))


def test_a_model_socket_without_a_diffusion_model_is_named_in_the_error():
    import comfy.model_patcher

    foreign = comfy.model_patcher.ModelPatcher(torch.nn.Linear(2, 2), torch.device("cpu"), torch.device("cpu"))
    with pytest.raises(UnsupportedModelError, match="ModelPatcher without a diffusion model"):
        adapter_for(foreign)


def test_the_runs_conditioning_moves_to_the_device_and_the_users_stays(tiny):
    """ComfyUI's encoding of the prompt for one run (process_conds) is moved, tensors and lists of
    tensors alike; the prompt the user's workflow holds keeps its tensors where they were."""
    import comfy.sampler_helpers
    import comfy.samplers

    from comfyui_dit_cache.cache_core.attachment.conditioning import move_conditioning

    g = torch.Generator().manual_seed(0)
    positive = tiny.make_cond(g)
    users = [positive[0][0]] + [v for v in positive[0][1].values() if torch.is_tensor(v)]
    conds = {"positive": comfy.sampler_helpers.convert_cond(positive)}
    noise = torch.randn(tiny.latent_shape, generator=g)
    conds = comfy.samplers.process_conds(tiny.patcher.model, noise, conds, "cpu", seed=0)
    moved = move_conditioning(conds, torch.device("meta"))
    held = [getattr(c, "cond", None) for c in conds["positive"][0]["model_conds"].values()]
    tensors = [t for value in held for t in (value if isinstance(value, list) else [value]) if torch.is_tensor(t)]
    assert moved > 0 and tensors and all(t.device.type == "meta" for t in tensors)
    assert all(t.device.type == "cpu" for t in users)
    assert move_conditioning(conds, torch.device("meta")) == 0   # already there: nothing copied again
