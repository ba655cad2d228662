"""Mochi (`comfy.ldm.genmo.joint_model.asymm_models_joint.AsymmDiTJoint`): one list of asymmetric
joint blocks, hooked under the `double_block` key, each updating the video tokens (`img`) and the
text tokens (`txt`, narrower) side by side; their attention joins them inside the block. The last
block leaves the text as it was, and nothing after the stack reads it."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from comfy.ldm.genmo.joint_model.asymm_models_joint import AsymmDiTJoint, modulated_rmsnorm

from .base import BlockSpec, ModelAdapter


class MochiAdapter(ModelAdapter):
    family = "mochi"
    display_name = "Mochi"
    model_class = AsymmDiTJoint
    blocks_modify_inputs = False   # AsymmetricJointBlock builds new tensors (x + gated norm)

    def block_modules(self, diffusion_model: torch.nn.Module) -> list[torch.nn.Module]:
        return list(diffusion_model.blocks)

    def blocks(self, diffusion_model: torch.nn.Module) -> list[BlockSpec]:
        return [BlockSpec(("double_block", i), ("img", "txt")) for i in range(len(diffusion_model.blocks))]

    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        """The first block's attention input: RMS-normed video tokens scaled by the step's
        modulation (the block's own `mod_x`, its first chunk)."""
        block = diffusion_model.blocks[0]
        scale = block.mod_x(F.silu(first_block_args["vec"])).chunk(4, dim=1)[0]
        return modulated_rmsnorm(first_block_args["img"], scale)
