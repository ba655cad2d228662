"""Renders a profile's per-step, per-block change as a picture: rows are steps (first at the
top), columns are blocks; brighter means the block's output changed more since the previous
step, so long dark runs are what caching can skip."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

# dark blue -> teal -> yellow, like the perceptual maps people know from matplotlib
_ANCHORS = np.array([[13, 8, 135], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float32)
CELL = 14
MARGIN = 36


def _colour(values: np.ndarray) -> np.ndarray:
    positions = values * (len(_ANCHORS) - 1)
    low = np.clip(np.floor(positions).astype(int), 0, len(_ANCHORS) - 2)
    frac = (positions - low)[..., None]
    return (_ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac).astype(np.uint8)


def render_heatmap(profile: dict[str, Any]) -> Image.Image:
    rows = [[v if v is not None and math.isfinite(v) else math.nan for v in row] for row in profile["block_rel_l1"]]
    data = np.array(rows, dtype=np.float64) if rows else np.zeros((1, max(len(profile["blocks"]), 1)))
    finite = data[np.isfinite(data)]
    scaled = np.zeros_like(data)
    if finite.size:
        logs = np.log10(np.clip(data, 1e-6, None))
        low, high = float(np.nanmin(logs[np.isfinite(data)])), float(np.nanmax(logs[np.isfinite(data)]))
        scaled = np.where(np.isfinite(data), (logs - low) / max(high - low, 1e-9), 0.0)
    pixels = _colour(np.clip(scaled, 0, 1))
    pixels[~np.isfinite(data)] = (40, 40, 40)
    steps, blocks = pixels.shape[:2]
    grid = Image.fromarray(pixels, "RGB").resize((blocks * CELL, steps * CELL), Image.NEAREST)
    canvas = Image.new("RGB", (grid.width + MARGIN + 8, grid.height + MARGIN + 8), (24, 24, 24))
    canvas.paste(grid, (MARGIN, MARGIN))
    draw = ImageDraw.Draw(canvas)
    draw.text((MARGIN, 4), f"{profile.get('family', '?')}: block change per step", fill=(230, 230, 230))
    draw.text((MARGIN, 18), "blocks ->", fill=(180, 180, 180))
    draw.text((2, MARGIN), "steps", fill=(180, 180, 180))
    return canvas


def heatmap_tensor(profile: dict[str, Any]) -> torch.Tensor:
    """The heatmap as a ComfyUI IMAGE: float [1, H, W, 3] in 0..1."""
    array = np.asarray(render_heatmap(profile), dtype=np.float32) / 255.0
    return torch.from_numpy(array)[None]
