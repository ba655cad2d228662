"""TaylorSeer: compute every `interval` steps after `warmup_steps`, and forecast the features
in between by a Taylor series of finite-difference derivatives (see predictors.TaylorResidual).
The derivatives are linear in the residuals, so forecasting each block's residual and adding them
up equals forecasting their sum: the engine forecasts the whole stack's residual.

With `guard_tolerance` > 0 a forecast step is checked before it is trusted (forecast_guard.py):
the first block is computed for real, the Taylor terms of its forecast are scaled to fit it and
the whole stack is forecast at that scale; when the first block's fitted forecast is still off by
more than the tolerance, the step is computed in full (confidence-gated forecasting)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..stand_ins.forecast_guard import ForecastGuard
from ..stand_ins.predictors import FoCaResidual, ResidualPredictor, TaylorResidual
from .base import CachePolicy, StepAction, StepContext


FORECASTERS = ("taylor", "foca")


@dataclass(frozen=True)
class TaylorForecastSchedule(CachePolicy):
    interval: int = 4
    warmup_steps: int = 3
    order: int = 1
    guard_tolerance: float = 0.0
    forecaster: str = "taylor"     # "foca": forecast then calibrate (stand_ins/predictors.FoCaResidual)

    name = "TaylorSeer"
    skip_action = StepAction.FORECAST

    def __post_init__(self) -> None:
        if self.interval < 1:
            raise ValueError(f"interval must be at least 1 (got {self.interval})")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be 0 or more (got {self.warmup_steps})")
        if not 0 <= self.order <= 3:
            raise ValueError(f"order must be 0..3 (got {self.order}); 0 is plain reuse, 2 is the usual start")
        if self.forecaster not in FORECASTERS:
            raise ValueError(f"forecaster must be one of {', '.join(FORECASTERS)} (got {self.forecaster!r})")
        if not 0.0 <= self.guard_tolerance <= 10.0:
            raise ValueError(f"guard_tolerance must be between 0 (off) and 10 (got {self.guard_tolerance})")

    def decide(self, ctx: StepContext, memory: Any) -> StepAction:
        # Counted from the last full compute, not from step 0, so that a guard's fallback starts
        # a new run of forecasts; without fallbacks this is every `interval` steps after warm-up.
        if ctx.step <= self.warmup_steps or ctx.steps_since_compute >= self.interval:
            return StepAction.COMPUTE
        return self.skip_action

    def new_predictor(self, cache_device: torch.device | None) -> ResidualPredictor:
        if self.forecaster == "foca":
            return FoCaResidual(cache_device)
        return TaylorResidual(cache_device, self.order)

    def guard(self) -> ForecastGuard | None:
        return ForecastGuard(self.guard_tolerance) if self.guard_tolerance > 0 else None

    def describe(self) -> str:
        guard = f" guard={self.guard_tolerance}" if self.guard_tolerance else ""
        forecast = "forecaster=foca" if self.forecaster == "foca" else f"order={self.order}"
        return f"TaylorSeer interval={self.interval} warmup={self.warmup_steps} {forecast}{guard}"
