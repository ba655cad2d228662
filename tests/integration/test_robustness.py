"""The ways people really use a cached model: cancelled runs, reused models, branches, LoRAs,
torch.compile, bad input, many runs in a row."""
from __future__ import annotations

import gc

import comfy.model_management
import pytest
import torch

import tiny_models
from helpers import attach_policy

from comfyui_dit_cache.cache_core.attachment.attach import attach_engine, attached_engine
from comfyui_dit_cache.cache_core.attachment.run_scope import InvalidLatentError
from comfyui_dit_cache.cache_core.policies import AdaptiveThreshold, ReuseSchedule, TaylorForecastSchedule
from comfyui_dit_cache.cache_core.stand_ins.predictors import ResidualPredictor
from comfyui_dit_cache.cache_core.run.sampling_run import SamplingRun

STEPS = 8
# The TeaCache authors' FLUX polynomial, used on every family here: only the schedule's sharing matters.
TEACACHE_FLUX = (4.98651651e02, -2.83781631e02, 5.58554382e01, -3.82021401e00, 2.64230861e-01)


def test_a_run_after_an_interrupted_one_equals_a_run_never_interrupted(tiny):
    patched, reports = attach_policy(tiny, ReuseSchedule(interval=2))
    clean = tiny_models.sample(patched, tiny, steps=STEPS, cfg=3.0)

    def cancel_at_step_three(step, *_):
        if step == 3:  # what the server's progress hook does when the user presses Cancel
            comfy.model_management.interrupt_current_processing()
            comfy.model_management.throw_exception_if_processing_interrupted()

    with pytest.raises(comfy.model_management.InterruptProcessingException):
        tiny_models.sample(patched, tiny, steps=STEPS, cfg=3.0, callback=cancel_at_step_three)
    assert reports[-1].interrupted
    assert torch.equal(tiny_models.sample(patched, tiny, steps=STEPS, cfg=3.0), clean)


RUN_VARIANTS = [
    dict(steps=6, cfg=3.0, sampler="euler"),
    dict(steps=9, cfg=1.0, sampler="dpmpp_2m"),
    dict(steps=5, cfg=5.0, sampler="euler_ancestral", batch=2),
    dict(steps=7, cfg=2.0, sampler="heun", scale=2),
]


def _run(patched, tiny, steps, cfg, sampler, batch=1, scale=1):
    shape = list(tiny.latent_shape)
    shape[0] = batch
    shape[-1] *= scale
    shape[-2] *= scale
    return tiny_models.sample(patched, tiny, steps=steps, cfg=cfg, sampler=sampler, latent_shape=tuple(shape))


def test_one_patched_model_serves_runs_of_any_shape_and_sampler_each_as_if_alone(tiny):
    variants = [v for v in RUN_VARIANTS if not (tiny.one_audio_video and v.get("batch", 1) > 1)]
    shared, _ = attach_policy(tiny, AdaptiveThreshold(TEACACHE_FLUX, 0.5, max_consecutive_reuse=2))
    in_sequence = [_run(shared, tiny, **v) for v in variants]
    for variant, output in zip(variants, in_sequence):
        alone, _ = attach_policy(tiny, AdaptiveThreshold(TEACACHE_FLUX, 0.5, max_consecutive_reuse=2))
        assert torch.equal(output, _run(alone, tiny, **variant)), variant
        assert torch.isfinite(output).all()


def test_two_branches_with_different_caches_do_not_leak_into_each_other(tiny):
    fora, _ = attach_policy(tiny, ReuseSchedule(interval=2))
    taylor, _ = attach_policy(tiny, TaylorForecastSchedule(interval=3, warmup_steps=2, order=1))
    fora_alone = tiny_models.sample(fora, tiny, steps=STEPS, cfg=3.0)
    taylor_alone = tiny_models.sample(taylor, tiny, steps=STEPS, cfg=3.0)
    for _ in range(2):  # interleaved, as two branches of one workflow run
        assert torch.equal(tiny_models.sample(fora, tiny, steps=STEPS, cfg=3.0), fora_alone)
        assert torch.equal(tiny_models.sample(taylor, tiny, steps=STEPS, cfg=3.0), taylor_alone)


def _live(kind) -> int:
    gc.collect()
    return sum(isinstance(o, kind) for o in gc.get_objects())


def _tensor_bytes() -> int:
    """Bytes of the live tensors that hold memory (not the fake and meta tensors torch.compile
    leaves behind when a compile test ran earlier in the session, whose sizes are symbolic)."""
    gc.collect()
    return sum(o.numel() * o.element_size() for o in gc.get_objects()
               if torch.is_tensor(o) and o.device.type != "meta" and isinstance(o.numel(), int))


def _pack_objects() -> int:
    gc.collect()
    modules = (getattr(type(o), "__module__", None) for o in gc.get_objects())
    return sum(isinstance(m, str) and m.startswith("comfyui_dit_cache") for m in modules)


