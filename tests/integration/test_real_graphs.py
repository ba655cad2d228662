"""The graphs people really build, on ComfyUI's own classes: a ControlNet (a ControlBase whose
residuals the test chooses, applied by ComfyUI's Apply ControlNet node), VACE, context windows,
a two-expert split over KSamplerAdvanced, and steps with several same-shape model calls.

Two kinds of check. Where the blocks add nothing (`with_silent_blocks`), a correct cache
reproduces the uncached output exactly, whatever the model adds between blocks. With real
blocks, the engine must match an independent per-block cache (per_block_reference.py)."""
from __future__ import annotations

import comfy.controlnet
import comfy.sample
import nodes as comfy_nodes
import pytest
import torch

import tiny_models
from helpers import (CFG, STEPS, WINDOW, attach_policy, computed_steps, fora, guided_direction_reuse, run_node,
                     taylorseer)
from per_block_reference import per_block_cache

from comfyui_dit_cache.cache_core.attachment.attach import attached_engine
from comfyui_dit_cache.cache_core.policies import PlannedSchedule
from comfyui_dit_cache.nodes import MagnitudeThreshold


# ---- a ControlNet whose residuals the test chooses ----------------------------------------------------
class ChosenResiduals(comfy.controlnet.ControlBase):
    """Adds a fixed random pattern, scaled by (1 + sigma) so that it changes every step, to the
    image tokens after every double block ("input") and single block ("output"), as FLUX and
    HunyuanVideo ControlNets do."""

    def __init__(self, double_blocks: int, single_blocks: int, hidden: int, seed: int = 5) -> None:
        super().__init__()
        self.layout = (double_blocks, single_blocks, hidden, seed)

    def get_control(self, x_noisy, t, cond, batched_number, transformer_options):
        previous = None
        if self.previous_controlnet is not None:
            previous = self.previous_controlnet.get_control(x_noisy, t, cond, batched_number, transformer_options)
        if self.timestep_range is not None and not self.timestep_range[1] <= float(t[0]) <= self.timestep_range[0]:
            return previous
        double, single, hidden, seed = self.layout
        tokens = x_noisy[0, 0].numel() // 4          # patch size 2 x 2
        g = torch.Generator().manual_seed(seed)
        scale = 0.1 * (1.0 + float(t[0]))
        pattern = [torch.randn(1, tokens, hidden, generator=g).repeat(x_noisy.shape[0], 1, 1) * scale
                   for _ in range(double + single)]
        return self.control_merge({"input": pattern[:double], "output": pattern[double:]}, previous, x_noisy.dtype)

    def copy(self):
        c = ChosenResiduals(*self.layout)
        self.copy_to(c)
        return c


def with_controlnet(tiny, start_percent: float = 0.0, end_percent: float = 1.0):
    """The positive and negative prompts through ComfyUI's Apply ControlNet (Advanced) node."""
    dm = tiny.patcher.model.diffusion_model
    net = ChosenResiduals(len(dm.double_blocks), len(dm.single_blocks), dm.hidden_size)
    g = torch.Generator().manual_seed(1234)
    positive, negative = tiny.make_cond(g), tiny.make_cond(g)
    hint = torch.zeros(1, 32, 32, 3)
    return comfy_nodes.ControlNetApplyAdvanced().apply_controlnet(positive, negative, net, hint, 1.0, start_percent,
                                                                  end_percent)


def sample_prompts(patcher, tiny, positive, negative, latent_shape=None, steps: int = STEPS) -> torch.Tensor:
    latent = torch.zeros(latent_shape or tiny.latent_shape)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(0))
    return comfy.sample.sample(patcher, noise, steps, CFG, "euler", "simple", positive, negative, latent, seed=0,
                               disable_pbar=True)


def run_with_report(patched, tiny, positive, negative, **kwargs):
    reports = []
    attached_engine(patched).report_listeners.append(reports.append)
    return sample_prompts(patched, tiny, positive, negative, **kwargs), reports[0]


CONTROLNET_FAMILIES = ["flux", "hunyuan_video"]


