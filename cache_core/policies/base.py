"""The policy interface: per step, decide compute / reuse / forecast, and say what stands in
for the blocks on a skipped step.

Policies see a `StepContext` (step index, distance from the last full compute, and a lazy
signal from the adapter) and never a model class. They are immutable configuration; what they
remember during a run lives in the memory the run creates from `new_run_memory()`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable

import torch

from ..predictors import LastResidual, ResidualPredictor

if TYPE_CHECKING:
    from ..forecast_guard import ForecastGuard


class StepAction(str, Enum):
    COMPUTE = "compute"
    REUSE = "reuse"
    FORECAST = "forecast"
    # The whole model's output stands in (output_cache.py): decided at the model call, before
    # the model runs, so that nothing of the model runs.
    REUSE_OUTPUT = "reuse_output"

    @property
    def letter(self) -> str:
        return {"compute": "C", "reuse": "R", "forecast": "F", "reuse_output": "V"}[self.value]


@dataclass
class StepContext:
    """What a policy may read to decide one step."""

    step: int                      # index of this model evaluation within the run (0-based)
    total_steps: int               # sampling steps of the run (len(sigmas) - 1)
    steps_since_compute: int       # 1 on the step after a full compute
    consecutive_skips: int         # skipped steps since the last full compute
    signal: Callable[[], torch.Tensor]  # the first block's modulated input, computed on demand

    @property
    def is_last(self) -> bool:
        return self.step >= self.total_steps - 1


class CachePolicy(ABC):
    """Decides, per step, what the blocks do, and what stands in for them when skipped. Steps
    outside the node's window and steps with nothing cached are computed before a policy is
    asked."""

    name: str = ""
    skips_steps: bool = True        # False: never skips, so the engine keeps no cache
    skip_action: StepAction = StepAction.REUSE
    # True: some skipped steps are REUSE_OUTPUT, so the step is decided at the model call, where
    # no block signal exists yet (such a policy must not read `StepContext.signal`).
    reuses_outputs: bool = False

    def new_run_memory(self) -> Any:
        """What the policy remembers during one run (None when it needs nothing)."""
        return None

    def check_steps(self, total_steps: int) -> None:
        """Before a run: raise ValueError, naming the fix, if the policy cannot serve a schedule of
        `total_steps` steps (a plan calibrated for another step count)."""

    @abstractmethod
    def decide(self, ctx: StepContext, memory: Any) -> StepAction:
        """COMPUTE, or `skip_action`, for this step."""

    def observe_compute(self, ctx: StepContext, memory: Any) -> None:
        """Told when a step is computed, whoever decided it (a guard's fallback too)."""

    def new_predictor(self, cache_device: torch.device | None) -> ResidualPredictor:
        """What stands in for the stack's residual on a skipped step: plain reuse by default."""
        return LastResidual(cache_device)

    def guard(self) -> ForecastGuard | None:
        """A check of each skipped step before it is trusted (None: skipped steps are trusted)."""
        return None

    def describe(self) -> str:
        """Settings in one line, for the log."""
        return self.name
