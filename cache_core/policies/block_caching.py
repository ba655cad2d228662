"""Block Caching ("Cache Me if You Can", Wimbauer et al.): each block is recomputed on its own,
when its accumulated change since it was last computed reaches a threshold; the others stand in
with their own cached residual. The per-step change of every block comes from a Block Profiler
profile of the model (`block_rel_l1`), resampled to the run's steps.

On a step where some blocks are stood in for, `decide` answers REUSE and `block_letters` says,
block by block, which are computed (`C`) and which reuse their residual (`R`)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .base import CachePolicy, SchedulePart, StepAction, StepContext

# An unmeasured change (a null in the profile after its first step) counts as this much: the
# block is computed at that step.
UNMEASURED = 1e6


def resample_block_changes(changes: tuple[tuple[float, ...], ...], steps: int) -> list[list[float]]:
    """Per run step and block, the block's change from the step before. The profile's changes
    are added up over the normalised trajectory position and that sum interpolated, so that on
    twice the steps each change is about half the profiled one; step 0 has none."""
    if steps <= 0:
        return []
    rows = np.array([[UNMEASURED if (v is None or not math.isfinite(v)) else max(v, 0.0) for v in row]
                     for row in changes], dtype=np.float64)
    rows[0] = 0.0   # the first profiled step has no step before it
    cumulative = np.cumsum(rows, axis=0)
    source = np.linspace(0.0, 1.0, len(rows)) if len(rows) > 1 else np.zeros(1)
    target = np.linspace(0.0, 1.0, steps) if steps > 1 else np.zeros(1)
    at = np.stack([np.interp(target, source, cumulative[:, b]) for b in range(rows.shape[1])], axis=1)
    out = np.diff(at, axis=0, prepend=at[:1])
    return out.tolist()


@dataclass
class _BlockMemory:
    curve: list[list[float]] = field(default_factory=list)
    accumulated: list[float] = field(default_factory=list)
    skips: list[int] = field(default_factory=list)
    letters: str = ""


@dataclass(frozen=True)
class ProfiledBlockSchedule(CachePolicy):
    changes: tuple[tuple[float, ...], ...]   # per profiled step, per block: relative L1 change
    threshold: float = 0.15
    max_skip: int = 3
    # a profile of part of a schedule: its rows are that part's steps, never resampled, and a run
    # must lie inside that part (None: a whole schedule's profile)
    profiled_part: SchedulePart | None = None

    name = "BlockCache"
    skip_action = StepAction.REUSE
    decides_blocks = True

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold) or not 0.0 <= self.threshold <= 10.0:
            raise ValueError(f"threshold must be between 0 and 10 (got {self.threshold}); start at 0.15")
        if self.max_skip < 0:
            raise ValueError(f"max_skip must be 0 or more (got {self.max_skip})")
        widths = {len(row) for row in self.changes}
        if len(self.changes) < 2 or len(widths) != 1 or widths == {0}:
            raise ValueError("changes must hold one row per profiled step (two or more), one number per block")
        part = self.profiled_part
        if part is not None and len(self.changes) != part.steps:
            raise ValueError(f"a profile of {part.describe()} holds {part.steps} rows (got {len(self.changes)})")

    @property
    def blocks(self) -> int:
        return len(self.changes[0])

    def check_steps(self, total_steps: int, first_step: int = 0, run_steps: int | None = None) -> None:
        if self.profiled_part is not None:
            self.profiled_part.check_run("the profile's block changes", total_steps, first_step, run_steps)

    def new_run_memory(self) -> _BlockMemory:
        return _BlockMemory(accumulated=[0.0] * self.blocks, skips=[0] * self.blocks)

    def decide(self, ctx: StepContext, memory: _BlockMemory) -> StepAction:
        if len(memory.curve) != ctx.total_steps:
            memory.curve = self._curve_for(ctx.total_steps)
        if ctx.step >= len(memory.curve):
            return StepAction.COMPUTE
        letters = []
        for block, change in enumerate(memory.curve[ctx.step]):
            accumulated = memory.accumulated[block] + change
            if accumulated >= self.threshold or memory.skips[block] >= self.max_skip:
                letters.append("C")
                memory.accumulated[block], memory.skips[block] = 0.0, 0
            else:
                letters.append("R")
                memory.accumulated[block], memory.skips[block] = accumulated, memory.skips[block] + 1
        memory.letters = "".join(letters)
        return StepAction.COMPUTE if "R" not in memory.letters else StepAction.REUSE

    def block_letters(self, memory: _BlockMemory) -> str:
        """This step's letter per block: `C` computed, `R` its own residual reused."""
        return memory.letters

    def observe_compute(self, ctx: StepContext, memory: _BlockMemory) -> None:
        """Every block was computed at this step (whatever was decided for it)."""
        memory.accumulated = [0.0] * self.blocks
        memory.skips = [0] * self.blocks
        memory.letters = "C" * self.blocks

    def _curve_for(self, total_steps: int) -> list[list[float]]:
        part = self.profiled_part
        if part is None:
            return resample_block_changes(self.changes, total_steps)
        rows = [list(row) for row in resample_block_changes(self.changes, len(self.changes))]
        untouched = [[0.0] * self.blocks]
        return untouched * part.first + rows + untouched * (total_steps - part.end)

    def describe(self) -> str:
        where = f", {self.profiled_part.describe()}" if self.profiled_part else ""
        return f"BlockCache threshold={self.threshold} max_skip={self.max_skip} ({self.blocks} blocks{where})"
