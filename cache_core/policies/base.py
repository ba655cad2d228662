"""The policy interface: per step, decide compute / reuse / forecast.

Policies see a `StepContext` (step index, distance from the last full compute, and a
lazy signal from the adapter) and never a model class. They are immutable configuration; what
they remember during a run lives in a memo the run state creates from `new_memo()`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

import torch


class StepAction(str, Enum):
    COMPUTE = "compute"
    REUSE = "reuse"
    FORECAST = "forecast"

    @property
    def letter(self) -> str:
        return {"compute": "C", "reuse": "R", "forecast": "F"}[self.value]


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
    """Decides, per step, what the blocks do. Steps outside the node's window and steps with
    nothing cached are computed by the engine before a policy is asked."""

    name: str = ""
    skips_steps: bool = True        # False: never skips, so the engine keeps no cache
    skip_action: StepAction = StepAction.REUSE
    # > 0: on skipped steps the engine computes the first block anyway, fits the forecast's scale
    # to it, and turns the step into a full compute (a fallback) when the relative error of the
    # fitted forecast is above this.
    guard_tolerance: float = 0.0

    def new_memo(self) -> Any:
        """Per-run memory of the policy (None when it needs none)."""
        return None

    @abstractmethod
    def decide(self, ctx: StepContext, memo: Any) -> StepAction:
        """COMPUTE, or `skip_action`, for this step."""

    def observe_compute(self, ctx: StepContext, memo: Any) -> None:
        """Told when a step was computed (whoever decided it), so memos can reset."""

    def describe(self) -> str:
        """Settings in one line, for the log."""
        return self.name
