"""TeaCache-style adaptive threshold: reuse the whole-stack residual while the accumulated,
rescaled relative L1 change of the first block's modulated input stays under a threshold.

The rescale polynomial maps the input change to the expected output change; the published ones
are the TeaCache authors' (each adapter declares its family's, highest power first, as
numpy.polyval), and a Block Profiler profile fits one for the model actually in use.

Each step's change is measured on the GPU and used `DECISION_LAG` (2) steps later: step t adds
the change measured at step t-2, which stands for its own (the change varies smoothly from step
to step). Reading step t's own change before deciding step t makes the host wait for the GPU on
every step, and the GPU then idles while Python prepares the step (deferred_read.py). Steps 1
and 2 have no measured change yet and are always computed.
"""
from __future__ import annotations

import math

from dataclasses import dataclass, field

import torch

from ..support.deferred_read import DeferredRead
from ..support.tensor_measures import relative_l1_on_device
from .base import CachePolicy, StepAction, StepContext

# Steps between measuring a change and deciding with it. One is not enough: on the second skipped
# step after a compute, the change measured on the first lies behind that compute's blocks in the
# GPU's queue, and the host waits for all of them (FLUX.1-dev on an H100: 0.94 of the ideal
# speedup with 1, as with 0; 0.99 with 2).
DECISION_LAG = 2


def polyval(coefficients: tuple[float, ...], x: float) -> float:
    """numpy.polyval without numpy: highest power first."""
    out = 0.0
    for c in coefficients:
        out = out * x + c
    return out


@dataclass
class _ThresholdMemory:
    previous_signal: torch.Tensor | None = None
    measured_changes: list[DeferredRead | None] = field(default_factory=list)   # of the last steps, on their way
    accumulated: float = 0.0


# Far above any fitted or published coefficient (the largest published one is about 6e3): a larger
# one makes the rescaled change overflow, and every step would be computed without a word.
MAX_COEFFICIENT = 1e8


@dataclass(frozen=True)
class AdaptiveThreshold(CachePolicy):
    coefficients: tuple[float, ...]   # rescale polynomial, highest power first
    rel_l1_thresh: float = 0.4
    max_consecutive_reuse: int = 0   # 0: no limit

    name = "TeaCache"
    reads_signal = True
    skip_action = StepAction.REUSE

    def __post_init__(self) -> None:
        if not 0.0 <= self.rel_l1_thresh <= 10.0:
            raise ValueError(f"rel_l1_thresh must be between 0 and 10 (got {self.rel_l1_thresh}); the published starting points are in the node's tooltip")
        if self.max_consecutive_reuse < 0:
            raise ValueError(f"max_consecutive_reuse must be 0 (no limit) or more (got {self.max_consecutive_reuse})")
        if not self.coefficients:
            raise ValueError("coefficients must hold at least one number")
        if not all(math.isfinite(c) and abs(c) <= MAX_COEFFICIENT for c in self.coefficients):
            raise ValueError(f"the rescale polynomial holds a coefficient that is not a number of sensible size "
                             f"({', '.join(f'{c:g}' for c in self.coefficients)}; published ones stay below 1e4): "
                             "profile the model again, or use a preset")

    def new_run_memory(self) -> _ThresholdMemory:
        return _ThresholdMemory()

    def decide(self, ctx: StepContext, memory: _ThresholdMemory) -> StepAction:
        signal = ctx.signal().detach().float()
        previous, memory.previous_signal = memory.previous_signal, signal
        memory.measured_changes.append(DeferredRead(relative_l1_on_device(signal, previous))
                                     if previous is not None and previous.shape == signal.shape else None)
        last_change = memory.measured_changes.pop(0) if len(memory.measured_changes) > DECISION_LAG else None
        if last_change is None or ctx.is_last:
            return StepAction.COMPUTE
        if self.max_consecutive_reuse and ctx.consecutive_skips >= self.max_consecutive_reuse:
            return StepAction.COMPUTE
        memory.accumulated += abs(polyval(self.coefficients, last_change.values()[0]))
        if memory.accumulated < self.rel_l1_thresh:
            return self.skip_action
        return StepAction.COMPUTE

    def observe_compute(self, ctx: StepContext, memory: _ThresholdMemory) -> None:
        memory.accumulated = 0.0

    def describe(self) -> str:
        limit = self.max_consecutive_reuse or "none"
        return f"TeaCache rel_l1_thresh={self.rel_l1_thresh} max_consecutive_reuse={limit}"
