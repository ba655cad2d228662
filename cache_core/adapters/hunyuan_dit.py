"""HunyuanDiT (`comfy.ldm.hydit.models.HunYuanDiT`, both its 1.0 and 1.1+ configurations): one
list of blocks, hooked under the `double_block` key, that transform the image tokens (`img`).

The stack is U-Net-like: the second half's blocks merge, in their own first layer, the output of
a first-half block (a long skip connection, plus a ControlNet's output where one is applied). The
forward hands that tensor to the hook as the block's `skip` argument and adds nothing to the
hidden states between blocks: a skip block's residual (its output minus its `img`) holds what the
merge did, so the blocks' residuals still add up to the stack's output minus its input, and a
stand-in for the whole stack equals one for each block."""
from __future__ import annotations

import torch

from comfy.ldm.hydit.models import HunYuanDiT

from .base import BlockSpec, ModelAdapter


class HunyuanDiTAdapter(ModelAdapter):
    family = "hunyuan_dit"
    display_name = "HunyuanDiT"
    model_class = HunYuanDiT
    blocks_modify_inputs = False   # HunYuanDiTBlock builds new tensors (x + ..., the skip merge)

    def block_modules(self, diffusion_model: torch.nn.Module) -> list[torch.nn.Module]:
        return list(diffusion_model.blocks)

    def blocks(self, diffusion_model: torch.nn.Module) -> list[BlockSpec]:
        return [BlockSpec(("double_block", i), ("img",)) for i in range(len(diffusion_model.blocks))]

    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        """The first block's self-attention input: the normed image tokens shifted by the step's
        modulation (the first block has no skip merge)."""
        block = diffusion_model.blocks[0]
        return block.norm1(first_block_args["img"]) + block.default_modulation(first_block_args["vec"]).unsqueeze(1)
