"""Computes every step: the reference behaviour, and the Block Profiler's schedule."""
from __future__ import annotations

from typing import Any

from .base import CachePolicy, StepAction, StepContext


class AlwaysCompute(CachePolicy):
    name = "compute-all"
    skips_steps = False

    def decide(self, ctx: StepContext, memory: Any) -> StepAction:
        return StepAction.COMPUTE
