"""Wan2.1 (`comfy.ldm.wan.model.WanModel` and the subclasses T2V and I2V use): one list of
attention blocks, hooked under the `double_block` key, that transform `img` alone."""
from __future__ import annotations

import torch

import comfy.model_management
from comfy.ldm.wan.model import WanModel, repeat_e

from .base import BlockSpec, ModelAdapter
from .presets import MagnitudePreset, TeaCachePreset, mean_of_cond_uncond_pairs


class WanAdapter(ModelAdapter):
    family = "wan"
    display_name = "Wan2.1"
    model_class = WanModel
    blocks_modify_inputs = False  # WanAttentionBlock builds new tensors (x + ..., addcmul)
    # TeaCache authors, one polynomial per checkpoint, with their recommended thresholds.
    teacache_presets = (
        TeaCachePreset("wan2.1_t2v_1.3b",
                       (2.39676752e03, -1.31110545e03, 2.01331979e02, -8.29855975e00, 1.37887774e-01), 0.08),
        TeaCachePreset("wan2.1_t2v_14b",
                       (-5784.54975374, 5449.50911966, -1811.16591783, 256.27178429, -13.02252404), 0.2),
        TeaCachePreset("wan2.1_i2v_480p",
                       (-3.02331670e02, 2.23948934e02, -5.25463970e01, 5.87348440e00, -2.01973289e-01), 0.26),
        TeaCachePreset("wan2.1_i2v_720p",
                       (-114.36346466, 65.26524496, -18.82220707, 4.91518089, -0.23412683), 0.25),
    )
    # MagCache authors, Wan2.1 T2V 1.3B at 50 steps.
    magnitude_presets = (
        MagnitudePreset("wan2.1_t2v_1.3b", mean_of_cond_uncond_pairs([
            1.0, 1.0, 1.0124, 1.02213, 1.00166, 1.0041, 0.99791, 1.00061, 0.99682, 0.99762, 0.99634, 0.99685,
            0.99567, 0.99586, 0.99416, 0.99422, 0.99578, 0.99575, 0.9957, 0.99563, 0.99511, 0.99506, 0.99535,
            0.99531, 0.99552, 0.99549, 0.99541, 0.99539, 0.9954, 0.99536, 0.99489, 0.99485, 0.99518, 0.99514,
            0.99484, 0.99478, 0.99481, 0.99479, 0.99415, 0.99413, 0.99419, 0.99416, 0.99396, 0.99393, 0.99388,
            0.99386, 0.99349, 0.99349, 0.99309, 0.99304, 0.9927, 0.9927, 0.99228, 0.99226, 0.99171, 0.9917,
            0.99137, 0.99135, 0.99068, 0.99063, 0.99005, 0.99003, 0.98944, 0.98942, 0.98849, 0.98849, 0.98758,
            0.98757, 0.98644, 0.98643, 0.98504, 0.98503, 0.9836, 0.98359, 0.98202, 0.98201, 0.97977, 0.97978,
            0.97717, 0.97718, 0.9741, 0.97411, 0.97003, 0.97002, 0.96538, 0.96541, 0.9593, 0.95933, 0.95086,
            0.95089, 0.94013, 0.94019, 0.92402, 0.92414, 0.90241, 0.9026, 0.86821, 0.86868, 0.81838, 0.81939]),
            0.12, 2),
    )

    def block_modules(self, diffusion_model: torch.nn.Module) -> list[torch.nn.Module]:
        return list(diffusion_model.blocks)

    def blocks(self, diffusion_model: torch.nn.Module) -> list[BlockSpec]:
        return [BlockSpec(("double_block", i), ("img",)) for i in range(len(diffusion_model.blocks))]

    def stack_input(self, first_block_args: dict) -> torch.Tensor:
        return first_block_args["img"]

    def adds_between_blocks(self, diffusion_model: torch.nn.Module, control: object, model_kwargs: dict) -> bool:
        # WanModel's own block loop adds nothing between blocks; the subclasses with a loop of their
        # own do (VACE hints, S2V audio, Animate face motion), or may: they are accounted per block.
        return type(diffusion_model).forward_orig is not WanModel.forward_orig

    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        block = diffusion_model.blocks[0]
        x, e = first_block_args["img"], first_block_args["vec"]
        modulation = comfy.model_management.cast_to(block.modulation, dtype=x.dtype, device=x.device)
        if e.ndim < 4:
            e = (modulation + e).chunk(6, dim=1)
        else:
            e = (modulation.unsqueeze(0) + e).unbind(2)
        return torch.addcmul(repeat_e(e[0], x), block.norm1(x), 1 + repeat_e(e[1], x))
