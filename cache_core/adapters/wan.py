"""Wan2.1 (`comfy.ldm.wan.model.WanModel` and the subclasses T2V and I2V use): one list of
attention blocks, hooked under the `double_block` key, that transform `img` alone."""
from __future__ import annotations

import torch

import comfy.model_management
from comfy.ldm.wan.model import WanModel, repeat_e

from .base import BlockSpec, ModelAdapter


class WanAdapter(ModelAdapter):
    family = "wan"
    blocks_modify_inputs = False  # WanAttentionBlock builds new tensors (x + ..., addcmul)

    def matches(self, diffusion_model: torch.nn.Module) -> bool:
        return isinstance(diffusion_model, WanModel)

    def blocks(self, diffusion_model: torch.nn.Module) -> list[BlockSpec]:
        return [BlockSpec(("double_block", i), ("img",)) for i in range(len(diffusion_model.blocks))]

    def stack_input(self, first_block_args: dict) -> torch.Tensor:
        return first_block_args["img"]

    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        block = diffusion_model.blocks[0]
        x, e = first_block_args["img"], first_block_args["vec"]
        modulation = comfy.model_management.cast_to(block.modulation, dtype=x.dtype, device=x.device)
        if e.ndim < 4:
            e = (modulation + e).chunk(6, dim=1)
        else:
            e = (modulation.unsqueeze(0) + e).unbind(2)
        return torch.addcmul(repeat_e(e[0], x), block.norm1(x), 1 + repeat_e(e[1], x))
