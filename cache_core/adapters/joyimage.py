"""JoyImage (`comfy.ldm.joyimage.model.JoyImageTransformer3DModel`, ComfyUI 0.33 on): one list of
two-stream blocks, hooked under the `double_block` key, over the image tokens (an edit's
reference tokens appended) and the text tokens. The forward adds nothing between blocks and reads
no text after the last block."""
from __future__ import annotations

import torch

from .base import BlockSpec, ModelAdapter

try:
    from comfy.ldm.joyimage.model import JoyImageTransformer3DModel
except ImportError:   # a ComfyUI from before JoyImage: the family does not exist there
    JoyImageTransformer3DModel = None


class JoyImageAdapter(ModelAdapter):
    family = "joyimage" if JoyImageTransformer3DModel is not None else ""
    display_name = "JoyImage"
    model_class = JoyImageTransformer3DModel if JoyImageTransformer3DModel is not None else type(None)
    blocks_modify_inputs = False   # JoyImageTransformerBlock builds new tensors (x + ...)

    def block_modules(self, diffusion_model: torch.nn.Module) -> list[torch.nn.Module]:
        return list(diffusion_model.double_blocks)

    def blocks(self, diffusion_model: torch.nn.Module) -> list[BlockSpec]:
        return [BlockSpec(("double_block", i), ("img", "txt")) for i in range(len(diffusion_model.double_blocks))]

    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        """The first block's image attention input: normed tokens, scaled and shifted by the step."""
        block = diffusion_model.double_blocks[0]
        shift, scale = block.img_mod(first_block_args["vec"])[:2]
        return block.img_norm1(first_block_args["img"]) * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)
