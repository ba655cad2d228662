"""HunyuanVideo 1.5 (`HunyuanVideo` class with a vision input and no single-stream blocks): its
stack is all two-stream blocks, so the stack's residual is of the image tokens alone."""
from __future__ import annotations

import torch

from .hunyuan_video import HunyuanVideoAdapter
from .presets import MagnitudePreset, mean_of_cond_uncond_pairs


class HunyuanVideo15Adapter(HunyuanVideoAdapter):
    family = "hunyuan_video_1.5"
    display_name = "HunyuanVideo 1.5"
    teacache_presets = ()
    # MagCache authors (cond/uncond pairs averaged): 20 steps with their recommended 0.03, K 2; a 40-step
    # curve with no published setting (the 20-step one's given).
    magnitude_presets = (
        MagnitudePreset("hunyuan_video1.5", mean_of_cond_uncond_pairs([1.0] * 2 + [
            1.01172, 1.00293, 0.9873, 1.0127, 1.01465, 0.98926, 0.99805, 1.00098, 0.99512, 0.99365, 0.99512,
            0.99561, 0.99316, 0.99365, 0.99365, 0.99365, 0.99316, 0.99316, 0.99268, 0.99268, 0.9917, 0.9917,
            0.99023, 0.99023, 0.98828, 0.98877, 0.98633, 0.98633, 0.9834, 0.9834, 0.97949, 0.97998, 0.97363,
            0.97363, 0.96436, 0.96436, 0.94824, 0.94873]), 0.03, 2),
        MagnitudePreset("hunyuan_video1.5_40steps", mean_of_cond_uncond_pairs([1.0] * 2 + [
            1.04199, 1.01953, 1.01172, 1.01855, 1.00293, 1.00586, 1.00098, 1.00195, 1.0, 1.00098, 0.99805, 0.99902,
            0.99854, 0.99805, 0.99658, 0.99756, 0.99707, 0.99512, 0.99609, 0.99609, 0.99658, 0.99658, 0.99658,
            0.99805, 0.99658, 0.99707, 0.99561, 0.99561, 0.99561, 0.99658, 0.99658, 0.99658, 0.99609, 0.99658,
            0.99512, 0.99561, 0.99463, 0.99512, 0.99463, 0.99512, 0.99463, 0.99512, 0.99365, 0.99414, 0.99365,
            0.99365, 0.99219, 0.99219, 0.99219, 0.99268, 0.99072, 0.99121, 0.99072, 0.99072, 0.98926, 0.98975,
            0.9873, 0.98779, 0.98535, 0.98584, 0.9834, 0.9834, 0.97998, 0.97998, 0.97607, 0.97607, 0.96973,
            0.96973, 0.96338, 0.96338, 0.9502, 0.9502, 0.93066, 0.93066, 0.896, 0.896, 0.81787, 0.81836]), 0.03, 2),
    )

    def matches(self, diffusion_model: torch.nn.Module) -> bool:
        return super().matches(diffusion_model) and getattr(diffusion_model, "vision_in", None) is not None
