"""TaylorSeer: compute every `interval` steps after `warmup_steps`, and forecast the features
in between by a Taylor series of finite-difference derivatives (see predictors.TaylorResidual)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import CachePolicy, Granularity, StepAction, StepContext


@dataclass(frozen=True)
class TaylorForecastSchedule(CachePolicy):
    interval: int = 4
    warmup_steps: int = 3
    order: int = 2
    granularity: Granularity = Granularity.BLOCK

    name = "TaylorSeer"
    skip_action = StepAction.FORECAST

    def __post_init__(self) -> None:
        if self.interval < 1:
            raise ValueError(f"interval must be at least 1 (got {self.interval})")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be 0 or more (got {self.warmup_steps})")
        if not 0 <= self.order <= 3:
            raise ValueError(f"order must be 0..3 (got {self.order}); 0 is plain reuse, 2 is the usual start")

    def decide(self, ctx: StepContext, memo: Any) -> StepAction:
        if ctx.step < self.warmup_steps or (ctx.step - self.warmup_steps) % self.interval == 0:
            return StepAction.COMPUTE
        return self.skip_action

    def describe(self) -> str:
        return f"TaylorSeer interval={self.interval} warmup={self.warmup_steps} order={self.order} granularity={self.granularity.value}"
