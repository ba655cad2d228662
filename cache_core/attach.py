"""How the engine attaches to a MODEL: a cloned `ModelPatcher` with one
`patches_replace["dit"]` hook per block and four wrappers: `OUTER_SAMPLE` scopes the run,
`SAMPLER_SAMPLE` moves the run's conditioning to the model's device (see conditioning.py: why a
skipped step needs it), `PREDICT_NOISE` begins each step, `APPLY_MODEL` tells the run what each
model call carries (a ControlNet, VACE hints).

Nothing is stored on the model object and no ComfyUI class is patched: the engine rides in
the clone's `transformer_options`, and the run (`StackRun`) exists only inside the wrapper,
which hands it to the block hooks through the run's own copy of those options.
"""
from __future__ import annotations

from typing import Callable

import comfy.patcher_extension
import torch
from comfy.model_patcher import ModelPatcher, create_model_options_clone

from .adapters import ModelAdapter, find_adapter, supported_families
from .conditioning import conditioning_on_device_wrapper
from .engine import CacheEngine
from .log import get_logger

log = get_logger(__name__)

ENGINE_KEY = "dit_cache_engine"
RUN_KEY = "dit_cache_run"
WRAPPER_KEY = "dit_cache"


class UnsupportedModelError(ValueError):
    """The MODEL is not a diffusion transformer this pack has an adapter for."""


def adapter_for(model: ModelPatcher) -> ModelAdapter:
    """The adapter for `model`, or UnsupportedModelError naming what was found instead."""
    diffusion_model = getattr(getattr(model, "model", None), "diffusion_model", None)
    adapter = find_adapter(diffusion_model) if diffusion_model is not None else None
    if adapter is None:
        found = type(diffusion_model).__name__ if diffusion_model is not None else type(model).__name__
        raise UnsupportedModelError(
            f"{found} is not a supported diffusion transformer (supported: {supported_families()}); "
            "the model is passed through without caching")
    return adapter


class BlockCacheHook:
    """The `patches_replace["dit"]` entry of one block. `inner` is a replace patch that was
    already there (another node pack's): it stays in charge of computing the block."""

    def __init__(self, position: int, inner: Callable | None) -> None:
        self.position = position
        self.inner = inner

    def __call__(self, args: dict, extra: dict) -> dict:
        def compute(block_args: dict) -> dict:
            if self.inner is not None:
                return self.inner(block_args, extra)
            return extra["original_block"](block_args)

        run = args["transformer_options"].get(RUN_KEY)
        if run is None:  # the model is run outside a sampler (no OUTER_SAMPLE): just compute
            return compute(args)
        return run.run_block(self.position, args, compute)


class InvalidLatentError(ValueError):
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


def run_scope_wrapper(executor, *args, **kwargs):
    """OUTER_SAMPLE wrapper: a fresh StackRun for this sampling run, released however it ends."""
    guider = executor.class_obj
    original_options = guider.model_options
    engine: CacheEngine = original_options["transformer_options"][ENGINE_KEY]
    noise, latent, sigmas = args[0], args[1], args[3]
    check_finite(noise, latent)
    base_model = guider.model_patcher.model
    run = engine.start_run(base_model.diffusion_model, base_model.model_sampling, sigmas)
    guider.model_options = create_model_options_clone(original_options)
    guider.model_options["transformer_options"][RUN_KEY] = run
    finished = False
    try:
        result = executor(*args, **kwargs)
        finished = True
        return result
    finally:
        guider.model_options = original_options
        engine.finish_run(run, interrupted=not finished)


def step_wrapper(executor, *args, **kwargs):
    """PREDICT_NOISE wrapper: each model evaluation is the next step of the run (args: x,
    timestep, model_options, seed)."""
    run = args[2].get("transformer_options", {}).get(RUN_KEY)
    if run is not None:
        run.begin_step(args[1])
    return executor(*args, **kwargs)


def model_call_wrapper(executor, *args, **kwargs):
    """APPLY_MODEL wrapper: tells the run what this model call carries besides the blocks'
    inputs (args: x, t, c_concat, c_crossattn, control, transformer_options; extra conds as
    keyword arguments)."""
    run = args[5].get(RUN_KEY)
    if run is not None:
        run.begin_model_call(args[4], kwargs)
    return executor(*args, **kwargs)


WRAPPERS = ((comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, run_scope_wrapper),
            (comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE, conditioning_on_device_wrapper),
            (comfy.patcher_extension.WrappersMP.PREDICT_NOISE, step_wrapper),
            (comfy.patcher_extension.WrappersMP.APPLY_MODEL, model_call_wrapper))


def attach_engine(model: ModelPatcher, engine: CacheEngine) -> ModelPatcher:
    """A clone of `model` that samples through `engine`; `model` itself is left unchanged.
    A cache attached earlier to the same model is replaced, with a warning."""
    patched = model.clone()
    options = patched.model_options.setdefault("transformer_options", {})
    previous = options.get(ENGINE_KEY)
    if previous is not None:
        log.warning("%s replaces %s attached earlier to this model: only one cache acts on a model",
                    engine.method, previous.method)
    existing = options.get("patches_replace", {}).get("dit", {})
    for position, spec in enumerate(engine.blocks):
        inner = existing.get(spec.key)
        if isinstance(inner, BlockCacheHook):
            inner = inner.inner
        patched.set_model_patch_replace(BlockCacheHook(position, inner), "dit", spec.key[0], spec.key[1])
    patched.model_options["transformer_options"][ENGINE_KEY] = engine
    for wrapper_type, wrapper in WRAPPERS:
        patched.remove_wrappers_with_key(wrapper_type, WRAPPER_KEY)
        patched.add_wrapper_with_key(wrapper_type, WRAPPER_KEY, wrapper)
    return patched


def attached_engine(model: ModelPatcher) -> CacheEngine | None:
    """The engine a MODEL samples through, if any."""
    return model.model_options.get("transformer_options", {}).get(ENGINE_KEY)
