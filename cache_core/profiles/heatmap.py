"""Renders a profile's per-step, per-block change as a picture people can read: rows are steps
(first at the top), columns are blocks; brighter means the block's output changed more since the
previous step, so long dark runs are what caching can skip. Axis titles, step and block numbers
and a colour scale (relative L1 change, log scale) are drawn in a font large enough to stay
legible when the graph editor shrinks the picture to the node's width."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

# dark blue -> teal -> yellow, like the perceptual maps people know from matplotlib
_ANCHORS = np.array([[13, 8, 135], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float32)
GRID_WIDTH = 720          # the cells' area, whatever the block count: the picture keeps one size
GRID_MAX_HEIGHT = 480
FONT_SIZE = 22
LEFT, TOP, RIGHT, BOTTOM = 84, 56, 24, 132   # margins for the step axis, title, and block axis + scale
BACKGROUND, TEXT, MISSING = (24, 24, 24), (235, 235, 235), (60, 60, 60)


def _colour(values: np.ndarray) -> np.ndarray:
    positions = values * (len(_ANCHORS) - 1)
    low = np.clip(np.floor(positions).astype(int), 0, len(_ANCHORS) - 2)
    frac = (positions - low)[..., None]
    return (_ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac).astype(np.uint8)


def label_font(size: int) -> ImageFont.ImageFont:
    """Pillow's default scalable font at `size` px (the pack's pictures' text)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:   # Pillow before 10.1 has one small bitmap font only
        return ImageFont.load_default()


def _ticks(count: int, most: int) -> list[int]:
    """Up to `most` evenly spaced indices out of `count`, the last one included."""
    step = max(1, math.ceil(count / most))
    ticks = list(range(0, count, step))
    if ticks[-1] != count - 1 and count - 1 - ticks[-1] >= step / 2:
        ticks.append(count - 1)
    return ticks


def _scaled(profile: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Per cell: the log change scaled to 0..1, whether it was measured, and the scale's ends."""
    rows = [[v if v is not None and math.isfinite(v) else math.nan for v in row] for row in profile["block_rel_l1"]]
    data = np.array(rows, dtype=np.float64) if rows else np.full((1, max(len(profile["blocks"]), 1)), math.nan)
    measured = np.isfinite(data)
    low, high = -3.0, 0.0
    if measured.any():
        logs = np.log10(np.clip(np.where(measured, data, 1.0), 1e-6, None))
        low, high = float(logs[measured].min()), float(logs[measured].max())
        scaled = np.where(measured, (logs - low) / max(high - low, 1e-9), 0.0)
    else:
        scaled = np.zeros_like(data)
    return np.clip(scaled, 0, 1), measured, low, high


def render_heatmap(profile: dict[str, Any]) -> Image.Image:
    scaled, measured, low, high = _scaled(profile)
    pixels = _colour(scaled)
    pixels[~measured] = MISSING
    steps, blocks = pixels.shape[:2]
    grid_height = min(GRID_MAX_HEIGHT, max(steps * 12, 160))
    grid = Image.fromarray(pixels, "RGB").resize((GRID_WIDTH, grid_height), Image.NEAREST)
    canvas = Image.new("RGB", (LEFT + GRID_WIDTH + RIGHT, TOP + grid_height + BOTTOM), BACKGROUND)
    canvas.paste(grid, (LEFT, TOP))
    draw, font, small = ImageDraw.Draw(canvas), label_font(FONT_SIZE), label_font(FONT_SIZE - 4)
    draw.text((LEFT, 12), f"{profile.get('family', '?')}: block output change per step", fill=TEXT, font=font)
    draw.text((8, 12), "step", fill=TEXT, font=small)
    for step in _ticks(steps, 8):
        y = TOP + (step + 0.5) * grid_height / steps
        draw.text((LEFT - 10, y), str(step), fill=TEXT, font=small, anchor="rm")
    for block in _ticks(blocks, 12):
        x = LEFT + (block + 0.5) * GRID_WIDTH / blocks
        draw.text((x, TOP + grid_height + 6), str(block), fill=TEXT, font=small, anchor="mt")
    draw.text((LEFT + GRID_WIDTH // 2, TOP + grid_height + 30), "block", fill=TEXT, font=small, anchor="mt")
    # the colour scale: relative L1 change of a block's output from the previous step
    bar_top, bar_left, bar_width = TOP + grid_height + 62, LEFT + 110, GRID_WIDTH - 220
    bar = _colour(np.linspace(0, 1, bar_width)[None, :].repeat(20, axis=0))
    canvas.paste(Image.fromarray(bar, "RGB"), (bar_left, bar_top))
    draw.text((bar_left - 8, bar_top + 10), f"{10 ** low:.0e}", fill=TEXT, font=small, anchor="rm")
    draw.text((bar_left + bar_width + 8, bar_top + 10), f"{10 ** high:.0e}", fill=TEXT, font=small, anchor="lm")
    draw.text((LEFT + GRID_WIDTH // 2, bar_top + 24), "relative change since the previous step", fill=TEXT, font=small,
              anchor="mt")
    return canvas


def heatmap_tensor(profile: dict[str, Any]) -> torch.Tensor:
    """The heatmap as a ComfyUI IMAGE: float [1, H, W, 3] in 0..1."""
    array = np.asarray(render_heatmap(profile), dtype=np.float32) / 255.0
    return torch.from_numpy(array)[None]
