"""SD3 and SD3.5 (`comfy.ldm.modules.diffusionmodules.mmdit.MMDiT`): joint blocks over image and
text tokens, hooked under the `double_block` key. The last block's text stream is not computed
(pre-only) and not read after the stack."""
from __future__ import annotations

import torch

from comfy.ldm.modules.diffusionmodules.mmdit import MMDiT, modulate

from .base import BlockSpec, ModelAdapter


class MMDiTAdapter(ModelAdapter):
    family = "sd3"
    display_name = "SD3 / SD3.5"
    model_class = MMDiT
    blocks_modify_inputs = False   # block_mixing builds new tensors

    def block_modules(self, diffusion_model: torch.nn.Module) -> list[torch.nn.Module]:
        return list(diffusion_model.joint_blocks)

    def blocks(self, diffusion_model: torch.nn.Module) -> list[BlockSpec]:
        return [BlockSpec(("double_block", i), ("img", "txt")) for i in range(len(diffusion_model.joint_blocks))]

    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        x_block = diffusion_model.joint_blocks[0].x_block
        modulations = x_block.adaLN_modulation(first_block_args["vec"]).chunk(9 if x_block.x_block_self_attn else 6, dim=1)
        return modulate(x_block.norm1(first_block_args["img"]), modulations[0], modulations[1])

    def adds_between_blocks(self, diffusion_model: torch.nn.Module, control: object, transformer_options: dict,
                            model_kwargs: dict) -> bool:
        return control is not None   # SD3 ControlNets add to the image tokens after each block