@pytest.mark.parametrize("family", CONTROLNET_FAMILIES)
@pytest.mark.parametrize("cache", ["fora", "taylorseer order 1", "taylorseer guarded"])
def test_a_controlnet_is_not_counted_twice_on_skipped_steps(family, cache):
    silent = tiny_models.with_silent_blocks(tiny_models.BUILDERS[family]())
    positive, negative = with_controlnet(silent)
    uncached = sample_prompts(silent.patcher, silent, positive, negative)
    g = torch.Generator().manual_seed(1234)
    assert not torch.equal(uncached, sample_prompts(silent.patcher, silent, silent.make_cond(g), silent.make_cond(g)))
    patched = {"fora": lambda: fora(silent.patcher, interval=2),
               "taylorseer order 1": lambda: taylorseer(silent.patcher, order=1),
               "taylorseer guarded": lambda: taylorseer(silent.patcher, interval=6, guard_tolerance=10.0)}[cache]()
    cached, report = run_with_report(patched, silent, positive, negative)
    assert report.full_steps < STEPS
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("family", CONTROLNET_FAMILIES)
def test_a_controlnet_active_for_part_of_the_schedule_is_not_counted_twice(family):
    silent = tiny_models.with_silent_blocks(tiny_models.BUILDERS[family]())
    positive, negative = with_controlnet(silent, start_percent=0.2, end_percent=0.6)
    uncached = sample_prompts(silent.patcher, silent, positive, negative)
    cached, report = run_with_report(fora(silent.patcher, interval=3), silent, positive, negative)
    assert report.full_steps < STEPS and torch.equal(cached, uncached)


@pytest.mark.parametrize("family", CONTROLNET_FAMILIES)
@pytest.mark.parametrize("order", [0, 1, 2])
def test_with_a_controlnet_the_engine_matches_a_per_block_cache(family, order):
    tiny = tiny_models.BUILDERS[family]()
    positive, negative = with_controlnet(tiny)
    patched = taylorseer(tiny.patcher, interval=3, warmup_steps=2, order=order)
    cached, report = run_with_report(patched, tiny, positive, negative)
    reference = sample_prompts(per_block_cache(tiny.patcher, set(computed_steps(report)), order), tiny, positive, negative)
    uncached = sample_prompts(tiny.patcher, tiny, positive, negative)
    scale = float(uncached.abs().max())
    assert float((reference - uncached).abs().max()) > 1e-2 * scale   # the caches did act
    assert torch.allclose(cached, reference, rtol=1e-4, atol=1e-4 * scale)


def test_with_a_controlnet_a_reused_output_step_reuses_the_blocks_residual_instead():
    """The model's output would hold the ControlNet's terms of its own step; such calls reuse the
    blocks' residual and get this step's terms, exactly as the same plan with R there."""
    tiny = tiny_models.BUILDERS["flux"]()
    positive, negative = with_controlnet(tiny)
    with_output, reports = attach_policy(tiny, PlannedSchedule("CCVVCVVCVV"))
    with_residual, _ = attach_policy(tiny, PlannedSchedule("CCRRCRRCRR"))
    cached = sample_prompts(with_output, tiny, positive, negative)
    assert torch.equal(cached, sample_prompts(with_residual, tiny, positive, negative))
    assert reports[0].step_actions().count("reuse") == 6 and "reuse_output" not in reports[0].step_actions()


# ---- VACE ---------------------------------------------------------------------------------------------
def vace_prompts(tiny):
    g = torch.Generator().manual_seed(1234)
    return tiny.make_cond(g), tiny.make_cond(g)


def test_vace_hints_are_not_counted_twice_on_skipped_steps():
    silent = tiny_models.with_silent_blocks(tiny_models.BUILDERS["wan_vace"]())
    positive, negative = vace_prompts(silent)
    uncached = sample_prompts(silent.patcher, silent, positive, negative)
    without_hints = [[c[0], {**c[1], "vace_strength": [0.0]}] for c in positive]
    assert not torch.equal(uncached, sample_prompts(silent.patcher, silent, without_hints, negative))
    cached, report = run_with_report(fora(silent.patcher, interval=2), silent, positive, negative)
    assert report.full_steps < STEPS and torch.equal(cached, uncached)


