"""Shared description of the FLUX-style stack: double-stream blocks over separate image and
text tokens, then (where the model has them) single-stream blocks over their concatenation.
FLUX and HunyuanVideo differ in the order of that concatenation, which is read from each run's
calls (`ModelAdapter.joint_text_first`): ComfyUI changed HunyuanVideo's between releases."""
from __future__ import annotations

import torch

from comfy.ldm.flux.layers import apply_mod

from .base import BlockSpec, ModelAdapter


class DoubleSingleStreamAdapter(ModelAdapter):
    """Adapter for models with `double_blocks` then `single_blocks` (FLUX layers)."""

    def block_modules(self, diffusion_model: torch.nn.Module) -> list[torch.nn.Module]:
        return list(diffusion_model.double_blocks) + list(diffusion_model.single_blocks)

    def blocks(self, diffusion_model: torch.nn.Module) -> list[BlockSpec]:
        double = [BlockSpec(("double_block", i), ("img", "txt")) for i in range(len(diffusion_model.double_blocks))]
        single = [BlockSpec(("single_block", i), ("img",), joint=True) for i in range(len(diffusion_model.single_blocks))]
        return double + single

    def joint_sequence(self, tensors: dict[str, torch.Tensor], text_first: bool) -> torch.Tensor:
        img, txt = tensors["img"], tensors["txt"]
        return torch.cat((txt, img) if text_first else (img, txt), dim=1)

    def adds_between_blocks(self, diffusion_model: torch.nn.Module, control: object, transformer_options: dict,
                            model_kwargs: dict) -> bool:
        # ComfyUI's FLUX and HunyuanVideo forwards add ControlNet residuals after each block.
        return control is not None

    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        block = diffusion_model.double_blocks[0]
        vec = first_block_args["vec"]
        if block.modulation:
            img_mod1, _ = block.img_mod(vec)
        else:  # global modulation (FLUX.2): the modulations arrive precomputed
            (img_mod1, _), _ = vec
        img = first_block_args["img"]
        scale, shift = img_mod1.scale, img_mod1.shift
        if scale.ndim == 3 and 1 < scale.shape[1] != img.shape[1]:
            # Reference latents at timestep zero (`index_timestep_zero`): one modulation row for the
            # image being generated, one for the reference tokens, which do not change between
            # steps. The generated image's row is the signal, on every token.
            scale, shift = scale[:, :1], shift[:, :1]
        return apply_mod(block.img_norm1(img), 1 + scale, shift, first_block_args.get("modulation_dims_img"))
