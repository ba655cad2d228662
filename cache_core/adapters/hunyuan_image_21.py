"""HunyuanImage 2.1 (`HunyuanVideo` class on 2-D latents: a two-number patch size). No published
presets: the threshold nodes ask for a Block Profiler profile."""
from __future__ import annotations

import torch

from .hunyuan_video import HunyuanVideoAdapter


class HunyuanImage21Adapter(HunyuanVideoAdapter):
    family = "hunyuan_image_2.1"
    display_name = "HunyuanImage 2.1"
    teacache_presets = ()
    magnitude_presets = ()

    def matches(self, diffusion_model: torch.nn.Module) -> bool:
        return super().matches(diffusion_model) and len(diffusion_model.patch_size) == 2
