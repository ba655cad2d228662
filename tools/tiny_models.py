"""Tiny real models in ComfyUI's own classes (`comfy.supported_models` configs, real
`ModelPatcher`), with seeded random weights, for tests and the demo. Each family comes with
an empty latent and conditioning of the right shapes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class TinyModel:
    family: str
    patcher: object            # comfy.model_patcher.ModelPatcher
    latent_shape: tuple[int, ...]
    make_cond: Callable[[torch.Generator], list]


def init_weights(model: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=generator) * (1.0 / p.shape[-1]) ** 0.5)
            elif name.endswith((".scale", ".weight")) and "norm" in name:
                p.copy_(1.0 + torch.randn(p.shape, generator=generator) * 0.02)
            else:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.02)


def _patcher(config_cls, unet_config: dict, seed: int):
    import comfy.model_management
    import comfy.model_patcher

    config = config_cls(unet_config)
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    init_weights(model.diffusion_model, seed)
    device = comfy.model_management.get_torch_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=torch.device("cpu"))


def tiny_flux(seed: int = 0) -> TinyModel:
    from comfy.supported_models import Flux

    unet = dict(image_model="flux", guidance_embed=True, in_channels=16, out_channels=16, vec_in_dim=64,
                context_in_dim=64, hidden_size=128, mlp_ratio=4.0, num_heads=4, depth=2, depth_single_blocks=4,
                axes_dim=[8, 12, 12], theta=10000, patch_size=2, qkv_bias=True)

    def cond(g: torch.Generator) -> list:
        return [[torch.randn(1, 8, 64, generator=g), {"pooled_output": torch.randn(1, 64, generator=g), "guidance": 3.5}]]

    return TinyModel("flux", _patcher(Flux, unet, seed), (1, 16, 16, 16), cond)


def tiny_wan(seed: int = 0, model_type: str = "t2v") -> TinyModel:
    from comfy.supported_models import WAN21_I2V, WAN21_T2V

    unet = dict(image_model="wan2.1", model_type=model_type, dim=128, ffn_dim=256, num_heads=4, num_layers=4,
                text_dim=64, in_dim=16 if model_type == "t2v" else 36, out_dim=16, text_len=16)
    config_cls = WAN21_T2V if model_type == "t2v" else WAN21_I2V

    def cond(g: torch.Generator) -> list:
        extra = {}
        if model_type == "i2v":
            extra["concat_latent_image"] = torch.randn(1, 16, 3, 8, 8, generator=g)
        return [[torch.randn(1, 16, 64, generator=g), extra]]

    return TinyModel("wan", _patcher(config_cls, unet, seed), (1, 16, 3, 8, 8), cond)


def tiny_hunyuan_video(seed: int = 0) -> TinyModel:
    from comfy.supported_models import HunyuanVideo

    unet = dict(image_model="hunyuan_video", in_channels=16, out_channels=16, vec_in_dim=64, context_in_dim=64,
                hidden_size=128, mlp_ratio=4.0, num_heads=4, depth=2, depth_single_blocks=4, axes_dim=[8, 12, 12],
                theta=256, patch_size=[1, 2, 2], qkv_bias=True, guidance_embed=True, byt5=False, meanflow=False,
                use_cond_type_embedding=False, vision_in_dim=None)

    def cond(g: torch.Generator) -> list:
        return [[torch.randn(1, 8, 64, generator=g), {"pooled_output": torch.randn(1, 64, generator=g), "guidance": 6.0}]]

    return TinyModel("hunyuan_video", _patcher(HunyuanVideo, unet, seed), (1, 16, 3, 8, 8), cond)


def tiny_sd15(seed: int = 0) -> TinyModel:
    """An SD1.5-style UNet: not a diffusion transformer, for the "unsupported model" paths."""
    from comfy.supported_models import SD15

    unet = dict(image_size=32, context_dim=64, model_channels=32, use_linear_in_transformer=False,
                adm_in_channels=None, use_temporal_attention=False, in_channels=4, out_channels=4,
                num_res_blocks=[1, 1], channel_mult=[1, 2], transformer_depth=[1, 1],
                transformer_depth_output=[1, 1, 1, 1], transformer_depth_middle=1, num_head_channels=16,
                use_spatial_transformer=True, legacy=False)

    def cond(g: torch.Generator) -> list:
        return [[torch.randn(1, 4, 64, generator=g), {}]]

    return TinyModel("sd15", _patcher(SD15, unet, seed), (1, 4, 8, 8), cond)


def tiny_sd3(seed: int = 0) -> TinyModel:
    """An SD3-style MMDiT: a transformer, but not a family this pack has an adapter for."""
    from comfy.supported_models import SD3

    unet = dict(in_channels=16, pos_embed_scaling_factor=None, patch_size=2, depth=2, out_channels=16,
                adm_in_channels=64, pos_embed_max_size=16, num_patches=256, qk_norm=None, x_block_self_attn_layers=[],
                context_embedder_config={"target": "torch.nn.Linear", "params": {"in_features": 64, "out_features": 128}})

    def cond(g: torch.Generator) -> list:
        return [[torch.randn(1, 8, 64, generator=g), {"pooled_output": torch.randn(1, 64, generator=g)}]]

    return TinyModel("sd3", _patcher(SD3, unet, seed), (1, 16, 16, 16), cond)


BUILDERS: dict[str, Callable[..., TinyModel]] = {
    "flux": tiny_flux,
    "wan": tiny_wan,
    "wan_i2v": lambda seed=0: tiny_wan(seed, "i2v"),
    "hunyuan_video": tiny_hunyuan_video,
}


def sample(patcher, tiny: TinyModel, steps: int = 10, cfg: float = 3.0, seed: int = 0,
           sampler: str = "euler", scheduler: str = "simple", latent_shape: tuple[int, ...] | None = None,
           callback=None) -> torch.Tensor:
    """Real sampling through `comfy.sample.sample`, with a positive and a negative prompt."""
    import comfy.sample

    g = torch.Generator().manual_seed(1234)
    positive, negative = tiny.make_cond(g), tiny.make_cond(g)
    latent = torch.zeros(latent_shape or tiny.latent_shape)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(seed))
    return comfy.sample.sample(patcher, noise, steps, cfg, sampler, scheduler, positive, negative, latent,
                               seed=seed, disable_pbar=True, callback=callback)
