"""Test-only custom node package: stand-ins for ComfyUI's model loaders that return tiny real
models, so the example workflows run end to end where no real weights can be downloaded.

The tests (and the browser test's server) load this folder as a custom node. A workflow's
UNETLoader / DualCLIPLoader / CLIPLoader / VAELoader / CLIPVisionLoader become these nodes with
the same inputs; everything else in the graph is ComfyUI's own. What each returns:
- MODEL: the project's trained reference model of the family the file name names (FLUX, Wan2.1
  T2V, HunyuanVideo), or a seeded tiny Wan2.1 I2V for an i2v file.
- CLIP: a real `comfy.sd.CLIP` around a 2-layer CLIP-L text model (width 64, ComfyUI's CLIP
  tokenizer), whose hidden states and pooled output have the reference models' widths.
- VAE: a real `comfy.sd.VAE` from a seeded TAESD (images) or TAEHV (video) state dict, the small
  autoencoders ComfyUI itself recognises, 16 latent channels like FLUX / Wan2.1 / HunyuanVideo.
- CLIP_VISION: a real `comfy.clip_vision.ClipVisionModel`, 2 layers at Wan2.1 I2V's width 1280.
Weights are seeded random except the reference models': the graph really runs, the pictures are
not meant to look like anything.
"""
from __future__ import annotations

import functools
import json
import sys
import tempfile
from pathlib import Path

import torch

TOOLS = Path(__file__).resolve().parents[3] / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

WIDTH = 64  # the reference models' context_in_dim / vec_in_dim / text_dim
TEXT_CONFIG = {"hidden_act": "quick_gelu", "hidden_size": WIDTH, "intermediate_size": 4 * WIDTH,
               "num_attention_heads": 4, "num_hidden_layers": 2, "max_position_embeddings": 77,
               "projection_dim": WIDTH, "vocab_size": 49408, "layer_norm_eps": 1e-5,
               "bos_token_id": 0, "eos_token_id": 49407, "pad_token_id": 1}
VISION_CONFIG = {"hidden_act": "gelu", "hidden_size": 1280, "image_size": 224, "intermediate_size": 1280,
                 "layer_norm_eps": 1e-5, "model_type": "clip_vision_model", "num_attention_heads": 16,
                 "num_channels": 3, "num_hidden_layers": 2, "patch_size": 14, "projection_dim": WIDTH}


