"""The wrappers that scope a sampling run and tell it what happens: `OUTER_SAMPLE` makes the
run (`StackRun`) and releases it however sampling ends, `PREDICT_NOISE` begins each step,
`APPLY_MODEL` says what each model call carries. The run rides in the run's own copy of
`transformer_options`, where the block hooks find it."""
from __future__ import annotations

from contextvars import ContextVar
from typing import Callable

import torch
from comfy.model_patcher import create_model_options_clone

from .adapters.whole_model import CALL_LEVEL, MODEL_LEVEL
from .call_level import call_as_block, settle_whole_level
from .compiled_blocks import WHOLE_MODEL_LEVEL_COMPILED, compile_blocks_for_run
from .containment import CacheInternalError, GraphError, internal_error_note, is_cancel, own_code
from .engine import CacheEngine
from .step_schedule import OWN_STEPS
from .log import get_logger

log = get_logger(__name__)

ENGINE_KEY = "dit_cache_engine"
RUN_KEY = "dit_cache_run"

HOOKS_NOT_RUN = ("the model ran without the cache's block hooks (a graph compiled before the cache was attached, by a "
                 "compile node other than ComfyUI's TorchCompileModel, or a node that replaces the model's forward): "
                 "nothing can be cached, so every step is computed. Put the caching node after such nodes, or leave "
                 "them out")
AUTOREGRESSIVE_SAMPLER = ("ComfyUI's autoregressive video sampler (Sampler AR Video) runs the model's blocks itself, a "
                          "few frames at a time, with a key-value cache that every model call writes: nothing can be "
                          "cached, so every step is computed. Leave the caching node out of such workflows")


# The `transformer_options` of the model call in progress in this thread (APPLY_MODEL sets them
# for the call's duration): the block hooks of a forward that does not pass them to its hooks
# (ComfyUI 0.3.75's Wan2.2 S2V) find the run there.
_call_options: ContextVar[dict | None] = ContextVar("dit_cache_call_options", default=None)


class BlockCacheHook:
    """The `patches_replace["dit"]` entry of one block. `inner` is a replace patch that was
    already there (another node pack's): it stays in charge of computing the block."""

    def __init__(self, position: int, inner: Callable | None) -> None:
        self.position = position
        self.inner = inner

    def __call__(self, args: dict, extra: dict) -> dict:
        handed_options = "transformer_options" in args

        def compute(block_args: dict) -> dict:
            if not handed_options:   # the block gets what its forward handed over, nothing more
                block_args = {k: v for k, v in block_args.items() if k != "transformer_options"}
            if self.inner is not None:
                return self.inner(block_args, extra)
            return extra["original_block"](block_args)

        if not handed_options:   # a forward that does not hand its hooks the call's options
            args = {**args, "transformer_options": _call_options.get() or {}}
        run = args["transformer_options"].get(RUN_KEY)
        if run is None or run.computes_every_step:  # outside a sampler (no OUTER_SAMPLE), or nothing cached
            return compute(args)
        adapter = run.adapter
        if not adapter.packs_streams:
            return run.run_block(self.position, args, compute)

        def compute_packed(view: dict) -> dict:
            out = compute(adapter.model_view(view, args))
            with own_code("packing a block's streams"):
                return adapter.engine_view(out)

        with own_code("packing a block's streams"):
            view = adapter.engine_view(args)
        out = run.run_block(self.position, view, compute_packed)
        with own_code("unpacking a block's streams"):
            return adapter.model_view(out, args)


class InvalidLatentError(GraphError):
    """The latent or noise handed to the sampler holds NaN or infinite values."""


def check_finite(noise: torch.Tensor, latent: torch.Tensor) -> None:
    """Refuse NaN/inf input before sampling: otherwise it surfaces as a black image, and a cache
    would spread it over reused steps without a word."""
    for name, tensor in (("latent", latent), ("noise", noise)):
        if tensor.numel() == 0 or not tensor.is_floating_point():
            continue
        # min and max carry any NaN or inf, in one pass: ten times quicker than isfinite().all()
        # on a CPU latent, and the run's first step waits for this check
        low, high = torch.aminmax(tensor)
        if not bool(torch.isfinite(low) & torch.isfinite(high)):
            raise InvalidLatentError(
                f"DiT Cache: the {name} given to the sampler holds NaN or infinite values; check the node that "
                "produced it (a VAE Encode of a broken image, a damaged latent file, a custom noise node)")


def weight_keyframes(guider) -> Callable[[], tuple] | None:
    """The current strengths of the hook keyframe groups that change a weight hook's strength
    during the run (ComfyUI's scheduled LoRA hooks on a conditioning), or None when there are
    none. ComfyUI moves each group to its keyframe before the step's model calls."""
    groups = []
    for conds in getattr(guider, "original_conds", {}).values():
        for cond in conds:
            for hook in getattr(cond.get("hooks"), "hooks", ()):
                keyframes = getattr(hook, "hook_keyframe", None)
                if keyframes is not None and len(keyframes.keyframes) > 1 and keyframes not in groups:
                    groups.append(keyframes)
    if not groups:
        return None
    return lambda: tuple(group.strength for group in groups)


