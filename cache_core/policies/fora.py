"""FORA (Fast-FORward cAching): a fixed schedule that computes every `interval`-th step after
`warmup_steps` full steps and reuses each block's cached residual in between.

Every block of a reused step is reused, and each adds its residual to its input, so the blocks'
residuals add up to one residual of the whole stack: the engine keeps that sum, not one per block
(same output to rounding, far less memory; tests/test_block_reuse_equivalence.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import CachePolicy, StepAction, StepContext


@dataclass(frozen=True)
class ReuseSchedule(CachePolicy):
    interval: int = 3
    warmup_steps: int = 0

    name = "FORA"
    skip_action = StepAction.REUSE

    def __post_init__(self) -> None:
        if self.interval < 1:
            raise ValueError(f"interval must be at least 1 (got {self.interval}); 1 computes every step")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be 0 or more (got {self.warmup_steps})")

    def decide(self, ctx: StepContext, memory: Any) -> StepAction:
        if ctx.step < self.warmup_steps or (ctx.step - self.warmup_steps) % self.interval == 0:
            return StepAction.COMPUTE
        return self.skip_action

    def describe(self) -> str:
        return f"FORA interval={self.interval} warmup={self.warmup_steps}"
