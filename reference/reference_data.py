"""The procedural world the reference models learn: coloured shapes on coloured backgrounds
(images), and the same shapes moving (videos), each described by a short "prompt" of tokens.

Everything is derived from fixed seeds, so training, tests and the benchmark agree without
shipping data: the token embeddings, and the fixed orthonormal projection between pixels and
the 16-channel latent the models work in (2x2 pixels x RGB = 12 values -> 16 channels). The
projection is exactly invertible on its range, so it is also the tiny decoder the benchmark
uses for image-space PSNR.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

COLOURS = {
    "red": (0.9, 0.1, 0.1), "green": (0.1, 0.8, 0.2), "blue": (0.15, 0.25, 0.95), "yellow": (0.95, 0.9, 0.1),
    "white": (0.95, 0.95, 0.95), "black": (0.05, 0.05, 0.05), "purple": (0.6, 0.2, 0.8), "orange": (1.0, 0.55, 0.1),
}
SHAPES = ("circle", "square", "triangle")
MOTIONS = ("left", "right", "up", "down")
VOCAB = [*(f"{c}" for c in COLOURS), *SHAPES, *(f"bg_{c}" for c in COLOURS), *MOTIONS, "pad"]
TOKEN_DIM = 64
PROMPT_TOKENS = 8
LATENT_CHANNELS = 16
PIXELS = 32          # images and video frames are 32x32 pixels -> 16x16 latents
VIDEO_FRAMES = 5
WORLD_SEED = 20261122


@dataclass(frozen=True)
class Prompt:
    colour: str
    shape: str
    background: str
    motion: str | None = None

    def tokens(self) -> list[str]:
        words = [self.colour, self.shape, f"bg_{self.background}"] + ([self.motion] if self.motion else [])
        return words + ["pad"] * (PROMPT_TOKENS - len(words))

    def text(self) -> str:
        moving = f" moving {self.motion}" if self.motion else ""
        return f"a {self.colour} {self.shape}{moving} on {self.background}"


def _world_generator() -> torch.Generator:
    return torch.Generator().manual_seed(WORLD_SEED)


def token_table() -> torch.Tensor:
    return torch.randn(len(VOCAB), TOKEN_DIM, generator=_world_generator())


def projection() -> torch.Tensor:
    """[16, 12] with orthonormal columns: latent = P @ patch, patch = P.T @ latent."""
    g = _world_generator()
    torch.randn(len(VOCAB), TOKEN_DIM, generator=g)  # keep the table's draw first
    q, _ = torch.linalg.qr(torch.randn(LATENT_CHANNELS, 12, generator=g))
    return q


def embed(prompts: list[Prompt], table: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Context [B, 8, 64] and pooled vector [B, 64] for a batch of prompts."""
    table = token_table() if table is None else table
    ids = torch.tensor([[VOCAB.index(t) for t in p.tokens()] for p in prompts])
    context = table[ids]
    return context, context[:, :4].mean(dim=1)


def random_prompt(g: torch.Generator, video: bool) -> Prompt:
    names = list(COLOURS)
    colour = names[int(torch.randint(len(names), (1,), generator=g))]
    background = colour
    while background == colour:
        background = names[int(torch.randint(len(names), (1,), generator=g))]
    shape = SHAPES[int(torch.randint(len(SHAPES), (1,), generator=g))]
    motion = MOTIONS[int(torch.randint(len(MOTIONS), (1,), generator=g))] if video else None
    return Prompt(colour, shape, background, motion)


def _draw(prompt: Prompt, cx: float, cy: float, size: float) -> torch.Tensor:
    """One RGB frame [3, 32, 32] in -1..1."""
    ys, xs = torch.meshgrid(torch.arange(PIXELS) + 0.5, torch.arange(PIXELS) + 0.5, indexing="ij")
    dx, dy = xs - cx, ys - cy
    if prompt.shape == "circle":
        mask = dx**2 + dy**2 <= size**2
    elif prompt.shape == "square":
        mask = (dx.abs() <= size) & (dy.abs() <= size)
    else:
        mask = (dy <= size) & (dy >= -size) & (dx.abs() <= (dy + size) / 2)
    frame = torch.tensor(COLOURS[prompt.background]).view(3, 1, 1).expand(3, PIXELS, PIXELS).clone()
    frame[:, mask] = torch.tensor(COLOURS[prompt.colour]).view(3, 1)
    return frame * 2 - 1


def render(prompt: Prompt, g: torch.Generator) -> torch.Tensor:
    """Pixels [3, H, W] for an image prompt, [3, T, H, W] for a video prompt."""
    size = 5 + 5 * float(torch.rand(1, generator=g))
    cx, cy = (8 + 16 * torch.rand(2, generator=g)).tolist()
    if prompt.motion is None:
        return _draw(prompt, cx, cy, size)
    step = 2.0
    vx, vy = {"left": (-step, 0), "right": (step, 0), "up": (0, -step), "down": (0, step)}[prompt.motion]
    return torch.stack([_draw(prompt, cx + vx * t, cy + vy * t, size) for t in range(VIDEO_FRAMES)], dim=1)


def _per_frame(x: torch.Tensor, fn) -> torch.Tensor:
    """Apply an image function [N, C, H, W] -> [N, C', H', W'] to an image batch or, frame by
    frame, to a video batch [B, C, T, H, W]."""
    if x.ndim == 4:
        return fn(x)
    b, c, t, h, w = x.shape
    out = fn(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
    return out.reshape(b, t, *out.shape[1:]).permute(0, 2, 1, 3, 4)


def encode(pixels: torch.Tensor, proj: torch.Tensor | None = None) -> torch.Tensor:
    """Pixels [B, 3, (T,) H, W] -> latents [B, 16, (T,) H/2, W/2]."""
    proj = projection() if proj is None else proj
    return _per_frame(pixels, lambda x: torch.einsum("lp,nphw->nlhw", proj.to(x), F.pixel_unshuffle(x, 2)))


def decode(latents: torch.Tensor, proj: torch.Tensor | None = None) -> torch.Tensor:
    """Latents [B, 16, (T,) h, w] -> pixels [B, 3, (T,) 2h, 2w]."""
    proj = projection() if proj is None else proj
    return _per_frame(latents, lambda x: F.pixel_shuffle(torch.einsum("lp,nlhw->nphw", proj.to(x), x), 2))


def batch(size: int, video: bool, g: torch.Generator) -> tuple[torch.Tensor, list[Prompt]]:
    """Model-space latents x0 and their prompts."""
    prompts = [random_prompt(g, video) for _ in range(size)]
    pixels = torch.stack([render(p, g) for p in prompts])
    return encode(pixels), prompts