def replaced_hooks(engine: CacheEngine, model_options: dict) -> list:
    """The blocks whose cache hook another node replaced after the caching node (a later
    `patches_replace["dit"]` on the same block): the cache does not see those blocks run."""
    if engine.adapter.level == "model":
        return []
    installed = model_options["transformer_options"].get("patches_replace", {}).get("dit", {})
    return [spec.key for spec in engine.blocks if not isinstance(installed.get(spec.key), BlockCacheHook)]


def run_scope_wrapper(executor, *args, **kwargs):
    """OUTER_SAMPLE wrapper: a fresh StackRun for this sampling run, released however it ends.
    Neither starting nor finishing the run fails a prompt on an unexpected error of the pack's
    own: the run then samples uncached, or its result is kept, with the error in the log."""
    guider = executor.class_obj
    original_options = guider.model_options
    engine: CacheEngine = original_options["transformer_options"][ENGINE_KEY]
    noise, latent, sigmas = args[0], args[1], args[3]
    check_finite(noise, latent)
    base_model = guider.model_patcher.model
    try:
        with own_code("starting the run"):
            run = engine.start_run(base_model.diffusion_model, base_model.model_sampling, sigmas,
                                   weight_keyframes(guider), replaced_hooks(engine, original_options))
            run_options = create_model_options_clone(original_options)
            compile_note = compile_blocks_for_run(engine.adapter, base_model, run_options)
    except CacheInternalError as err:
        log.error("%s: %s", engine.method, internal_error_note(err), exc_info=err.error)
        return executor(*args, **kwargs)
    if compile_note == WHOLE_MODEL_LEVEL_COMPILED:
        run.compute_every_step(compile_note)
    elif compile_note is not None:
        run.report.note(compile_note, warn=False)
    guider.model_options = run_options
    guider.model_options["transformer_options"][RUN_KEY] = run
    finished, failure = False, None
    try:
        result = executor(*args, **kwargs)
        finished = True
        return result
    except Exception as err:
        if not is_cancel(err):
            failure = f"{type(err).__name__}: {err}"[:300]
        raise
    finally:
        guider.model_options = original_options
        try:
            engine.finish_run(run, interrupted=not finished, failure=failure)
        except Exception as err:  # the sampled result is kept: a report or a save must not lose it
            if not finished:
                raise
            log.error("%s: the run sampled, but finishing its report failed (%s: %s); the image is kept",
                      engine.method, type(err).__name__, err, exc_info=not isinstance(err, GraphError))


def step_wrapper(executor, *args, **kwargs):
    """PREDICT_NOISE wrapper: each model evaluation is the next step of the run, and on a step
    whose whole output stands in nothing of ComfyUI's model calls runs (args: x, timestep = sigma,
    model_options, seed; it returns the guided denoised latent). After an unexpected error of the
    cache's own, in this step or before, the step is computed without the cache."""
    options = args[2].get("transformer_options", {})
    run = options.get(RUN_KEY)
    if run is None:
        return executor(*args, **kwargs)
    run.sampler_steps.evaluation_begins()
    if run.computes_every_step:   # set too by an internal error (run.fail)
        return _uncached_step(run, executor, args, kwargs, "every call")
    try:
        return _cached_step(run, executor, args, kwargs)
    except CacheInternalError as err:
        run.fail(internal_error_note(err), err.error)
        return _uncached_step(run, executor, args, kwargs, "every call")


def sampler_steps_wrapper(executor, *args, **kwargs):
    """SAMPLER_SAMPLE wrapper: the run hears the sampler report each step done (its progress
    callback, args[3]; the user's callback, if any, still gets every report), which is how a
    model evaluation is placed in its sampler step (step_schedule.SamplerSteps). args: guider,
    sigmas, extra_args, callback, noise, ..."""
    run = args[2].get("model_options", {}).get("transformer_options", {}).get(RUN_KEY) if len(args) > 3 else None
    if run is None:
        return executor(*args, **kwargs)
    callback = args[3]

    def step_done(step: int, *report):
        run.sampler_steps.step_done(step)
        if step >= run.sampler_steps.steps and not run.computes_every_step:
            run.compute_every_step(OWN_STEPS)
        return callback(step, *report) if callback is not None else None

    return executor(*args[:3], step_done, *args[4:], **kwargs)


def _cached_step(run, executor, args: tuple, kwargs: dict) -> torch.Tensor:
    x, sigma, model_options = args[0], args[1], args[2]
    with own_code("beginning a step"):
        run.begin_step(sigma)
        devices = devices_of(model_options)
        refused = run.split_over_devices(devices) if len(devices) > 1 else None
        if refused is not None:
            run.compute_every_step(refused)
    if refused is not None:
        return _uncached_step(run, executor, args, kwargs, "all devices")
    stand_in = None
    with own_code("standing in for a step"):
        if run.policy.reuses_outputs:
            stand_in = run.step_stand_in(x, sigma, calls_must_run(run, executor.class_obj, model_options))
        calls_before = len(run.report.calls)
    if stand_in is not None:
        return stand_in
    if len(devices) > 1:
        with own_code("deciding a step split over devices"):
            run.decide_step()
    denoised = executor(*args, **kwargs)
    with own_code("recording a step"):
        run.record_step_output(x, sigma, denoised, calls_before)
    return denoised


