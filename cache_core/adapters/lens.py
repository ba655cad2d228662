"""Lens (`comfy.ldm.lens.model.LensTransformer2DModel`, ComfyUI 0.33 on): one list of two-stream
blocks, hooked under the `double_block` key, over the image and text tokens; the forward adds
ControlNet residuals and runs per-block patches after each block, outside the hooks. The text
stream is not read after the last block. No published presets."""
from __future__ import annotations

import torch

from .base import BlockSpec, ModelAdapter

try:
    from comfy.ldm.lens.model import LensTransformer2DModel
except ImportError:   # a ComfyUI from before Lens: the family does not exist there
    LensTransformer2DModel = None


class LensAdapter(ModelAdapter):
    family = "lens" if LensTransformer2DModel is not None else ""
    display_name = "Lens"
    model_class = LensTransformer2DModel if LensTransformer2DModel is not None else type(None)
    blocks_modify_inputs = False   # LensTransformerBlock builds new tensors (x + gate * ...)

    def block_modules(self, diffusion_model: torch.nn.Module) -> list[torch.nn.Module]:
        return list(diffusion_model.transformer_blocks)

    def blocks(self, diffusion_model: torch.nn.Module) -> list[BlockSpec]:
        return [BlockSpec(("double_block", i), ("img", "txt")) for i in range(len(diffusion_model.transformer_blocks))]

    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        """The first block's image attention input: normed tokens, scaled and shifted by the step."""
        block = diffusion_model.transformer_blocks[0]
        img_mod1, _ = block.img_mod(first_block_args["vec"]).chunk(2, dim=-1)
        modulated, _ = block._modulate(block.img_norm1(first_block_args["img"]), img_mod1)
        return modulated

    def adds_between_blocks(self, diffusion_model: torch.nn.Module, control: object, transformer_options: dict,
                            model_kwargs: dict) -> bool:
        return control is not None   # ControlNet residuals are added to the image tokens after each block
