"""Random-weight diffusion-model checkpoints for the speed benchmark, written to disk and loaded
the way a user's downloaded model is: through `comfy.sd.load_diffusion_model`, what
`nodes.UNETLoader` calls. ComfyUI's loader then detects the configuration, chooses the dtype and
the patcher (ModelPatcherDynamic where dynamic VRAM is on), and under dynamic VRAM maps the file
(comfy-aimdo) instead of holding the weights in memory: the configuration a user's run has.

Why a file and not the model built in memory: under dynamic VRAM (ComfyUI 0.26 on, the default on
a CUDA GPU) a layer of `comfy.ops` is made without its weight (`weight = None`) until a state dict
is loaded into it (`_lazy_load_from_state_dict`). A model built by its config and then filled in
place keeps those weights None (`cast_bias_weight`: `s.weight` is None), and the state dict of
such a model lacks every Linear weight, so ComfyUI's detection finds no model in it
(`load_diffusion_model_state_dict` returns None). The checkpoint's tensors are therefore read from
the model class built on the meta device with those lazy layers off, whatever the run's setting.
"""
from __future__ import annotations

import contextlib
import json
import math
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Iterator, Mapping

import torch

# safetensors' dtype names (the header's "dtype")
SAFETENSORS_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int64: "I64",
                      torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL", torch.float64: "F64"}
Geometry = tuple[tuple[int, ...], torch.dtype]
SPARE_BYTES = 2 * 1024 ** 3   # room left on a file system after the checkpoint


@contextlib.contextmanager
def layers_with_weights() -> Iterator[None]:
    """`comfy.ops` layers made inside get their weights at construction, as without dynamic VRAM."""
    import comfy.memory_management

    before = comfy.memory_management.aimdo_enabled
    comfy.memory_management.aimdo_enabled = False
    try:
        yield
    finally:
        comfy.memory_management.aimdo_enabled = before


def checkpoint_geometry(config) -> dict[str, Geometry]:
    """Every tensor of the diffusion model `config` (a `comfy.supported_models` config with its
    inference dtype set) builds, by key, shape and dtype: its own state dict, read on the meta
    device (no memory), so it follows the class of this ComfyUI, constructor arguments and all."""
    with layers_with_weights(), torch.device("meta"):
        model = config.get_model({}, device=torch.device("meta"))
    return {key: (tuple(t.shape), t.dtype) for key, t in model.diffusion_model.state_dict().items()}


def checkpoint_bytes(geometry: Mapping[str, Geometry]) -> int:
    return sum(math.prod(shape) * dtype.itemsize for shape, dtype in geometry.values())


def random_tensor(key: str, shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Random weights a forward runs through without overflow, as `model_from_weights.seeded_state_dict`
    makes them: matrices scaled by fan-in, norm scales near 1, everything else small (float32)."""
    noise = torch.randn(shape, generator=generator, device=device)
    if len(shape) >= 2:
        return noise.mul_((1.0 / shape[-1]) ** 0.5)
    if key.endswith((".scale", ".weight")) and "norm" in key:
        return noise.mul_(0.02).add_(1.0)
    return noise.mul_(0.02)


def random_tensors(geometry: Mapping[str, Geometry], device: torch.device, seed: int = 0) -> Iterator[tuple[str, torch.Tensor]]:
    """The checkpoint's tensors one at a time, in key order, on the CPU in their dtype: drawn on
    `device` (a GPU draws the 30 billion values of the largest model in about a second)."""
    generator = torch.Generator(device=device).manual_seed(seed)
    for key in sorted(geometry):
        shape, dtype = geometry[key]
        yield key, random_tensor(key, shape, generator, device).to(dtype).cpu()


def write_random_checkpoint(path: Path, geometry: Mapping[str, Geometry], device: torch.device, seed: int = 0) -> None:
    """A `.safetensors` file of random tensors of `geometry`, written one tensor at a time, so a
    full-size model never has to fit in host memory (MiniMax H3's 65 GB)."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for key in sorted(geometry):
        shape, dtype = geometry[key]
        size = math.prod(shape) * dtype.itemsize
        header[key] = {"dtype": SAFETENSORS_DTYPES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)   # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for _, tensor in random_tensors(geometry, device, seed):
            f.write(tensor.reshape(-1).view(torch.uint8).numpy().data)


def checkpoint_directory(size: int, candidates: list[str]) -> Path | None:
    """The first of `candidates` ("temp": the system's temporary folder) with room for a
    checkpoint of `size` bytes; None where none has it."""
    for candidate in candidates:
        directory = Path(tempfile.gettempdir() if candidate == "temp" else candidate)
        if directory.is_dir() and shutil.disk_usage(directory).free >= size + SPARE_BYTES:
            return directory
    return None


@contextlib.contextmanager
def detection_with(sizes: Mapping[str, object]) -> Iterator[None]:
    """ComfyUI's detection with `sizes` on top of what it reads from a checkpoint (nothing: as
    is). Only for tiny dry runs: a checkpoint does not tell every size (Qwen-Image's widths and
    FLUX's head count are fixed in detection, Wan's text width is the class's default), so a
    tiny model of a released class cannot be told apart from the released one by its tensors."""
    import comfy.model_detection

    if not sizes:
        yield
        return
    detect = comfy.model_detection.detect_unet_config

    def with_sizes(*args, **kwargs):
        found = detect(*args, **kwargs)
        return found if found is None else {**found, **sizes}

    comfy.model_detection.detect_unet_config = with_sizes
    try:
        yield
    finally:
        comfy.model_detection.detect_unet_config = detect


def detection_mismatches(geometry: Mapping[str, Geometry], config) -> list[str]:
    """Where ComfyUI's detection of the checkpoint differs from `config`, the configuration it was
    written from: another config class, a constructor argument both name with other values (a
    head count changes no tensor), or a model of other tensors (empty: the loader builds the
    same model)."""
    import comfy.model_detection

    meta = {key: torch.empty(shape, dtype=dtype, device="meta") for key, (shape, dtype) in geometry.items()}
    detected = comfy.model_detection.model_config_from_unet(meta, "")
    if detected is None:
        return ["no model detected"]
    if type(detected) is not type(config):
        return [f"detected {type(detected).__name__}, written from {type(config).__name__}"]

    def plain(value: object) -> object:
        return list(value) if isinstance(value, (tuple, list)) else value

    problems = [f"{key}: detected {detected.unet_config[key]!r}, written {config.unet_config[key]!r}"
                for key in sorted(set(detected.unet_config) & set(config.unet_config))
                if plain(detected.unet_config[key]) != plain(config.unet_config[key])]
    detected.set_inference_dtype(config.unet_config.get("dtype", torch.float32), None)
    shapes = {key: shape for key, (shape, _) in checkpoint_geometry(detected).items()}
    differing = sorted(set(shapes.items()) ^ {(key, shape) for key, (shape, _) in geometry.items()})
    if differing:
        problems.append(f"{len(differing)} tensors differ from the detected model's, e.g. {differing[:2]}")
    return problems
