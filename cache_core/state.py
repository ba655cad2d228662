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
    forecast_scale: float = 1.0   # of the Taylor terms, fitted by the probe (guard) for this call
    action: StepAction = StepAction.COMPUTE
    step: int = -1
    block_actions: list[str] = field(default_factory=list)

    def nbytes(self) -> int:
        return sum(p.nbytes() for p in self.predictors.values())


@dataclass
class StepClock:
    """Turns each model call into a step index and holds that step's decision.

    A call starts a new step when it brings a new sigma *tensor*: ComfyUI hands every call of
    one model evaluation (cond and uncond, batched or split) the same timestep tensor and makes
    a new one for each evaluation. Comparing the tensor, not its value, keeps the run free of a
    GPU synchronisation per call: reading the value waits for every queued kernel, and the GPU
    then idles while Python prepares the step, which is most of what a skipped step costs. The
    values are read once, when the run ends (`sigma_values`), or when a window needs them."""

    step: int = -1
    sigma: torch.Tensor | None = None
    step_sigmas: list[torch.Tensor] = field(default_factory=list)
    decision: StepAction | None = None
    last_compute_step: int = -1
    consecutive_skips: int = 0

    def tick(self, sigma: torch.Tensor) -> bool:
        """Advance on a new sigma tensor; True when this call starts a new step."""
        if sigma is self.sigma:
            return False
        self.step += 1
        self.sigma = sigma
        self.step_sigmas.append(sigma.detach().flatten()[0])
        self.decision = None
        return True

    def sigma_value(self) -> float:
        """This step's sigma as a number (waits for the GPU)."""
        return float(self.step_sigmas[-1])

    def sigma_values(self) -> list[float]:
        """Every step's sigma, read in one transfer."""
        return torch.stack(self.step_sigmas).tolist() if self.step_sigmas else []


@dataclass
class RunState:
    policy: CachePolicy
    adapter: ModelAdapter
    blocks: list[BlockSpec]
    diffusion_model: torch.nn.Module
    start_sigma: float
    end_sigma: float
    full_window: bool
    total_steps: int
    cache_device: torch.device | None
    report: RunReport
    engine: Any = None
    memo: Any = None
    observer: Any = None
    clock: StepClock = field(default_factory=StepClock)
    streams: dict[tuple, StreamState] = field(default_factory=dict)
    current: StreamState | None = None

    def in_window(self) -> bool:
        """Whether this step lies in the node's start/end window (read only when there is one)."""
        if self.full_window:
            return True
        return self.end_sigma < self.clock.sigma_value() <= self.start_sigma

    def cache_bytes(self) -> int:
        return sum(s.nbytes() for s in self.streams.values())

    def release(self) -> None:
        """Drop every cached tensor and the model reference."""
        self.streams.clear()
        self.clock = StepClock()
        self.current = None
        self.memo = None
        self.observer = None
        self.engine = None
        self.diffusion_model = None