def test_hundred_runs_hold_no_more_memory_than_one():
    flux = tiny_models.tiny_flux()
    patched, reports = attach_policy(flux, TaylorForecastSchedule(interval=2, warmup_steps=1, order=2))
    tiny_models.sample(patched, flux, steps=4)
    reports.clear()
    objects, pack_objects, tensors = len(gc.get_objects()), _pack_objects(), _tensor_bytes()
    runs = 0
    for _ in range(100):
        tiny_models.sample(patched, flux, steps=4)
        runs += len(reports)
        reports.clear()  # the test's own listener must not be what grows
    grown_objects, grown_bytes = len(gc.get_objects()) - objects, _tensor_bytes() - tensors
    grown_pack = _pack_objects() - pack_objects
    # ComfyUI itself adds a few objects per load of a cloned patcher (weakref.finalize); the pack adds none.
    print(f"[dit-cache] after 100 more runs: {grown_objects:+d} Python objects in all, {grown_pack:+d} of the pack's, "
          f"{grown_bytes:+d} bytes of tensors")
    assert runs == 100
    assert _live(SamplingRun) == 0 and _live(ResidualPredictor) == 0
    assert grown_pack == 0
    assert grown_bytes <= 0


def _lora_like_patch(patcher, strength: float = 0.5):
    """A weight patch of the kind a LoRA loader adds (a full diff on one block's weight)."""
    from comfyui_dit_cache.cache_core.attachment.attach import adapter_for

    model = patcher.model.diffusion_model
    first_block = adapter_for(patcher).block_modules(model)[0]
    # A linear layer's weight, as LoRAs target (not a bare parameter such as LTX-Video's scale table).
    # A model cached whole is one block, whose first submodule may hold none (a convolution, Cosmos's
    # rotary table): any of the model's linear layers is then in the block.
    block_weight = next(m.weight for m in [*first_block.modules(), *model.modules()] if isinstance(m, torch.nn.Linear))
    key = next(k for k, p in patcher.model.named_parameters() if p is block_weight)
    weight = patcher.model_state_dict()[key]
    patched = patcher.clone()
    patched.add_patches({key: (torch.randn(weight.shape, generator=torch.Generator().manual_seed(3)) * 0.2,)}, strength)
    return patched


def test_lora_then_cache_equals_cache_then_lora(tiny):
    cached, _ = attach_policy(tiny, ReuseSchedule(interval=2))
    cache_then_lora = _lora_like_patch(cached)
    lora_then_cache = attach_engine(_lora_like_patch(tiny.patcher), attached_engine(cached))
    without_lora = tiny_models.sample(cached, tiny, steps=STEPS, cfg=3.0)
    a = tiny_models.sample(cache_then_lora, tiny, steps=STEPS, cfg=3.0)
    b = tiny_models.sample(lora_then_cache, tiny, steps=STEPS, cfg=3.0)
    assert torch.equal(a, b)
    assert not torch.equal(a, without_lora)
    assert torch.equal(tiny_models.sample(cached, tiny, steps=STEPS, cfg=3.0), without_lora)  # LoRA undone


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_latent_is_refused_with_a_message_that_names_it(bad):
    flux = tiny_models.tiny_flux()
    patched, reports = attach_policy(flux, ReuseSchedule(interval=2))
    import comfy.sample
    g = torch.Generator().manual_seed(0)
    latent = torch.zeros(flux.latent_shape)
    latent[0, 1, 2, 3] = bad
    with pytest.raises(InvalidLatentError, match="latent given to the sampler holds NaN"):
        comfy.sample.sample(patched, torch.randn(flux.latent_shape, generator=g), 4, 3.0, "euler", "simple",
                            flux.make_cond(g), flux.make_cond(g), latent, seed=0, disable_pbar=True)
    assert _live(SamplingRun) == 0 and reports == []


def test_an_empty_schedule_returns_the_latent_and_leaves_no_state():
    """BasicScheduler gives no sigmas at denoise 0; ComfyUI then returns the latent untouched."""
    import comfy.sample
    import comfy.samplers

    flux = tiny_models.tiny_flux()
    patched, reports = attach_policy(flux, ReuseSchedule(interval=2))
    g = torch.Generator().manual_seed(0)
    latent = torch.randn(flux.latent_shape, generator=g)
    out = comfy.sample.sample_custom(patched, torch.randn(flux.latent_shape, generator=g), 3.0,
                                     comfy.samplers.sampler_object("euler"), torch.FloatTensor([]), flux.make_cond(g),
                                     flux.make_cond(g), latent, seed=0, disable_pbar=True)
    assert torch.equal(out, latent) and reports == [] and _live(SamplingRun) == 0


