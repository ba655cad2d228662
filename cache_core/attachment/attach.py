"""How the engine attaches to a MODEL: a cloned `ModelPatcher` with one
`patches_replace["dit"]` hook per block (for a whole-model cache, a `DIFFUSION_MODEL` wrapper
instead) and five wrappers: four that scope and drive the run (run_scope.py, step_wrappers.py,
model_wrappers.py: the run, the sampler's step reports, each evaluation, each model call) and a `SAMPLER_SAMPLE` one that moves
the run's conditioning to the model's device (see conditioning.py: why a skipped step needs it).

Nothing is stored on the model object and no ComfyUI class is patched: the engine rides in
the clone's `transformer_options`, and the run (`SamplingRun`) exists only inside the wrapper,
which hands it to the block hooks through the run's own copy of those options.
"""
from __future__ import annotations

import comfy.patcher_extension
import torch
from comfy.model_patcher import ModelPatcher

from ..adapters import ModelAdapter, find_adapter
from ..run.engine import ENGINE_KEY, CacheEngine
from ..support.containment import GraphError
from ..support.log import get_logger
from .block_hook import BlockCacheHook
from .conditioning import conditioning_on_device_wrapper
from .model_wrappers import model_call_wrapper, whole_model_wrapper
from .run_scope import run_scope_wrapper
from .step_wrappers import sampler_steps_wrapper, step_wrapper

log = get_logger(__name__)

WRAPPER_KEY = "dit_cache"


class UnsupportedModelError(GraphError):
    """The MODEL input holds no diffusion model (a wrapped or foreign object in a MODEL socket)."""


def adapter_for(model: ModelPatcher) -> ModelAdapter:
    """The adapter for `model`, or UnsupportedModelError naming what was found instead."""
    diffusion_model = getattr(getattr(model, "model", None), "diffusion_model", None)
    if not isinstance(diffusion_model, torch.nn.Module):
        raise UnsupportedModelError(
            f"the MODEL input is a {type(model).__name__} without a diffusion model (model.diffusion_model), so there "
            "is nothing to cache; the model is passed through without caching. Connect the model loader's MODEL")
    return find_adapter(diffusion_model)


WRAPPERS = ((comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, run_scope_wrapper),
            (comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE, conditioning_on_device_wrapper),
            (comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE, sampler_steps_wrapper),
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
    if engine.adapter.level == "model":
        patched.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY)
        patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY,
                                     whole_model_wrapper)
    else:
        existing = options.get("patches_replace", {}).get("dit", {})
        for position, spec in enumerate(engine.blocks):
            inner = existing.get(spec.key)
            if isinstance(inner, BlockCacheHook):
                inner = inner.inner
            patched.set_model_patch_replace(BlockCacheHook(position, inner), "dit", spec.key[0], spec.key[1])
    patched.model_options["transformer_options"][ENGINE_KEY] = engine
    for wrapper_type in {wrapper_type for wrapper_type, _ in WRAPPERS}:
        patched.remove_wrappers_with_key(wrapper_type, WRAPPER_KEY)
    for wrapper_type, wrapper in WRAPPERS:
        patched.add_wrapper_with_key(wrapper_type, WRAPPER_KEY, wrapper)
    return patched


def attached_engine(model: ModelPatcher) -> CacheEngine | None:
    """The engine a MODEL samples through, if any."""
    return model.model_options.get("transformer_options", {}).get(ENGINE_KEY)
