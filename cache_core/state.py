"""One sampling run's data. Created when a run starts, dropped when it ends (also on interrupt
or error), so nothing from one run can leak into the next.

A *stream* is one layout of the batch that reaches the blocks: cond and uncond batched
together, or each alone when ComfyUI splits them. Each stream has its own caches; the step's
decision is shared by all streams, so a step is never half computed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .adapters import BlockSpec, ModelAdapter
from .policies.base import CachePolicy, StepAction
from .predictors import ResidualPredictor
from .report import RunReport

STACK_SLOT = (-1, "img")
PROBE_SLOT = (0, "img")  # the first block's image residual: what a forecast guard checks


@dataclass
class StreamState:
    """Caches and the in-flight call of one batch layout."""

    label: str
    predictors: dict[tuple[int, str], ResidualPredictor] = field(default_factory=dict)
    has_cache: bool = False
    stack_input: torch.Tensor | None = None
    probe_inputs: dict[str, torch.Tensor] | None = None
    probing: bool = False   # the first block is computed to check this skipped step's forecast
    action: StepAction = StepAction.COMPUTE
    step: int = -1
    sigma: float = 0.0
    block_actions: list[str] = field(default_factory=list)

    def nbytes(self) -> int:
        return sum(p.nbytes() for p in self.predictors.values())


@dataclass
class StepClock:
    """Turns the sigma of each model call into a step index and holds that step's decision."""

    step: int = -1
    sigma: float | None = None
    decision: StepAction | None = None
    last_compute_step: int = -1
    consecutive_skips: int = 0

    def tick(self, sigma: float) -> bool:
        """Advance on a new sigma; True when this call starts a new step."""
        if self.sigma is not None and sigma == self.sigma:
            return False
        self.step += 1
        self.sigma = sigma
        self.decision = None
        return True


@dataclass
class RunState:
    policy: CachePolicy
    adapter: ModelAdapter
    blocks: list[BlockSpec]
    diffusion_model: torch.nn.Module
    start_sigma: float
    end_sigma: float
    total_steps: int
    cache_device: torch.device | None
    report: RunReport
    engine: Any = None
    memo: Any = None
    observer: Any = None
    clock: StepClock = field(default_factory=StepClock)
    streams: dict[tuple, StreamState] = field(default_factory=dict)
    current: StreamState | None = None

    def in_window(self, sigma: float) -> bool:
        return self.end_sigma < sigma <= self.start_sigma

    def cache_bytes(self) -> int:
        return sum(s.nbytes() for s in self.streams.values())

    def release(self) -> None:
        """Drop every cached tensor and the model reference."""
        self.streams.clear()
        self.current = None
        self.memo = None
        self.observer = None
        self.engine = None
        self.diffusion_model = None