def test_cache_on_cpu_holds_its_tensors_there_in_the_model_dtype(tiny):
    patched, reports = attach_policy(tiny, ReuseSchedule(interval=2), offload_cache=True)
    on_device, _ = attach_policy(tiny, ReuseSchedule(interval=2))
    assert torch.equal(tiny_models.sample(patched, tiny, steps=STEPS, cfg=3.0),
                       tiny_models.sample(on_device, tiny, steps=STEPS, cfg=3.0))
    assert reports[0].cache_peak_bytes > 0


# ---- an unexpected error in the cache's own code ---------------------------------------------------
def _fail_once_at(monkeypatch, owner, name: str, when) -> list:
    """Make `owner.name` raise once, the first time `when(*args)` holds: an internal of a ComfyUI
    the pack has not seen. The list collects the injected errors."""
    original = getattr(owner, name)
    raised: list = []

    def failing(*args, **kwargs):
        if not raised and when(*args, **kwargs):
            raised.append(RuntimeError("injected: an internal that moved"))
            raise raised[0]
        return original(*args, **kwargs)
    monkeypatch.setattr(owner, name, failing)
    return raised


@pytest.mark.parametrize("where", ["a skipped block", "a computed block", "the step"])
def test_an_internal_error_makes_the_rest_of_the_run_computed_and_is_said_once(where, monkeypatch, caplog):
    """FORA at interval 3 computes step 0 and skips steps 1-2. An error on step 1's first
    skipped block, or on recording step 0's blocks, leaves every step computed uncached: the
    uncached image exactly. An error at the start of step 2 keeps step 1 as cached."""
    import logging

    from comfyui_dit_cache.cache_core.run.span_residuals import SpanResiduals

    flux = tiny_models.BUILDERS["flux"]()
    uncached = tiny_models.sample(flux.patcher, flux, steps=STEPS, cfg=3.0)
    patched, reports = attach_policy(flux, ReuseSchedule(interval=3))
    if where == "a skipped block":
        raised = _fail_once_at(monkeypatch, SpanResiduals, "substitute", lambda self, *_: True)
    elif where == "a computed block":
        raised = _fail_once_at(monkeypatch, SpanResiduals, "record", lambda self, *_: True)
    else:
        raised = _fail_once_at(monkeypatch, SamplingRun, "begin_step", lambda self, *_: self.steps_begun == 3)
    with caplog.at_level(logging.WARNING):
        out = tiny_models.sample(patched, flux, steps=STEPS, cfg=3.0)
    report = reports[-1]
    assert raised and not report.interrupted
    assert report.steps == STEPS
    assert len(report.notes) == 1 and "unexpected error in its own code" in report.notes[0]
    assert "injected: an internal that moved" in report.notes[0]
    assert caplog.text.count("unexpected error in its own code") == 1
    if where == "the step":
        assert report.full_steps == STEPS - 1 and torch.isfinite(out).all()
    else:
        assert report.full_steps == STEPS and torch.equal(out, uncached)

    # the next run of the same model is cached again
    again = tiny_models.sample(patched, flux, steps=STEPS, cfg=3.0)
    assert reports[-1].full_steps < STEPS and not reports[-1].notes and torch.isfinite(again).all()


def test_errors_in_the_users_settings_still_stop_the_prompt():
    """A plan for another step count is the user's to fix: it is not contained."""
    from comfyui_dit_cache.cache_core.policies import PlannedSchedule
    from comfyui_dit_cache.cache_core.policies.planned import PlanStepsError

    flux = tiny_models.BUILDERS["flux"]()
    patched, _ = attach_policy(flux, PlannedSchedule("CRRCRRCR"))
    with pytest.raises(PlanStepsError):
        tiny_models.sample(patched, flux, steps=STEPS + 2, cfg=3.0)


def test_an_error_in_a_block_is_reported_as_a_failure_with_its_reason_not_as_a_cancel(caplog):
    import logging

    from helpers import block_modules

    flux = tiny_models.BUILDERS["flux"]()
    patched, reports = attach_policy(flux, ReuseSchedule(interval=2))
    calls = []

    def broken(*_):
        calls.append(1)
        if len(calls) == 3:   # a block of a later computed step: out of memory, a bad weight, ...
            raise RuntimeError("a block broke")
    hook = block_modules(flux)[1].register_forward_pre_hook(broken)
    try:
        with caplog.at_level(logging.INFO), pytest.raises(RuntimeError, match="a block broke"):
            tiny_models.sample(patched, flux, steps=STEPS, cfg=3.0)
    finally:
        hook.remove()
    report = reports[-1]
    assert report.interrupted and report.failure == "RuntimeError: a block broke"
    assert "(failed: RuntimeError: a block broke)" in report.summary_line() and "(interrupted)" not in caplog.text
    assert report.to_dict()["failure"] == "RuntimeError: a block broke"
