"""Qwen-Image and Qwen-Image-Edit (`comfy.ldm.qwen_image.model.QwenImageTransformer2DModel`): one
list of two-stream blocks, hooked under the `double_block` key, over image tokens (with an edit's
reference tokens appended) and text tokens. The text stream is not read after the last block."""
from __future__ import annotations

import torch

from comfy.ldm.qwen_image.model import QwenImageTransformer2DModel

from .base import BlockSpec, ModelAdapter
from .presets import MagnitudePreset, mean_of_cond_uncond_pairs


class QwenImageAdapter(ModelAdapter):
    family = "qwen_image"
    display_name = "Qwen-Image"
    model_class = QwenImageTransformer2DModel
    blocks_modify_inputs = False   # the blocks build new tensors (x + ..., addcmul)
    # MagCache authors, 40 steps (cond/uncond pairs averaged); their recommended 0.10, K 2.
    magnitude_presets = (
        MagnitudePreset("qwen_image", mean_of_cond_uncond_pairs([1.0] * 2 + [
            1.6875, 1.6875, 1.25, 1.25, 1.34375, 1.33594, 1.11719, 1.11719, 1.10938, 1.10938, 1.13281, 1.13281,
            1.14062, 1.13281, 1.10156, 1.10156, 1.14844, 1.14844, 1.07812, 1.07812, 1.09375, 1.09375, 1.07812,
            1.07812, 1.07812, 1.07031, 1.10156, 1.10156, 1.07031, 1.07031, 1.07812, 1.07812, 1.03906, 1.03906,
            1.08594, 1.08594, 1.07031, 1.07031, 1.07031, 1.07031, 1.05469, 1.05469, 1.0625, 1.0625, 1.03125,
            1.03125, 1.03906, 1.03906, 1.04688, 1.04688, 1.02344, 1.02344, 1.03906, 1.03906, 1.03125, 1.03125,
            1.01562, 1.01562, 1.01562, 1.01562, 0.98828, 0.98828, 0.99219, 0.99219, 0.94922, 0.94922, 0.98047,
            0.98047, 0.88672, 0.89062, 0.89062, 0.89062, 0.78125, 0.78125, 0.74219, 0.73828, 0.54688, 0.54688]),
            0.10, 2),
    )

    def block_modules(self, diffusion_model: torch.nn.Module) -> list[torch.nn.Module]:
        return list(diffusion_model.transformer_blocks)

    def blocks(self, diffusion_model: torch.nn.Module) -> list[BlockSpec]:
        return [BlockSpec(("double_block", i), ("img", "txt")) for i in range(len(diffusion_model.transformer_blocks))]

    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        block = diffusion_model.transformer_blocks[0]
        img, temb = first_block_args["img"], first_block_args["vec"]
        if temb.shape[0] == 2 * img.shape[0]:
            # An edit's reference at timestep zero (`index_timestep_zero`): the timestep rows of the
            # image being generated come first, then those of the reference tokens, which do not
            # change between steps; the block itself modulates the text by the first half too.
            temb = temb.chunk(2, dim=0)[0]
        img_mod1, _ = block.img_mod(temb).chunk(2, dim=-1)
        modulated, _ = block._modulate(block.img_norm1(img), img_mod1)
        return modulated

    def adds_between_blocks(self, diffusion_model: torch.nn.Module, control: object, transformer_options: dict,
                            model_kwargs: dict) -> bool:
        # ControlNet residuals, and other packs' "double_block" patches, act after each block.
        return control is not None or "double_block" in transformer_options.get("patches", {})
