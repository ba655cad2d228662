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

from ..support.containment import GraphError
from ..stand_ins.predictors import LastResidual, ResidualPredictor

if TYPE_CHECKING:
    from ..stand_ins.forecast_guard import ForecastGuard


class StepsMismatchError(GraphError):
    """A policy fitted to one schedule (a calibrated plan, a profile's curve), sampled on another."""


@dataclass(frozen=True)
class SchedulePart:
    """Steps `first`..`end` - 1 of a whole schedule of `total` steps: the part a run samples (a
    sampler of a split run, a run with denoise below 1), or the part a profile or a calibrated
    plan was made on. A run in one piece is the part (0, n, n)."""

    first: int
    end: int
    total: int

    @property
    def steps(self) -> int:
        return self.end - self.first

    @property
    def is_whole(self) -> bool:
        return self.first == 0 and self.end == self.total

    def describe(self) -> str:
        return f"steps {self.first + 1}-{self.end} of a schedule of {self.total}"

    def check_run(self, what: str, total_steps: int, first_step: int, run_steps: int | None) -> None:
        """Refuse a run that samples steps this part (a profile's, a plan's) did not see: on them
        the policy has nothing to decide with (`run_steps` None: the run is the whole schedule
        from `first_step`)."""
        run_steps = total_steps - first_step if run_steps is None else run_steps
        if total_steps == self.total and self.first <= first_step and first_step + run_steps <= self.end:
            return
        ran = (f"steps {first_step + 1}-{first_step + run_steps} of a schedule of {total_steps}"
               if (first_step, run_steps) != (0, total_steps) else f"a whole schedule of {total_steps} steps")
        raise StepsMismatchError(
            f"DiT Cache: {what} was made on {self.describe()} (a split sampler or denoise below 1), but this sampler "
            f"runs {ran}; profile the part this sampler runs (same steps, start/end step or denoise), or profile "
            "one sampler over the whole schedule")


class StepAction(str, Enum):
    COMPUTE = "compute"
    REUSE = "reuse"
    FORECAST = "forecast"
    # The whole model's output stands in (stand_ins/output_stand_in.py): decided at the model call, before
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
    # True: `decide` reads `StepContext.signal`, the first block's features on the call's device.
    reads_signal: bool = False
    # True: on a skipped step some blocks may be computed, each other block standing in with its
    # own residual; `block_letters` says which (a per-block schedule).
    decides_blocks: bool = False

    def new_run_memory(self) -> Any:
        """What the policy remembers during one run (None when it needs nothing)."""
        return None

    def check_steps(self, total_steps: int, first_step: int = 0, run_steps: int | None = None) -> None:
        """Before a run of `run_steps` steps from `first_step` of a `total_steps`-step schedule:
        raise StepsMismatchError, naming the fix, if the policy cannot serve it (a plan calibrated
        for another step count, a profile of another part of the schedule)."""

    def check_sigmas(self, sigmas: list[float], first_step: int) -> None:
        """Before a run whose steps start at these sigmas (from step `first_step` of the whole
        schedule): raise StepsMismatchError, naming the fix, if the policy was fitted to other
        noise levels."""

    def block_letters(self, memory: Any) -> str:
        """For a policy that `decides_blocks`, after `decide` answered a skip: per block, `C` to
        compute it, another letter to stand in with its own residual."""
        raise NotImplementedError(f"{type(self).__name__} does not decide per block")

    def stand_in_spans(self, block_count: int) -> tuple[tuple[int, int], ...]:
        """For a policy that `decides_blocks`: the spans `(start, end)` of consecutive blocks that
        `block_letters` always computes or stands in together. Each span keeps one residual (per
        hidden-state stream of its last block) instead of one per block, and a block in no span
        is never stood in and keeps none. Every block alone by default."""
        return tuple((b, b + 1) for b in range(block_count))

    @abstractmethod
    def decide(self, ctx: StepContext, memory: Any) -> StepAction:
        """COMPUTE, or `skip_action`, for this step."""

    def observe_compute(self, ctx: StepContext, memory: Any) -> None:
        """Told when a step is computed, whoever decided it (a guard's fallback too)."""

    def new_predictor(self, cache_device: torch.device | None) -> ResidualPredictor:
        """What stands in for the stack's residual on a skipped step: plain reuse by default."""
        return LastResidual(cache_device)

    def output_scale(self, step: int) -> float:
        """For a policy that `reuses_outputs`: how much of the reused direction a REUSE_OUTPUT
        step at `step` applies (1: all of it; stand_ins/output_stand_in.py)."""
        return 1.0

    def guard(self) -> ForecastGuard | None:
        """A check of each skipped step before it is trusted (None: skipped steps are trusted)."""
        return None

    def describe(self) -> str:
        """Settings in one line, for the log."""
        return self.name
