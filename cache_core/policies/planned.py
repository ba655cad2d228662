"""A calibrated plan: which steps are computed and, for each skipped step, what stands in (the
blocks' residual reused or forecast by a Taylor series of order 1 or 2, or the whole model's
output reused), fixed before the run by `cache_core/plan_search.py` from a profile of the user's
own model and step count.

A plan is a string of one letter per step of the whole schedule: `C` compute, `R` reuse, `1` / `2`
a Taylor forecast of that order, `V` the model's output reused (output_cache.py), e.g.
"CCCR1C1R2CVVC"; steps count in the whole schedule, so the same plan serves each part of a
split run."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..containment import GraphError
from ..predictors import PlannedTaylorResidual, ResidualPredictor
from .base import CachePolicy, StepAction, StepContext

PLAN_LETTERS = {"C": 0, "R": 0, "1": 1, "2": 2, "V": 0}   # letter -> Taylor order of the blocks' stand-in


class PlanStepsError(GraphError):
    """A plan calibrated for one step count, sampled at another."""


@dataclass(frozen=True)
class PlannedSchedule(CachePolicy):
    plan: str = "C"

    name = "Calibrated"
    skip_action = StepAction.FORECAST

    def __post_init__(self) -> None:
        unknown = sorted(set(self.plan) - set(PLAN_LETTERS))
        if not self.plan or unknown:
            raise ValueError(f"a plan is one letter per step out of C, R, 1, 2, V (got {self.plan!r})")
        if self.plan[0] != "C":
            raise ValueError(f"a plan computes its first step (got {self.plan!r})")

    @property
    def computes(self) -> int:
        return self.plan.count("C")

    @property
    def reuses_outputs(self) -> bool:
        return "V" in self.plan

    def check_steps(self, total_steps: int) -> None:
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
        return f"Calibrated plan={self.plan} ({len(self.plan)}/{self.computes} = {len(self.plan) / self.computes:.2f}x)"
