"""Model-family adapters and the lookup that picks one for a MODEL."""
from __future__ import annotations

import torch

from .base import BlockKey, BlockSpec, ModelAdapter
from .flux import FluxAdapter
from .hunyuan_video import HunyuanVideoAdapter
from .wan import WanAdapter

# HunyuanVideo is checked before FLUX so that a subclass relation, should ComfyUI add one,
# never sends it to the wrong concatenation order.
ADAPTERS: tuple[ModelAdapter, ...] = (HunyuanVideoAdapter(), WanAdapter(), FluxAdapter())

SUPPORTED_FAMILIES = ", ".join(a.family for a in ADAPTERS)


def find_adapter(diffusion_model: torch.nn.Module) -> ModelAdapter | None:
    """The adapter for `diffusion_model`, or None when no supported family matches."""
    for adapter in ADAPTERS:
        if adapter.matches(diffusion_model):
            return adapter
    return None


__all__ = ["ADAPTERS", "SUPPORTED_FAMILIES", "BlockKey", "BlockSpec", "ModelAdapter", "find_adapter"]
