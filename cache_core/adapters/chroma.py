"""Chroma and Chroma Radiance (`comfy.ldm.chroma.model.Chroma` and its subclass): FLUX layers
with modulations from a distilled guidance network, handed to each block as `vec`. Blocks listed
in the model's `skip_mmdit` / `skip_dit` never run and are not cached."""
from __future__ import annotations

import torch

from comfy.ldm.chroma.model import Chroma

from .base import BlockSpec
from .double_single_stream import DoubleSingleStreamAdapter
from .presets import MagnitudePreset, mean_of_cond_uncond_pairs


class ChromaAdapter(DoubleSingleStreamAdapter):
    family = "chroma"
    display_name = "Chroma"
    model_class = Chroma
    # MagCache authors, 26 steps (cond/uncond pairs averaged); their recommended 0.10, K 2.
    magnitude_presets = (
        MagnitudePreset("chroma", mean_of_cond_uncond_pairs([1.0] * 2 + [
            1.00781, 1.01562, 1.03906, 1.03906, 1.05469, 1.05469, 1.07031, 1.07031, 1.04688, 1.04688, 1.03906,
            1.03906, 1.03906, 1.03906, 1.01562, 1.01562, 1.05469, 1.05469, 0.99609, 0.99609, 1.02344, 1.02344,
            1.01562, 1.01562, 0.99609, 0.99609, 1.0, 1.0, 0.99219, 0.99219, 1.00781, 1.00781, 1.00781, 1.00781,
            0.97656, 0.97656, 0.98828, 0.98828, 0.97266, 0.97266, 1.0, 1.0, 0.93359, 0.93359, 0.94922, 0.94922,
            0.92578, 0.92578, 1.0625, 1.0625]), 0.10, 2),
    )

    def block_modules(self, diffusion_model: torch.nn.Module) -> list[torch.nn.Module]:
        double = [b for i, b in enumerate(diffusion_model.double_blocks) if i not in diffusion_model.skip_mmdit]
        single = [b for i, b in enumerate(diffusion_model.single_blocks) if i not in diffusion_model.skip_dit]
        return double + single

    def blocks(self, diffusion_model: torch.nn.Module) -> list[BlockSpec]:
        skip_double, skip_single = set(diffusion_model.skip_mmdit), set(diffusion_model.skip_dit)
        return [spec for spec in super().blocks(diffusion_model)
                if spec.key[1] not in (skip_double if spec.key[0] == "double_block" else skip_single)]