def seeded_init(module: torch.nn.Module, seed: int) -> None:
    """ComfyUI's layers skip weight initialisation: give every parameter a seeded value,
    scaled by its fan-in so activations stay finite through the stack."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=generator) * (p[0].numel() ** -0.5))
            elif "norm" in name and name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.zero_()


def family_of(file_name: str) -> str:
    name = file_name.lower()
    if "i2v" in name:
        return "wan_i2v"
    for family in ("hunyuan", "wan", "flux"):
        if family in name:
            return "hunyuan_video" if family == "hunyuan" else family
    raise ValueError(f"no tiny model stands in for {file_name!r}: name a flux, wan or hunyuan file")


class TinyDiffusionModel:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"unet_name": ("STRING", {"default": "flux1-dev.safetensors"})}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"
    CATEGORY = "testing/dit_cache"

    def load(self, unet_name: str):
        family = family_of(unet_name)
        if family == "wan_i2v":
            import tiny_models
            return (tiny_models.tiny_wan(0, "i2v").patcher,)
        import reference_models
        return (reference_models.load(family).patcher,)


class _TextEncoderTarget:
    """What `comfy.sd.CLIP` builds a text encoder from (ComfyUI's own CLIP-L classes)."""

    def __init__(self) -> None:
        import comfy.sd1_clip

        self.params: dict = {}
        self.clip = functools.partial(comfy.sd1_clip.SD1ClipModel, clip_model=comfy.sd1_clip.SDClipModel,
                                      textmodel_json_config=TEXT_CONFIG)
        self.tokenizer = comfy.sd1_clip.SD1Tokenizer


class TinyTextEncoder:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load"
    CATEGORY = "testing/dit_cache"

    def load(self):
        import comfy.sd

        clip = comfy.sd.CLIP(_TextEncoderTarget(), model_options={"dtype": torch.float32})
        seeded_init(clip.cond_stage_model, 1)
        return (clip,)


class TinyVAE:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vae_name": ("STRING", {"default": "ae.safetensors"})}}

    RETURN_TYPES = ("VAE",)
    FUNCTION = "load"
    CATEGORY = "testing/dit_cache"

    def load(self, vae_name: str):
        import comfy.sd
        import comfy.taesd.taehv
        import comfy.taesd.taesd

        video = any(k in vae_name.lower() for k in ("wan", "hunyuan"))
        module = comfy.taesd.taehv.TAEHV(latent_channels=16) if video else comfy.taesd.taesd.TAESD(latent_channels=16)
        seeded_init(module, 2)
        return (comfy.sd.VAE(sd={k: v.float() for k, v in module.state_dict().items()}),)


class TinyCLIPVision:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("CLIP_VISION",)
    FUNCTION = "load"
    CATEGORY = "testing/dit_cache"

    def load(self):
        import comfy.clip_vision

        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(VISION_CONFIG, f)
        model = comfy.clip_vision.ClipVisionModel(f.name)
        Path(f.name).unlink()
        seeded_init(model.model, 3)
        return (model,)


NODE_CLASS_MAPPINGS = {
    "DiTCacheTestTinyDiffusionModel": TinyDiffusionModel,
    "DiTCacheTestTinyTextEncoder": TinyTextEncoder,
    "DiTCacheTestTinyVAE": TinyVAE,
    "DiTCacheTestTinyCLIPVision": TinyCLIPVision,
}

# Model folder -> the files the example workflows name (ComfyUI's example file names).
MODEL_FILES = {
    "diffusion_models": ["flux1-dev.safetensors", "wan2.1_t2v_1.3B_fp16.safetensors",
                         "wan2.1_i2v_480p_14B_fp16.safetensors", "hunyuan_video_t2v_720p_bf16.safetensors"],
    "text_encoders": ["clip_l.safetensors", "t5xxl_fp16.safetensors", "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                      "llava_llama3_fp8_scaled.safetensors"],
    "vae": ["ae.safetensors", "wan_2.1_vae.safetensors", "hunyuan_video_vae_bf16.safetensors"],
    "clip_vision": ["clip_vision_h.safetensors"],
}


def place_model_files(models: Path) -> dict[str, Path]:
    """Empty files under `models/<folder>/` with the names the workflows use, so ComfyUI's loader
    combos list them (only their names are validated; the stand-ins load the tiny models)."""
    folders = {}
    for folder, files in MODEL_FILES.items():
        folders[folder] = models / folder
        folders[folder].mkdir(parents=True)
        for name in files:
            (folders[folder] / name).touch()
    return folders


# ComfyUI's loader class -> the tiny stand-in above (same output type, same file-name input).
STAND_INS = {
    "UNETLoader": "DiTCacheTestTinyDiffusionModel",
    "DualCLIPLoader": "DiTCacheTestTinyTextEncoder",
    "CLIPLoader": "DiTCacheTestTinyTextEncoder",
    "VAELoader": "DiTCacheTestTinyVAE",
    "CLIPVisionLoader": "DiTCacheTestTinyCLIPVision",
}


def tiny_ui_workflow(workflow: dict) -> dict:
    """A UI-format workflow as the graph editor would hold it after swapping each loader node for
    its stand-in (keeping the file-name widget) and making the picture 64 pixels wide."""
    import copy

    import workflow_format as wf

    out = copy.deepcopy(workflow)
    for node in out["nodes"]:
        if node["type"] in STAND_INS:
            node["type"] = STAND_INS[node["type"]]
            node["properties"] = {"Node name for S&R": node["type"]}
            node["widgets_values"] = node["widgets_values"][:len(wf.widget_slots(node["type"]))]
            continue
        for i, (name, _) in enumerate(wf.widget_slots(node["type"])):
            if name in ("width", "height"):
                node["widgets_values"][i] = 64
            elif name == "length":
                node["widgets_values"][i] = 5
    return out
