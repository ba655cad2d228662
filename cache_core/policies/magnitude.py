"""Magnitude-ratio threshold (the MagCache idea): reuse the whole-stack residual while the error
predicted from the per-step magnitude ratio of that residual stays under a threshold.

The ratio curve r[t] = mean|residual_t| / mean|residual_(t-1)| is a property of the model, not
of the prompt, so it is measured once (Block Profiler) or taken from a published preset. While
reusing, the cached residual is off by the product of the ratios since it was computed; the
policy adds up |1 - product| per skipped step and computes once that sum passes the threshold,
or after `max_skip` reuses in a row.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from .base import CachePolicy, StepAction, StepContext


def _cond_of_pairs(values: list[float]) -> tuple[float, ...]:
    """The MagCache authors publish CFG models' curves as (cond, uncond) pairs per step, which
    differ in the fourth digit; one decision per step here, so use their mean."""
    return tuple((a + b) / 2 for a, b in zip(values[0::2], values[1::2]))


# Published MagCache calibrations (Zehong-Ma/MagCache, ComfyUI-MagCache): name -> (ratio per step,
# starting threshold, max_skip, family). FLUX.1-dev at 28 steps; HunyuanVideo at 50;
# Wan2.1 T2V 1.3B at 50 steps (cond/uncond pairs averaged).
MAGNITUDE_PRESETS: dict[str, tuple[tuple[float, ...], float, int, str]] = {
    "flux": ((1.0, 1.21094, 1.11719, 1.07812, 1.0625, 1.03906, 1.03125, 1.03906, 1.02344, 1.03125, 1.02344,
              0.98047, 1.01562, 1.00781, 1.0, 1.00781, 1.0, 1.00781, 1.0, 1.0, 0.99609, 0.99609, 0.98047,
              0.98828, 0.96484, 0.95703, 0.93359, 0.89062), 0.24, 5, "flux"),
    "hunyuan_video": ((1.0, 1.0754, 1.27807, 1.11596, 1.09504, 1.05188, 1.00844, 1.05779, 1.00657, 1.04142,
                       1.03101, 1.00679, 1.02556, 1.00908, 1.06949, 1.05438, 1.02214, 1.02321, 1.03019, 1.00779,
                       1.03381, 1.01886, 1.01161, 1.02968, 1.00544, 1.02822, 1.00689, 1.02119, 1.0105, 1.01044,
                       1.01572, 1.02972, 1.0094, 1.02368, 1.0226, 0.98965, 1.01588, 1.02146, 1.0018, 1.01687,
                       0.99436, 1.00283, 1.01139, 0.97122, 0.98251, 0.94513, 0.97656, 0.90943, 0.85703, 0.75456),
                      0.24, 6, "hunyuan_video"),
    "wan2.1_t2v_1.3b": (_cond_of_pairs([
        1.0, 1.0, 1.0124, 1.02213, 1.00166, 1.0041, 0.99791, 1.00061, 0.99682, 0.99762, 0.99634, 0.99685, 0.99567,
        0.99586, 0.99416, 0.99422, 0.99578, 0.99575, 0.9957, 0.99563, 0.99511, 0.99506, 0.99535, 0.99531, 0.99552,
        0.99549, 0.99541, 0.99539, 0.9954, 0.99536, 0.99489, 0.99485, 0.99518, 0.99514, 0.99484, 0.99478, 0.99481,
        0.99479, 0.99415, 0.99413, 0.99419, 0.99416, 0.99396, 0.99393, 0.99388, 0.99386, 0.99349, 0.99349, 0.99309,
        0.99304, 0.9927, 0.9927, 0.99228, 0.99226, 0.99171, 0.9917, 0.99137, 0.99135, 0.99068, 0.99063, 0.99005,
        0.99003, 0.98944, 0.98942, 0.98849, 0.98849, 0.98758, 0.98757, 0.98644, 0.98643, 0.98504, 0.98503, 0.9836,
        0.98359, 0.98202, 0.98201, 0.97977, 0.97978, 0.97717, 0.97718, 0.9741, 0.97411, 0.97003, 0.97002, 0.96538,
        0.96541, 0.9593, 0.95933, 0.95086, 0.95089, 0.94013, 0.94019, 0.92402, 0.92414, 0.90241, 0.9026, 0.86821,
        0.86868, 0.81838, 0.81939]), 0.12, 2, "wan"),
}

DEFAULT_MAGNITUDE_PRESET = {"flux": "flux", "hunyuan_video": "hunyuan_video", "wan": "wan2.1_t2v_1.3b"}


def resample_ratios(ratios: tuple[float, ...], steps: int) -> tuple[float, ...]:
    """The curve for a run of `steps` steps. Interpolates the cumulative log magnitude over the
    normalised trajectory position, so the total change across the run is kept: on twice the
    steps each ratio is about the square root of the calibrated one, not a copy of it."""
    if steps <= 0:
        return ()
    if len(ratios) == steps:
        return tuple(ratios)
    cumulative = [0.0]
    for r in ratios[1:]:
        cumulative.append(cumulative[-1] + math.log(max(r, 1e-6)))
    source = [i / (len(ratios) - 1) for i in range(len(ratios))] if len(ratios) > 1 else [0.0]

    def log_magnitude_at(position: float) -> float:
        if len(source) == 1:
            return 0.0
        i = min(max(bisect.bisect_right(source, position) - 1, 0), len(source) - 2)
        frac = (position - source[i]) / (source[i + 1] - source[i])
        return cumulative[i] + frac * (cumulative[i + 1] - cumulative[i])

    target = [log_magnitude_at(i / (steps - 1)) if steps > 1 else 0.0 for i in range(steps)]
    return (1.0,) + tuple(math.exp(b - a) for a, b in zip(target, target[1:]))


@dataclass
class _MagnitudeMemo:
    ratios: tuple[float, ...] = ()
    accumulated_ratio: float = 1.0
    accumulated_error: float = 0.0


@dataclass(frozen=True)
class MagnitudeRatioThreshold(CachePolicy):
    threshold: float = 0.12
    ratios: tuple[float, ...] = field(default=MAGNITUDE_PRESETS["flux"][0])
    max_skip: int = 3
    retention_ratio: float = 0.2   # fraction of the first steps always computed

    name = "MagnitudeRatio"
    skip_action = StepAction.REUSE

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 2.0:
            raise ValueError(f"threshold must be between 0 and 2 (got {self.threshold}); start at 0.12")
        if self.max_skip < 0:
            raise ValueError(f"max_skip must be 0 or more (got {self.max_skip})")
        if not 0.0 <= self.retention_ratio < 1.0:
            raise ValueError(f"retention_ratio must be in [0, 1) (got {self.retention_ratio}); 0.2 keeps the first "
                             "fifth of the steps computed")
        if len(self.ratios) < 2 or not all(math.isfinite(r) and r > 0 for r in self.ratios):
            raise ValueError("ratios must hold two or more positive numbers, one per calibrated step")

    def new_memo(self) -> _MagnitudeMemo:
        return _MagnitudeMemo()

    def decide(self, ctx: StepContext, memo: _MagnitudeMemo) -> StepAction:
        if len(memo.ratios) != ctx.total_steps:
            memo.ratios = resample_ratios(self.ratios, ctx.total_steps)
        if ctx.step < int(ctx.total_steps * self.retention_ratio) or ctx.step >= len(memo.ratios):
            return StepAction.COMPUTE
        if ctx.consecutive_skips >= self.max_skip:
            return StepAction.COMPUTE
        memo.accumulated_ratio *= memo.ratios[ctx.step]
        memo.accumulated_error += abs(1.0 - memo.accumulated_ratio)
        if memo.accumulated_error < self.threshold:
            return self.skip_action
        return StepAction.COMPUTE

    def observe_compute(self, ctx: StepContext, memo: _MagnitudeMemo) -> None:
        memo.accumulated_ratio = 1.0
        memo.accumulated_error = 0.0

    def describe(self) -> str:
        return (f"MagnitudeRatio threshold={self.threshold} max_skip={self.max_skip} "
                f"retention={self.retention_ratio} curve={len(self.ratios)} steps")