def _uncached_step(run, executor, args: tuple, kwargs: dict, label: str) -> torch.Tensor:
    """The step computed with no part of the cache in its model calls."""
    run.record_step_without_cache(label)
    return executor(args[0], args[1], without_run(args[2]), *args[3:], **kwargs)


def devices_of(model_options: dict) -> list:
    """The devices on which ComfyUI runs this step's conditionings, in threads on device clones of
    the model (`model_options["multigpu_clones"]`, set for the sampling by the MultiGPU nodes; the
    main device first); none without a split."""
    return list(model_options.get("multigpu_clones") or {})


def without_run(model_options: dict) -> dict:
    """A copy of a step's model options whose model calls do not see the run: every hook computes."""
    options = create_model_options_clone(model_options)
    options["transformer_options"].pop(RUN_KEY, None)
    return options


def calls_must_run(run, guider, model_options: dict) -> bool:
    """Whether this step's model calls must run through ComfyUI's guidance even where the model's
    output stands in: a call may add terms between blocks (a ControlNet on one of the guider's
    conditionings, or what the family's adapter says of the model and its patches), or a
    post-CFG function reads each call's output (CFG++ samplers keep the uncond prediction there;
    a stand-in for the whole step would leave them an earlier step's)."""
    if model_options.get("sampler_post_cfg_function"):
        return True
    conds = getattr(guider, "conds", None) or {}
    if any(cond.get("control") is not None for group in conds.values() for cond in group):
        return True
    return run.adapter.call_adds_between_blocks(run.diffusion_model, None, model_options["transformer_options"], {})


def model_call_wrapper(executor, *args, **kwargs):
    """APPLY_MODEL wrapper: tells the run what this model call carries besides the blocks'
    inputs, and lets the model's output stand in for the whole model where the policy says so
    (args: x, t = sigma, c_concat, c_crossattn, control, transformer_options; extra conds as
    keyword arguments; it returns the denoised latent)."""
    run = args[5].get(RUN_KEY)
    if run is None:
        return executor(*args, **kwargs)
    x, sigma, options = args[0], args[1], args[5]
    with own_code("beginning a model call"):
        run.begin_model_call(args[4], options, kwargs)
        stand_in = run.output_stand_in(x, sigma, options)
        calls_before = len(run.report.calls)
        computing = run.computes_every_step
        cached_whole = run.adapter.level == MODEL_LEVEL and not computing
    if stand_in is not None:
        return stand_in
    scope = _call_options.set(options)
    try:
        if cached_whole and run.whole_level == CALL_LEVEL:
            denoised = call_as_block(run, executor, args, kwargs)
        elif cached_whole and run.whole_level is None:
            denoised = settle_whole_level(run, executor, args, kwargs)
        else:
            denoised = executor(*args, **kwargs)
    finally:
        _call_options.reset(scope)
    with own_code("recording a model call"):
        if not (computing or run.computes_every_step) and len(run.report.calls) == calls_before:
            # not one block hook ran in this call; a call carrying the autoregressive sampler's
            # state ran its blocks in the sampler's own loop
            run.compute_every_step(AUTOREGRESSIVE_SAMPLER if options.get("ar_state") is not None else HOOKS_NOT_RUN)
            run.record_step_without_cache("every call")
        run.record_output(x, sigma, options, denoised, calls_before)
    return denoised


def whole_model_wrapper(executor, *args, **kwargs):
    """DIFFUSION_MODEL wrapper of a whole-model cache: the diffusion model's forward is the one
    block the run computes or substitutes (args: x, then the family's own arguments, with
    `transformer_options` among them or in the keyword arguments)."""
    options = kwargs.get("transformer_options")
    if not isinstance(options, dict):
        options = next((a for a in args if isinstance(a, dict) and RUN_KEY in a), {})
    run = options.get(RUN_KEY)
    if run is None or run.whole_level == CALL_LEVEL:
        return executor(*args, **kwargs)
    x = args[0]
    if run.whole_level is None:
        # the run's first call: cached in the forward only if the output can be a residual of
        # the input (a model that takes an image or mask joined to its latent has more input
        # channels than output ones: it is cached around the call instead, call_level.py)
        out = executor(*args, **kwargs)
        run.call.cached_in_forward = isinstance(x, torch.Tensor) and isinstance(out, torch.Tensor) and x.shape == out.shape
        if run.call.cached_in_forward:
            with own_code("recording a model call"):
                run.run_block(0, {"img": x, "transformer_options": options}, lambda _: {"img": out})
        return out
    out = run.run_block(0, {"img": x, "transformer_options": options},
                        lambda block_args: {"img": executor(*args, **kwargs)})
    return out["img"]
