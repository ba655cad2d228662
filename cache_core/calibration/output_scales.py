"""ERTACache's rescaled step for a calibrated plan's `V` steps: on such a step the sampler gets
the direction d of the last computed step s, and for Euler scaling the step by phi is scaling
that direction, x - sigma * phi * d_s (stand_ins/output_stand_in.py). phi is fitted per (step,
source step) on the uncached runs the calibration samples anyway: the least-squares factor that
takes d_s closest to the step's own direction d_t, phi = <d_t, d_s> / <d_s, d_s>, summed over
the calibration cases. Inner products are taken over a fixed subsample of each direction's
elements (at most `SUBSAMPLE`), kept on the latent's device until the run ends."""
from __future__ import annotations

from typing import Callable

import torch

from ..stand_ins.output_stand_in import direction

SUBSAMPLE = 1 << 18
SCALE_RANGE = (0.0, 4.0)     # a fitted factor outside it is clipped (a schedule's last steps can be tiny)


class DirectionRecorder:
    """A sampler callback for an uncached calibration run: keeps each step's direction (from the
    callback's denoised latent and x, and the run's sigmas), then calls `then`."""

    def __init__(self, sigmas: torch.Tensor, then: Callable[..., None] | None) -> None:
        self.sigmas = sigmas
        self.then = then
        self.directions: list[torch.Tensor] = []

    def __call__(self, step: int, denoised: torch.Tensor, x: torch.Tensor, *rest) -> None:
        if step == len(self.directions):       # a sampler's further evaluations of a step: its first
            d = direction(x, self.sigmas[step], denoised, None).flatten()
            self.directions.append(d[::max(1, d.numel() // SUBSAMPLE)][:SUBSAMPLE].float())
        if self.then is not None:
            self.then(step, denoised, x, *rest)

    def gram(self) -> torch.Tensor:
        """The inner products of every pair of recorded directions (steps x steps)."""
        stacked = torch.stack(self.directions)
        return stacked @ stacked.T


def fitted_factors(recorders: list[DirectionRecorder]) -> list[list[float]]:
    """phi[t][s] for s < t, over every recorder's run (each run's steps the same); 1 where d_s is 0."""
    grams = [r.gram() for r in recorders if r.directions]
    steps = min(g.shape[0] for g in grams)
    total = sum(g[:steps, :steps].double() for g in grams).cpu()
    low, high = SCALE_RANGE
    return [[min(max(float(total[t, s] / total[s, s]), low), high) if s < t and total[s, s] > 0 else 1.0
             for s in range(steps)] for t in range(steps)]


def output_scales(plan: str, factors: list[list[float]]) -> tuple[float, ...]:
    """Per step of `plan` (over the recorded steps): phi of each `V` step from the last computed
    step before it, else 1."""
    scales, source = [], None
    for t, letter in enumerate(plan):
        if letter == "C":
            source = t
        known = letter == "V" and source is not None and t < len(factors) and source < len(factors[t])
        scales.append(factors[t][source] if known else 1.0)
    return tuple(scales)