def test_a_guarded_forecast_with_vace_hints_is_exact_where_blocks_add_nothing():
    silent = tiny_models.with_silent_blocks(tiny_models.BUILDERS["wan_vace"]())
    positive, negative = vace_prompts(silent)
    uncached = sample_prompts(silent.patcher, silent, positive, negative)
    cached, report = run_with_report(taylorseer(silent.patcher, interval=6, guard_tolerance=10.0), silent, positive,
                                     negative)
    assert report.forecast_scales and report.full_steps < STEPS
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("order", [0, 2])
def test_with_vace_the_engine_matches_a_per_block_cache(order):
    tiny = tiny_models.BUILDERS["wan_vace"]()
    positive, negative = vace_prompts(tiny)
    cached, report = run_with_report(taylorseer(tiny.patcher, order=order), tiny, positive, negative)
    reference = sample_prompts(per_block_cache(tiny.patcher, set(computed_steps(report)), order), tiny, positive, negative)
    scale = float(reference.abs().max())
    assert torch.allclose(cached, reference, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("graph", ["flux controlnet", "hunyuan_video controlnet", "wan_vace"])
def test_a_guarded_forecast_with_real_blocks_matches_an_independent_guard(graph):
    """TaylorSeer's guard where terms are added between real blocks: the scales fitted and the
    output equal an independent per-block guard's (guarded_reference.py) on the same steps."""
    from guarded_reference import guarded_per_block_cache

    family = graph.split()[0]
    tiny = tiny_models.BUILDERS[family]()
    positive, negative = with_controlnet(tiny) if graph.endswith("controlnet") else vace_prompts(tiny)
    patched = taylorseer(tiny.patcher, interval=3, warmup_steps=2, order=2, guard_tolerance=10.0)
    cached, report = run_with_report(patched, tiny, positive, negative)
    assert report.forecast_scales and report.full_steps < STEPS and report.fallbacks == 0
    reference_model = guarded_per_block_cache(tiny.patcher, set(computed_steps(report)), order=2)
    reference = sample_prompts(reference_model, tiny, positive, negative)
    assert report.forecast_scales == pytest.approx(reference_model.fitted_scales, abs=1e-4)
    scale = float(reference.abs().max())
    assert torch.allclose(cached, reference, rtol=1e-4, atol=1e-4 * scale)


# ---- context windows ----------------------------------------------------------------------------------
LONG_VIDEO = (1, 16, 12, 8, 8)   # 12 latent frames: three windows of 5 with overlap 2


def with_context_windows(patcher):
    from comfy_extras.nodes_context_windows import ContextWindowsManualNode

    return run_node(ContextWindowsManualNode, model=patcher, context_length=5, context_overlap=2,
                    context_schedule="standard_static", context_stride=1, closed_loop=False, fuse_method="pyramid",
                    dim=2)[0]


def test_context_windows_keep_one_step_per_evaluation_and_a_cache_per_window():
    tiny = tiny_models.BUILDERS["wan"]()
    g = torch.Generator().manual_seed(1234)
    positive, negative = tiny.make_cond(g), tiny.make_cond(g)
    windowed = fora(with_context_windows(tiny.patcher), interval=2, warmup_steps=0)
    cached, report = run_with_report(windowed, tiny, positive, negative, latent_shape=LONG_VIDEO)
    assert report.steps == STEPS and report.step_actions() == ["compute", "reuse"] * (STEPS // 2)
    calls_per_step = {s: sum(c.step == s for c in report.calls) for s in range(STEPS)}
    windows = {c.stream for c in report.calls}
    assert len(windows) == 1 and len(set(calls_per_step.values())) == 1
    assert calls_per_step[0] > 1   # one call per window, cond and uncond batched in each
    reference = sample_prompts(per_block_cache(with_context_windows(tiny.patcher), set(computed_steps(report)), 0),
                               tiny, positive, negative, latent_shape=LONG_VIDEO)
    scale = float(reference.abs().max())
    assert torch.allclose(cached, reference, rtol=1e-4, atol=1e-4 * scale)


def with_wan_context_windows(patcher):
    """ComfyUI's WAN Context Windows (Manual): lengths in pixel frames, 17 and 8 giving 5 latent
    frames a window with an overlap of 2."""
    from comfy_extras.nodes_context_windows import WanContextWindowsManualNode

    return run_node(WanContextWindowsManualNode, model=patcher, context_length=17, context_overlap=8,
                    context_schedule="standard_static", context_stride=1, closed_loop=False,
                    fuse_method="pyramid")[0]


def test_wan_context_windows_keep_one_step_per_evaluation_and_a_cache_per_window():
    tiny = tiny_models.BUILDERS["wan"]()
    g = torch.Generator().manual_seed(1234)
    positive, negative = tiny.make_cond(g), tiny.make_cond(g)
    windowed = fora(with_wan_context_windows(tiny.patcher), interval=3, warmup_steps=1)
    cached, report = run_with_report(windowed, tiny, positive, negative, latent_shape=LONG_VIDEO)
    assert report.steps == STEPS and computed_steps(report) == [0, 1, 4, 7]
    calls = {s: [c.block_actions for c in report.calls if c.step == s] for s in range(STEPS)}
    assert len({len(letters) for letters in calls.values()}) == 1 and len(calls[0]) > 1   # a call per window
    assert all(len(set(letters)) == 1 for letters in calls.values())   # every window follows the step
    uncached = sample_prompts(with_wan_context_windows(tiny.patcher), tiny, positive, negative,
                              latent_shape=LONG_VIDEO)
    reference = sample_prompts(per_block_cache(with_wan_context_windows(tiny.patcher), set(computed_steps(report)), 0),
                               tiny, positive, negative, latent_shape=LONG_VIDEO)
    scale = float(reference.abs().max())
    assert float((reference - uncached).abs().max()) > 1e-2 * scale   # the caches did act
    assert torch.allclose(cached, reference, rtol=1e-4, atol=1e-4 * scale)


def test_with_context_windows_each_window_reuses_its_own_model_output():
    """Reused outputs per window, fused as ComfyUI fuses windows, equal the fused output's own
    direction reused (the fusion is a weighted mean)."""
    tiny = tiny_models.BUILDERS["wan"]()
    g = torch.Generator().manual_seed(1234)
    positive, negative = tiny.make_cond(g), tiny.make_cond(g)
    plan = "CCVVCVVCVV"
    engine_model, reports = attach_policy(tiny, PlannedSchedule(plan))
    cached = sample_prompts(with_context_windows(engine_model), tiny, positive, negative, latent_shape=LONG_VIDEO)
    assert reports[0].step_actions() == ["compute" if c == "C" else "reuse_output" for c in plan]
    assert len({c.step for c in reports[0].calls if c.block_actions.startswith("V")}) == plan.count("V")
    reference_model = with_context_windows(tiny.patcher).clone()
    reference_model.set_model_sampler_post_cfg_function(guided_direction_reuse(plan))
    reference = sample_prompts(reference_model, tiny, positive, negative, latent_shape=LONG_VIDEO)
    scale = float(reference.abs().max())
    assert torch.allclose(cached, reference, rtol=1e-4, atol=1e-5 * scale)


# ---- several same-shape calls in one step ---------------------------------------------------------------
def test_same_shape_calls_of_one_step_each_keep_their_own_cache():
    """Two positive prompts of different lengths (Conditioning Combine) and a negative of a third:
    ComfyUI cannot batch them, so each step makes three calls of batch 1, two of them both
    "cond" with the same latent shape. Each keeps its own cache."""
    tiny = tiny_models.BUILDERS["flux"]()
    g = torch.Generator().manual_seed(1234)
    first, second, negative = tiny.make_cond(g), tiny.make_cond(g), tiny.make_cond(g)
    positive = [first[0], [second[0][0][:, :5], second[0][1]]]
    negative = [[negative[0][0][:, :3], negative[0][1]]]
    cached, report = run_with_report(fora(tiny.patcher, interval=2), tiny, positive, negative)
    assert sorted(c.stream for c in report.calls if c.step == 0) == ["cond", "cond", "uncond"]
    reference = sample_prompts(per_block_cache(tiny.patcher, set(computed_steps(report)), 0), tiny, positive, negative)
    scale = float(reference.abs().max())
    assert torch.allclose(cached, reference, rtol=1e-4, atol=1e-4 * scale)


# ---- split sampling ---------------------------------------------------------------------------------------
def k_sampler_advanced(patcher, tiny, start: int, end: int, latent: torch.Tensor, first: bool, last: bool):
    g = torch.Generator().manual_seed(1234)
    return comfy_nodes.KSamplerAdvanced().sample(
        patcher, "enable" if first else "disable", 0, STEPS, CFG, "euler", "simple", tiny.make_cond(g),
        tiny.make_cond(g), {"samples": latent}, start, end, "disable" if last else "enable")[0]["samples"]


def start_latent(tiny) -> torch.Tensor:
    """A latent to start from, not all zeros (KSamplerAdvanced would take an all-zero latent of
    another channel count for an empty one and resize it to the model's latent format); nested
    with its audio for a model that takes nothing else."""
    if tiny.one_audio_video:
        import comfy.nested_tensor

        return comfy.nested_tensor.NestedTensor((torch.full(tiny.latent_shape, 0.01), torch.full(tiny.audio_shape, 0.01)))
    return torch.full(tiny.latent_shape, 0.01)


def packed(latent) -> torch.Tensor:
    """A sampled latent as one tensor (a nested one packed as the sampler sees it)."""
    import comfy.utils

    return latent if isinstance(latent, torch.Tensor) else comfy.utils.pack_latents(latent.unbind())[0]


def split_run(high, low, tiny, at: int) -> torch.Tensor:
    latent = start_latent(tiny)
    middle = k_sampler_advanced(high, tiny, 0, at, latent, first=True, last=False)
    return packed(k_sampler_advanced(low, tiny, at, 10000, middle, first=False, last=True))


def reports_of(patched) -> list:
    reports = []
    attached_engine(patched).report_listeners.append(reports.append)
    return reports


def test_a_run_split_over_two_samplers_decides_and_samples_as_the_run_in_one_piece(tiny):
    """FORA interval 3: steps 0-3 in one KSamplerAdvanced, 4-9 in a second; step 4 is computed in
    the run in one piece too, so the split run makes its decisions and gives its output, to the
    rounding by which ComfyUI's own split differs from its run in one piece."""
    patched = fora(tiny.patcher, interval=3, warmup_steps=1)
    reports = reports_of(patched)
    latent = start_latent(tiny)
    whole = packed(k_sampler_advanced(patched, tiny, 0, 10000, latent, first=True, last=True))
    split = split_run(patched, patched, tiny, at=4)
    whole_report, first, second = reports
    assert [c.step for c in second.calls if c.block_actions][0] == 4
    assert first.step_actions() + second.step_actions() == whole_report.step_actions()
    uncached_gap = (split_run(tiny.patcher, tiny.patcher, tiny, at=4) -
                    packed(k_sampler_advanced(tiny.patcher, tiny, 0, 10000, latent, first=True, last=True))).abs().max()
    assert float((split - whole).abs().max()) <= 4 * float(uncached_gap) + 1e-6 * float(whole.abs().max())


def test_two_experts_each_with_their_own_cache_settings():
    """Wan2.2 A14B style: a high-noise and a low-noise model, each cached by its own node; the
    low-noise expert's retention refers to steps 5-9 of the whole schedule (retention 0.6 of the
    whole 10 steps keeps step 5 computed, then one reuse at most), not to its own 5 steps (which
    would compute three in a row)."""
    high_noise, low_noise = tiny_models.tiny_wan(seed=0), tiny_models.tiny_wan(seed=1)
    high = fora(high_noise.patcher, interval=2, warmup_steps=0)
    curve = {"name": "chosen", "family": "wan", "residual_magnitude_ratio": [1.0] * STEPS}
    low = run_node(MagnitudeThreshold, model=low_noise.patcher, threshold=1.0, max_skip=1, retention_ratio=0.6,
                   curve="auto", profile=curve, **WINDOW)[0]
    high_reports, low_reports = reports_of(high), reports_of(low)
    out = split_run(high, low, high_noise, at=5)
    assert torch.isfinite(out).all()
    assert sorted({c.step for c in high_reports[0].calls}) == [0, 1, 2, 3, 4]
    assert high_reports[0].step_actions() == ["compute", "reuse", "compute", "reuse", "compute"]
    assert sorted({c.step for c in low_reports[0].calls}) == [5, 6, 7, 8, 9]
    assert low_reports[0].step_actions() == ["compute", "reuse", "compute", "reuse", "compute"]


# ---- weights that change during the run -------------------------------------------------------------------
@pytest.mark.parametrize("cache", ["fora", "model output reused"])
def test_a_scheduled_lora_hook_makes_the_first_step_under_new_weights_computed(caplog, cache):
    """A weight hook (ComfyUI's hooks, as the Create Hook LoRA and keyframe nodes make) on the
    prompt, at strength 1 until half the schedule and 0 after: the cached features of the first
    half were computed under other weights, so the step where the strength changes is computed,
    and the run says why once, in the log and in its report."""
    import logging

    import comfy.hooks

    tiny = tiny_models.BUILDERS["flux"]()
    key = next(k for k in tiny.patcher.model_state_dict() if k.endswith("double_blocks.0.img_attn.qkv.weight"))
    weight = tiny.patcher.model_state_dict()[key]
    hooks = comfy.hooks.create_hook_lora({key: ("diff", (torch.randn(weight.shape, generator=torch.Generator()
                                                                      .manual_seed(3)) * 0.2,))}, 1.0, 1.0)
    keyframes = comfy.hooks.HookKeyframeGroup()
    keyframes.add(comfy.hooks.HookKeyframe(strength=1.0, start_percent=0.0))
    keyframes.add(comfy.hooks.HookKeyframe(strength=0.0, start_percent=0.5))
    hooks.set_keyframes_on_hooks(keyframes)
    g = torch.Generator().manual_seed(1234)
    positive = comfy.hooks.set_hooks_for_conditioning(tiny.make_cond(g), hooks)
    negative = tiny.make_cond(g)

    def cached():
        if cache == "fora":
            return fora(tiny.patcher, interval=4, warmup_steps=0)
        return attach_policy(tiny, PlannedSchedule("CVVVCVVVCV"))[0]
    plain, plain_report = run_with_report(cached(), tiny, tiny.make_cond(g), tiny.make_cond(g))
    with caplog.at_level(logging.WARNING):
        hooked, report = run_with_report(cached(), tiny, positive, negative)
    assert torch.isfinite(hooked).all()
    plain_computed, computed = computed_steps(plain_report), computed_steps(report)
    changed_at = next(s for s in computed if s not in plain_computed)
    assert set(plain_computed) < set(computed) and len(computed) == len(plain_computed) + 1
    assert 4 <= changed_at <= 6   # where the strength changes, half-way through 10 steps
    assert len(report.notes) == 1 and "a hook keyframe changed the model's weights" in report.notes[0]
    assert caplog.text.count("a hook keyframe changed the model's weights") == 1


# ---- other packs' block patches ----------------------------------------------------------------------------
def injecting_patch(calls: list):
    """A block patch of the kind identity and adapter packs set (PuLID-style): it computes the
    block, then adds a fixed injection to its image tokens."""
    def patch(args: dict, extra: dict) -> dict:
        calls.append(1)
        out = extra["original_block"](args)
        direction = torch.randn(1, 1, out["img"].shape[-1], generator=torch.Generator().manual_seed(11))
        out["img"] = out["img"] + 0.5 * direction
        return out
    return patch


def test_a_block_patch_set_before_the_cache_stays_in_charge_of_its_block():
    """Where the blocks add nothing, the injection is the whole of what block 1 adds: caching
    reuses it (to float rounding: the cached residual is (x + c) - x), and the patch runs on
    computed steps only."""
    silent = tiny_models.with_silent_blocks(tiny_models.BUILDERS["flux"]())
    calls: list = []
    injected = silent.patcher.clone()
    injected.set_model_patch_replace(injecting_patch(calls), "dit", "double_block", 1)
    g = torch.Generator().manual_seed(1234)
    positive, negative = silent.make_cond(g), silent.make_cond(g)
    uncached = sample_prompts(injected, silent, positive, negative)
    calls.clear()
    cached, report = run_with_report(fora(injected, interval=2, warmup_steps=0), silent, positive, negative)
    assert len(calls) == report.full_steps < STEPS
    scale = float(uncached.abs().max())
    without = sample_prompts(silent.patcher, silent, positive, negative)
    assert float((uncached - without).abs().max()) > 1e-2 * scale      # the injection matters
    assert torch.allclose(cached, uncached, rtol=0, atol=1e-5 * scale)


def test_a_block_patch_set_after_the_cache_makes_every_step_computed(caplog):
    """Set after the caching node, the patch replaces the cache's hook on its block: the cache
    cannot skip the stack as a whole, so it computes every step and says why once."""
    import logging

    flux = tiny_models.BUILDERS["flux"]()
    calls: list = []
    cached = fora(flux.patcher, interval=2)
    cached.set_model_patch_replace(injecting_patch(calls), "dit", "double_block", 1)
    uncached_with_patch = flux.patcher.clone()
    uncached_with_patch.set_model_patch_replace(injecting_patch([]), "dit", "double_block", 1)
    g = torch.Generator().manual_seed(1234)
    positive, negative = flux.make_cond(g), flux.make_cond(g)
    with caplog.at_level(logging.WARNING):
        out, report = run_with_report(cached, flux, positive, negative)
    assert len(calls) == STEPS
    assert torch.equal(out, sample_prompts(uncached_with_patch, flux, positive, negative))
    assert len(report.notes) == 1 and "replaced the cache's hook on 1 block(s) (double_block 1" in report.notes[0]
    assert caplog.text.count("Put the caching node after the nodes that patch blocks") == 1
