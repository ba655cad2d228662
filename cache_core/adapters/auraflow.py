"""AuraFlow (`comfy.ldm.aura.mmdit.MMDiT`): two-stream blocks over the image and text tokens
(`double_block` hooks), then single-stream blocks over their concatenation (`single_block`
hooks, `img` the joined sequence). The forward adds nothing between blocks (no ControlNet path)."""
from __future__ import annotations

import torch

from comfy.ldm.aura.mmdit import MMDiT, modulate

from .base import BlockSpec, ModelAdapter


class AuraFlowAdapter(ModelAdapter):
    family = "auraflow"
    display_name = "AuraFlow"
    model_class = MMDiT
    blocks_modify_inputs = False   # MMDiTBlock and DiTBlock build new tensors (res + gate * ...)

    def block_modules(self, diffusion_model: torch.nn.Module) -> list[torch.nn.Module]:
        return list(diffusion_model.double_layers) + list(diffusion_model.single_layers)

    def blocks(self, diffusion_model: torch.nn.Module) -> list[BlockSpec]:
        double = [BlockSpec(("double_block", i), ("img", "txt")) for i in range(len(diffusion_model.double_layers))]
        single = [BlockSpec(("single_block", i), ("img",), joint=True) for i in range(len(diffusion_model.single_layers))]
        return double + single

    def joint_sequence(self, tensors: dict[str, torch.Tensor], text_first: bool) -> torch.Tensor:
        img, txt = tensors["img"], tensors["txt"]
        return torch.cat((txt, img) if text_first else (img, txt), dim=1)

    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        """The first block's image input after its attention norm and shift/scale (a model with
        no two-stream blocks starts on the joined sequence)."""
        vec = first_block_args["vec"]
        if len(diffusion_model.double_layers):
            block = diffusion_model.double_layers[0]
            norm, modulation = block.normX1, block.modX
        else:
            block = diffusion_model.single_layers[0]
            norm, modulation = block.norm1, block.modCX
        shift, scale = modulation(vec).chunk(6, dim=1)[:2]
        return modulate(norm(first_block_args["img"]), shift, scale)
