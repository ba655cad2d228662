"""LTX-Video (`comfy.ldm.lightricks.model.LTXVModel`): one list of transformer blocks, hooked under
the `double_block` key, that transform the video tokens (`img`) with cross-attention to the text.
LTX-2 (`LTXAVModel`, the audio-video subclass) has its own adapter (ltx2.py)."""
from __future__ import annotations

import torch

import comfy.ldm.common_dit
from comfy.ldm.lightricks.model import LTXVModel

from .base import BlockSpec, ModelAdapter
from .presets import TeaCachePreset


class LTXVAdapter(ModelAdapter):
    family = "ltxv"
    display_name = "LTX-Video"
    model_class = LTXVModel
    blocks_modify_inputs = True   # BasicTransformerBlock adds into x in place (addcmul_, +=)
    # TeaCache authors (TeaCache4LTX-Video), with the threshold ComfyUI-TeaCache recommends (~1.7x).
    teacache_presets = (
        TeaCachePreset("ltxv", (2.14700694e01, -1.28016453e01, 2.31279151e00, 7.92487521e-01, 9.69274326e-03), 0.06),
    )

    def block_modules(self, diffusion_model: torch.nn.Module) -> list[torch.nn.Module]:
        return list(diffusion_model.transformer_blocks)

    def blocks(self, diffusion_model: torch.nn.Module) -> list[BlockSpec]:
        return [BlockSpec(("double_block", i), ("img",)) for i in range(len(diffusion_model.transformer_blocks))]

    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        """The first block's self-attention input: RMS-normed tokens, scaled and shifted by the step."""
        block = diffusion_model.transformer_blocks[0]
        x, timestep = first_block_args["img"], first_block_args["vec"]
        table = block.scale_shift_table[None, None].to(device=x.device, dtype=x.dtype)
        shift, scale = (table + timestep.reshape(x.shape[0], timestep.shape[1], table.shape[2], -1)).unbind(dim=2)[:2]
        normed = comfy.ldm.common_dit.rms_norm(x)
        return torch.addcmul(normed, normed, scale) + shift
