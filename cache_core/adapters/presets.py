"""Published calibrations an adapter can declare for its family: the TeaCache authors' rescale
polynomials and the MagCache authors' magnitude-ratio curves, with the settings they recommend.

Adapters hold the numbers (facts from the reference packs); this module only says what a
preset is, so that the policies and nodes can use any family's presets without naming it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TeaCachePreset:
    """A rescale polynomial (highest power first, as numpy.polyval) and its recommended threshold."""

    name: str
    coefficients: tuple[float, ...]
    threshold: float


@dataclass(frozen=True)
class MagnitudePreset:
    """A per-step magnitude-ratio curve and the threshold / max_skip it was published with."""

    name: str
    ratios: tuple[float, ...]
    threshold: float
    max_skip: int


def mean_of_cond_uncond_pairs(values: list[float]) -> tuple[float, ...]:
    """The MagCache authors publish CFG models' curves as (cond, uncond) pairs per step, which
    differ in the fourth digit; the pack makes one decision per step, so it uses their mean."""
    return tuple((a + b) / 2 for a, b in zip(values[0::2], values[1::2]))
