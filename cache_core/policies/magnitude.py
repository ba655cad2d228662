"""Magnitude-ratio threshold (the MagCache idea): reuse the whole-stack residual while the error
predicted from the per-step magnitude ratio of that residual stays under a threshold.

The ratio curve r[t] = mean|residual_t| / mean|residual_(t-1)| is a property of the model, not
of the prompt, so it is measured once (Block Profiler) or taken from a published preset (each
adapter declares its family's). While
reusing, the cached residual is off by the product of the ratios since it was computed; the
policy adds up |1 - product| per skipped step and computes once that sum passes the threshold,
or after `max_skip` reuses in a row.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from .base import CachePolicy, SchedulePart, StepAction, StepContext


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
class _MagnitudeMemory:
    ratios: tuple[float, ...] = ()
    accumulated_ratio: float = 1.0
    accumulated_error: float = 0.0


@dataclass(frozen=True)
class MagnitudeRatioThreshold(CachePolicy):
    ratios: tuple[float, ...]     # per calibrated step; resampled to the run's step count
    threshold: float = 0.12
    max_skip: int = 3
    retention_ratio: float = 0.2   # fraction of the first steps always computed
    # a profile of part of a schedule: `ratios` are its steps' own, never resampled, and a run
    # must lie inside that part (None: a curve of a whole schedule)
    profiled_part: SchedulePart | None = None

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
        part = self.profiled_part
        if part is not None and len(self.ratios) != part.steps:
            raise ValueError(f"a curve of {part.describe()} holds {part.steps} ratios (got {len(self.ratios)})")

    def check_steps(self, total_steps: int, first_step: int = 0, run_steps: int | None = None) -> None:
        if self.profiled_part is not None:
            self.profiled_part.check_run("the profile's magnitude-ratio curve", total_steps, first_step, run_steps)

    def new_run_memory(self) -> _MagnitudeMemory:
        return _MagnitudeMemory()

    def decide(self, ctx: StepContext, memory: _MagnitudeMemory) -> StepAction:
        if len(memory.ratios) != ctx.total_steps:
            memory.ratios = self._curve_for(ctx.total_steps)
        if ctx.step < int(ctx.total_steps * self.retention_ratio) or ctx.step >= len(memory.ratios):
            return StepAction.COMPUTE
        if ctx.consecutive_skips >= self.max_skip:
            return StepAction.COMPUTE
        memory.accumulated_ratio *= memory.ratios[ctx.step]
        memory.accumulated_error += abs(1.0 - memory.accumulated_ratio)
        if memory.accumulated_error < self.threshold:
            return self.skip_action
        return StepAction.COMPUTE

    def _curve_for(self, total_steps: int) -> tuple[float, ...]:
        """One ratio per step of the whole schedule (a part's curve where it was measured, steps
        outside it, which `check_steps` keeps a run away from, at 1)."""
        part = self.profiled_part
        if part is None:
            return resample_ratios(self.ratios, total_steps)
        return (1.0,) * part.first + tuple(self.ratios) + (1.0,) * (total_steps - part.end)

    def observe_compute(self, ctx: StepContext, memory: _MagnitudeMemory) -> None:
        memory.accumulated_ratio = 1.0
        memory.accumulated_error = 0.0

    def describe(self) -> str:
        return (f"MagnitudeRatio threshold={self.threshold} max_skip={self.max_skip} "
                f"retention={self.retention_ratio} curve={len(self.ratios)} steps"
                + (f" of {self.profiled_part.describe()}" if self.profiled_part else ""))
