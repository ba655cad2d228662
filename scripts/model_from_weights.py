"""Builds a ComfyUI diffusion model the way ComfyUI's own loaders do: the model's configuration is
detected from a state dict in the published checkpoint format (`comfy.model_detection`), so the
constructor arguments a newer ComfyUI adds arrive by themselves, and the checkpoint is converted
by the config's own `process_unet_state_dict` (norm weights renamed, for instance).

Only what the weights cannot tell (head counts, rotary axes, text width) is given by the caller,
as `overrides` on top of what detection found. Used by the tests' tiny models and the reference
models.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import torch

Shapes = Mapping[str, "tuple[int, ...] | list[int]"]


def seeded_state_dict(shapes: Shapes, seed: int) -> dict[str, torch.Tensor]:
    """Random weights in checkpoint format, the same for a seed on every ComfyUI (keys in sorted
    order): matrices scaled by fan-in, norm scales near 1, everything else small."""
    generator = torch.Generator().manual_seed(seed)
    weights: dict[str, torch.Tensor] = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        noise = torch.randn(shape, generator=generator)
        if len(shape) >= 2:
            weights[key] = noise * (1.0 / shape[-1]) ** 0.5
        elif key.endswith((".scale", ".weight")) and "norm" in key:
            weights[key] = 1.0 + noise * 0.02
        else:
            weights[key] = noise * 0.02
    return weights


def model_config(config_name: str, weights: Mapping[str, torch.Tensor], overrides: Mapping, dtype: torch.dtype):
    """The `comfy.supported_models` config `config_name` with the unet configuration this ComfyUI
    detects from `weights`, updated by `overrides`."""
    import comfy.model_detection
    import comfy.supported_models

    detected = comfy.model_detection.detect_unet_config(dict(weights), "") or {}
    config = getattr(comfy.supported_models, config_name)({**detected, **overrides})
    config.set_inference_dtype(dtype, None)
    return config


def build_model(config_name: str, weights: Mapping[str, torch.Tensor], overrides: Mapping,
                dtype: torch.dtype = torch.float32, device: torch.device | None = None):
    """A ComfyUI `BaseModel` holding `weights`. As ComfyUI's loader does, keys the model does not
    have are left out (a ComfyUI may drop an unused layer); a weight the model lacks is an error."""
    config = model_config(config_name, weights, overrides, dtype)
    converted = config.process_unet_state_dict(dict(weights))
    model = config.get_model(converted, device=device)
    missing, _ = model.diffusion_model.load_state_dict({k: v.to(dtype) for k, v in converted.items()}, strict=False)
    if missing:
        raise RuntimeError(f"{config_name}: the checkpoint lacks {len(missing)} weights, e.g. {missing[:3]}")
    return model


def read_shapes(path: Path) -> dict[str, dict[str, list[int]]]:
    return json.loads(path.read_text())
