"""The registry of model-family adapters, and the lookup that picks one for a MODEL.

Every module of this package is imported once, and every concrete `ModelAdapter` subclass it
defines (one that names a `family`) is registered: adding a family is adding one file here. A
module whose ComfyUI imports fail (a ComfyUI version that renamed or removed what it uses) is
skipped with one log line; the pack and every other family keep working.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import torch

from ..support.log import get_logger
from .base import BlockKey, BlockSpec, ModelAdapter
from .presets import MagnitudePreset, TeaCachePreset
from .whole_model import WholeModelAdapter

log = get_logger(__name__)

_NOT_ADAPTER_MODULES = {"base", "presets", "whole_model"}


def _discover() -> tuple[ModelAdapter, ...]:
    found: list[ModelAdapter] = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name in _NOT_ADAPTER_MODULES:
            continue
        try:
            module = importlib.import_module(f"{__name__}.{module_info.name}")
        except (ImportError, AttributeError) as err:
            log.warning("model family module '%s' skipped: this ComfyUI lacks what it needs (%s)", module_info.name, err)
            continue
        for obj in vars(module).values():
            if (inspect.isclass(obj) and issubclass(obj, ModelAdapter) and obj.__module__ == module.__name__
                    and obj.family and not inspect.isabstract(obj)):
                found.append(obj())
    # An adapter of a model subclass is asked before one of its base class, and a refined adapter
    # (a subclass of another adapter, for one configuration of the same model class) before the
    # adapter it refines.
    found.sort(key=lambda adapter: (-len(adapter.model_class.__mro__), -len(type(adapter).__mro__)))
    return tuple(found)


ADAPTERS: tuple[ModelAdapter, ...] = _discover()


def uncompiled(diffusion_model: torch.nn.Module) -> torch.nn.Module:
    """The module itself when `diffusion_model` is torch.compile's wrapper of it (a compile node
    that object-patches the model swaps it in while the model is loaded)."""
    return getattr(diffusion_model, "_orig_mod", diffusion_model)


def find_adapter(diffusion_model: torch.nn.Module) -> ModelAdapter:
    """The adapter of `diffusion_model`'s family; else the whole model as one block (its level,
    inside the forward or around the model call, is settled by the run: whole_model.py)."""
    diffusion_model = uncompiled(diffusion_model)
    for adapter in ADAPTERS:
        if adapter.matches(diffusion_model):
            return adapter
    return WholeModelAdapter(type(diffusion_model))


def supported_families() -> str:
    """The families this installation accelerates block by block, for messages and tooltips."""
    return ", ".join(adapter.display_name for adapter in sorted(ADAPTERS, key=lambda a: a.display_name))


def teacache_presets() -> list[TeaCachePreset]:
    return [preset for adapter in ADAPTERS for preset in adapter.teacache_presets]


def magnitude_presets() -> list[MagnitudePreset]:
    return [preset for adapter in ADAPTERS for preset in adapter.magnitude_presets]


__all__ = ["ADAPTERS", "BlockKey", "BlockSpec", "MagnitudePreset", "ModelAdapter", "TeaCachePreset", "WholeModelAdapter",
           "find_adapter", "magnitude_presets", "supported_families", "teacache_presets"]
