"""A calibrated plan: which steps are computed and, for each skipped step, what stands in (the
blocks' residual reused or forecast by a Taylor series of order 1 or 2, or the whole model's
output reused), fixed before the run by `cache_core/plan_search.py` from a profile of the user's
own model and step count.

A plan is a string of one letter per step of the whole schedule: `C` compute, `R` reuse, `1` / `2`
a Taylor forecast of that order, `V` the model's output reused (output_cache.py), e.g.
"CCCR1C1R2CVVC"; steps count in the whole schedule, so the same plan serves each part of a
split run. A per-block plan also keeps some blocks (`kept_blocks`, the first and last ones)
computed on its skipped steps; the other blocks then stand in with their own residual."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..predictors import PlannedTaylorResidual, ResidualPredictor
from .base import CachePolicy, ProfiledPart, StepAction, StepContext, StepsMismatchError

PLAN_LETTERS = {"C": 0, "R": 0, "1": 1, "2": 2, "V": 0}   # letter -> Taylor order of the blocks' stand-in


class PlanStepsError(StepsMismatchError):
    """A plan calibrated for one step count, sampled at another."""


@dataclass(frozen=True)
class PlannedSchedule(CachePolicy):
    plan: str = "C"
    # the steps the plan was calibrated on, when a part of the schedule (None: the whole)
    calibrated_part: ProfiledPart | None = None
    # a per-block plan: these blocks (of `block_count`) are computed on its skipped steps too,
    # the others stand in with their own residual
    kept_blocks: tuple[int, ...] = ()
    block_count: int = 0

    name = "Calibrated"
    skip_action = StepAction.FORECAST

    def __post_init__(self) -> None:
        unknown = sorted(set(self.plan) - set(PLAN_LETTERS))
        if not self.plan or unknown:
            raise ValueError(f"a plan is one letter per step out of C, R, 1, 2, V (got {self.plan!r})")
        if self.plan[0] != "C":
            raise ValueError(f"a plan computes its first step (got {self.plan!r})")
        if self.kept_blocks and not all(0 <= b < self.block_count for b in self.kept_blocks):
            raise ValueError(f"kept blocks {list(self.kept_blocks)} are not blocks of a model of {self.block_count}")

    @property
    def decides_blocks(self) -> bool:
        return bool(self.kept_blocks)

    def block_letters(self, memory: Any) -> str:
        return "".join("C" if b in self.kept_blocks else "R" for b in range(self.block_count))

    def stand_in_spans(self, block_count: int) -> tuple[tuple[int, int], ...]:
        """The runs of blocks between the kept ones: each stands in as one (the first and last
        kept blocks leave one span, whose single residual replaces one per block)."""
        spans, start = [], None
        for block in range(block_count + 1):
            stood_in = block < block_count and block not in self.kept_blocks
            if stood_in and start is None:
                start = block
            elif not stood_in and start is not None:
                spans.append((start, block))
                start = None
        return tuple(spans)

    @property
    def calibrated_steps(self) -> int:
        """The steps it was calibrated on: its part's, or all of them."""
        return self.calibrated_part.steps if self.calibrated_part else len(self.plan)

    @property
    def computes(self) -> int:
        """Computed steps of the steps it was calibrated on."""
        part = self.calibrated_part
        return self.plan[part.first:part.end].count("C") if part else self.plan.count("C")

    @property
    def speedup(self) -> float:
        """Block evaluations over blocks computed on the steps it was calibrated on."""
        steps = self.calibrated_steps
        if not self.kept_blocks:
            return steps / self.computes
        computed = self.computes * self.block_count + len(self.kept_blocks) * (steps - self.computes)
        return steps * self.block_count / computed

    @property
    def reuses_outputs(self) -> bool:
        return "V" in self.plan

    def check_steps(self, total_steps: int, first_step: int = 0, run_steps: int | None = None) -> None:
        if self.calibrated_part is not None:
            self.calibrated_part.check_run("the calibrated plan", total_steps, first_step, run_steps)
        if total_steps != len(self.plan):
            raise PlanStepsError(
                f"DiT Cache: the calibrated plan is for {len(self.plan)} steps, but this sampler runs {total_steps}; "
                f"set the sampler to {len(self.plan)} steps, or calibrate at {total_steps} steps (Block Profiler with "
                "calibrate_speedups, then Load Cache Profile)")

    def decide(self, ctx: StepContext, memory: Any) -> StepAction:
        letter = self.plan[ctx.step] if ctx.step < len(self.plan) else "C"
        if letter == "C":
            return StepAction.COMPUTE
        if letter == "V":
            return StepAction.REUSE_OUTPUT
        return StepAction.REUSE if letter == "R" else StepAction.FORECAST

    def new_predictor(self, cache_device: torch.device | None) -> ResidualPredictor:
        orders = {step: PLAN_LETTERS[letter] for step, letter in enumerate(self.plan) if letter not in "CV"}
        return PlannedTaylorResidual(cache_device, orders)

    def describe(self) -> str:
        where = f", {self.calibrated_part.describe()}" if self.calibrated_part else ""
        if self.kept_blocks:
            where += f", blocks {', '.join(map(str, self.kept_blocks))} computed on every step"
        return f"Calibrated plan={self.plan} ({self.computes} of {self.calibrated_steps} steps computed, {self.speedup:.2f}x{where})"
