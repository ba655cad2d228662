"""The project's trained reference models: tiny FLUX, Wan2.1 and HunyuanVideo in ComfyUI's own
classes, trained by `reference/train_reference.py` on the procedural world of `reference_data.py`.
Weights ship as fp16 safetensors under `reference/weights/`, with a JSON of how they were made."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

import reference_data as rd

WEIGHTS = Path(__file__).resolve().parent / "weights"

# family -> (comfy.supported_models config class, unet_config, video?, guidance)
CONFIGS: dict[str, tuple[str, dict, bool, float | None]] = {
    "flux": ("Flux", dict(image_model="flux", guidance_embed=True, in_channels=16, out_channels=16, vec_in_dim=64,
                          context_in_dim=64, hidden_size=128, mlp_ratio=4.0, num_heads=4, depth=3,
                          depth_single_blocks=6, axes_dim=[8, 12, 12], theta=10000, patch_size=2, qkv_bias=True),
             False, 3.5),
    "wan": ("WAN21_T2V", dict(image_model="wan2.1", model_type="t2v", dim=128, ffn_dim=512, num_heads=4, num_layers=8,
                              text_dim=64, in_dim=16, out_dim=16, text_len=rd.PROMPT_TOKENS), True, None),
    "hunyuan_video": ("HunyuanVideo", dict(image_model="hunyuan_video", in_channels=16, out_channels=16, vec_in_dim=64,
                                           context_in_dim=64, hidden_size=128, mlp_ratio=4.0, num_heads=4, depth=3,
                                           depth_single_blocks=6, axes_dim=[8, 12, 12], theta=256,
                                           patch_size=[1, 2, 2], qkv_bias=True, guidance_embed=True, byt5=False,
                                           meanflow=False, use_cond_type_embedding=False, vision_in_dim=None),
                      True, 6.0),
}


@dataclass
class ReferenceModel:
    family: str
    patcher: object
    video: bool
    guidance: float | None
    meta: dict

    def latent_shape(self, batch: int = 1) -> tuple[int, ...]:
        side = rd.PIXELS // 2
        return (batch, rd.LATENT_CHANNELS, rd.VIDEO_FRAMES, side, side) if self.video else (batch, rd.LATENT_CHANNELS, side, side)

    def conditioning(self, prompt: rd.Prompt) -> list:
        return self.batch_conditioning([prompt])

    def batch_conditioning(self, prompts: list[rd.Prompt]) -> list:
        """One conditioning whose i-th row is the i-th prompt (ComfyUI pairs rows with batch elements)."""
        context, pooled = rd.embed(prompts)
        extra = {"pooled_output": pooled}
        if self.guidance is not None:
            extra["guidance"] = self.guidance
        return [[context, extra]]

    def empty_conditioning(self) -> list:
        context, pooled = rd.embed([rd.Prompt("black", "circle", "white")])
        extra = {"pooled_output": torch.zeros_like(pooled)}
        if self.guidance is not None:
            extra["guidance"] = self.guidance
        return [[torch.zeros_like(context), extra]]


def build_model(family: str, device: torch.device, dtype: torch.dtype = torch.float32):
    """An untrained model of the family's reference size, in ComfyUI's classes."""
    import comfy.supported_models

    config_name, unet, _, _ = CONFIGS[family]
    config = getattr(comfy.supported_models, config_name)(unet)
    config.set_inference_dtype(dtype, None)
    return config.get_model({}, device=device)


def load(family: str) -> ReferenceModel:
    """The trained model, loaded as ComfyUI loads a checkpoint (configuration detected from the
    weights, see `scripts/model_from_weights.py`), so it builds on every ComfyUI."""
    import comfy.model_management
    import comfy.model_patcher
    from safetensors.torch import load_file

    import model_from_weights

    config_name, unet, video, guidance = CONFIGS[family]
    weights = {k: v.float() for k, v in load_file(str(WEIGHTS / f"{family}.safetensors")).items()}
    model = model_from_weights.build_model(config_name, weights, unet)
    meta = json.loads((WEIGHTS / f"{family}.json").read_text())
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=comfy.model_management.get_torch_device(),
                                               offload_device=torch.device("cpu"))
    return ReferenceModel(family, patcher, video, guidance, meta)


def available() -> list[str]:
    return [f for f in CONFIGS if (WEIGHTS / f"{f}.safetensors").exists()]
