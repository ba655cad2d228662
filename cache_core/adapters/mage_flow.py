"""Mage-Flow (`comfy.ldm.mage_flow.model.MageFlowTransformer2DModel`, ComfyUI 0.33 on): Qwen-Image's
two-stream blocks at patch size 1, hooked under the `double_block` key, with Qwen-Image's block
loop (ControlNet residuals and per-block patches after each block). No published presets."""
from __future__ import annotations

from .qwen_image import QwenImageAdapter

try:
    from comfy.ldm.mage_flow.model import MageFlowTransformer2DModel
except ImportError:   # a ComfyUI from before Mage-Flow: the family does not exist there
    MageFlowTransformer2DModel = None


class MageFlowAdapter(QwenImageAdapter):
    family = "mage_flow" if MageFlowTransformer2DModel is not None else ""
    display_name = "Mage-Flow"
    model_class = MageFlowTransformer2DModel if MageFlowTransformer2DModel is not None else type(None)
    teacache_presets = ()
    magnitude_presets = ()
