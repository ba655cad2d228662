"""What a decoded image of the procedural world shows, read back as a caption: background colour,
shape colour and shape, or "unrecognisable".

Why: the reference models are small and do not draw every prompt well, and `make demo`'s picture
puts a caption above each column. This reader lets the demo (and a test) check that the uncached
reference really draws what the caption says, so the picture cannot silently lie after a retrain,
and lets `scripts/pick_demo_prompts.py` count honestly how many prompts the reference draws.

The rule, in the world's own terms (`reference_data._draw`): the background is the palette colour
nearest the median of the border pixels; the shape is the pixels far from that background; its
colour is the palette colour nearest their median; its outline is the shape `_draw` would paint,
with the template's centroid on the shape's centroid and the size that overlaps it best. The image
is read as the best-fitting shape only if the shape is not tiny, its overlap (IoU) is high and
clearly above the other shapes' (a circle and a square of one size overlap by 0.8, so a rounded
square or a square-ish blob is neither); stray blobs, ragged outlines and a template's part
beyond the image's edge lower the overlap, so a fragment or a blob cut by the edge reads as
unrecognisable. Where the palette has no colour near the background or the shape, there is no
caption either. It errs towards no caption: of 300 images `render` draws, it reads 299 as their
prompts and one (a size-10 circle mostly cut off in a corner) as unrecognisable.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

import reference_data as rd

MIN_IOU = 0.7              # below this best overlap, no shape is recognised
MIN_MARGIN = 0.05          # ... nor where another shape overlaps almost as well (a rounded square)
MIN_PIXELS = 25            # half the smallest shape the world draws (a size-5 triangle, ~50 pixels)
MAX_COLOUR_DISTANCE = 0.3  # RGB (0..1) distance beyond which a median matches no palette colour
FOREGROUND_DISTANCE = 0.2  # a pixel this far from the background colour belongs to the shape
SIZES = torch.arange(3.0, 12.01, 0.25)  # the world draws sizes 5 to 10; a little slack either way

_PALETTE = torch.tensor(list(rd.COLOURS.values()))
_NAMES = list(rd.COLOURS)


@dataclass(frozen=True)
class Reading:
    """What an image shows; a field is None where it cannot be read."""
    background: str | None
    colour: str | None
    shape: str | None
    fits: dict[str, float] = field(default_factory=dict)  # each shape's best overlap (IoU) with the foreground

    @property
    def iou(self) -> float:
        return max(self.fits.values(), default=0.0)

    def caption(self) -> str:
        """"red circle on blue", or what could be read and why no caption."""
        if self.shape is None or self.colour is None or self.background is None:
            fit = ", ".join(f"{shape} {iou:.2f}" for shape, iou in sorted(self.fits.items(), key=lambda f: -f[1]))
            return (f"unrecognisable (background {self.background or '?'}, shape colour {self.colour or '?'}, "
                    f"shape overlap {fit or 'none'})")
        return described(rd.Prompt(self.colour, self.shape, self.background))

    def shows(self, prompt: rd.Prompt) -> bool:
        return (self.colour, self.shape, self.background) == (prompt.colour, prompt.shape, prompt.background)


def described(prompt: rd.Prompt) -> str:
    """A prompt as a caption reads: "red circle on blue"."""
    return f"{prompt.colour} {prompt.shape} on {prompt.background}"


def nearest_colour(rgb: torch.Tensor) -> str | None:
    """The palette colour nearest an RGB triple in 0..1, or None if none is near."""
    distances = (_PALETTE - rgb).norm(dim=1)
    best = int(distances.argmin())
    return _NAMES[best] if float(distances[best]) <= MAX_COLOUR_DISTANCE else None


def shape_masks(shape: str, cx: float, cy: float, sizes: torch.Tensor) -> torch.Tensor:
    """[len(sizes), 32, 32] masks of `shape` as `_draw` paints it, its centroid at (cx, cy)."""
    masks = []
    for size in sizes.tolist():
        # _draw's triangle has its apex up and its area's centroid a third of `size` below its centre
        centre_y = cy - size / 3 if shape == "triangle" else cy
        image = rd._draw(rd.Prompt("white", shape, "black"), cx, centre_y, size)
        masks.append(image[0] > 0)
    return torch.stack(masks)


def recognise(image: torch.Tensor) -> Reading:
    """Read a decoded image [3, 32, 32] in -1..1."""
    rgb = ((image.detach().float().cpu() + 1) / 2).clamp(0, 1)
    border = torch.cat([rgb[:, 0], rgb[:, -1], rgb[:, 1:-1, 0], rgb[:, 1:-1, -1]], dim=1)
    background_rgb = border.median(dim=1).values
    background = nearest_colour(background_rgb)
    if background is None:
        return Reading(None, None, None)
    mask = (rgb - _PALETTE[_NAMES.index(background)].view(3, 1, 1)).norm(dim=0) > FOREGROUND_DISTANCE
    if int(mask.sum()) < MIN_PIXELS:
        return Reading(background, None, None)
    colour = nearest_colour(rgb[:, mask].median(dim=1).values)
    ys, xs = mask.nonzero(as_tuple=True)
    cx, cy = float(xs.float().mean()) + 0.5, float(ys.float().mean()) + 0.5
    fits = {}
    for shape in rd.SHAPES:
        templates = shape_masks(shape, cx, cy, SIZES)
        # a template running off the image counts its hidden part as missed: a blob cut by the edge
        # is no shape (the same template drawn whole, moved by whole pixels to the middle, sizes it)
        whole = shape_masks(shape, rd.PIXELS / 2 + cx % 1, rd.PIXELS / 2 + cy % 1, SIZES).sum(dim=(1, 2))
        hidden = (whole - templates.sum(dim=(1, 2))).clamp(min=0)
        union = (templates | mask).sum(dim=(1, 2)) + hidden
        fits[shape] = float(((templates & mask).sum(dim=(1, 2)) / union).max())
    best, runner_up = sorted(fits, key=fits.get, reverse=True)[:2]
    told_apart = fits[best] >= MIN_IOU and fits[best] - fits[runner_up] >= MIN_MARGIN
    return Reading(background, colour, best if told_apart else None, fits)
