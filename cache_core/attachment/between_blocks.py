"""Whether a model call adds terms to the hidden states between blocks, outside the block hooks
(ControlNet residuals, VACE hints, other packs' per-block patches): the one place that says so.
The run then sums the blocks' own residuals one by one, so that a skipped step does not count
those terms twice (run/span_residuals.py)."""
from __future__ import annotations

import torch

from ..adapters.base import ModelAdapter


def call_adds_between_blocks(adapter: ModelAdapter, diffusion_model: torch.nn.Module, control: object,
                             transformer_options: dict, model_kwargs: dict) -> bool:
    """For one model call (what ComfyUI's `apply_model` received): ComfyUI's own per-block patches
    (`set_model_double_block_patch`: `transformer_options["patches"]["double_block"]`, which
    Qwen-Image, Lumina and newer forwards run after each block; whatever a forward runs them on,
    a call that carries them is accounted block by block), or what the family's adapter says of
    the call (`adds_between_blocks`: a ControlNet on FLUX, a VACE model)."""
    patches = transformer_options.get("patches") or {}
    return bool(patches.get("double_block")) or adapter.adds_between_blocks(diffusion_model, control,
                                                                           transformer_options, model_kwargs)


def step_adds_between_blocks(adapter: ModelAdapter, diffusion_model: torch.nn.Module, guider,
                             transformer_options: dict) -> bool:
    """For a step, before its calls: a ControlNet on one of the guider's conditionings, or what
    `call_adds_between_blocks` says of the step's options."""
    conds = getattr(guider, "conds", None) or {}
    if any(cond.get("control") is not None for group in conds.values() for cond in group):
        return True
    return call_adds_between_blocks(adapter, diffusion_model, None, transformer_options, {})
