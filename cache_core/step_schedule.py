"""The step clock and the step's decision: the one writer of which step a model call belongs
to, what was decided for it, and the counters the policies read.

A step begins with each model evaluation (ComfyUI's `predict_noise`, see attach.py): every
model call until the next one (cond and uncond, batched or split, each context window, each
area) belongs to it. The sigma tensors are kept, not read: reading a value waits for every
queued kernel, and the GPU then idles while Python prepares the step, which is most of what a
skipped step costs. They are read once, when the run ends (`sigma_values`), or when a window
needs them.

Step indices refer to the whole schedule, not to the part this run samples (`SchedulePart`):
a run split over two samplers (two experts, a refiner, img2img) makes the decisions of the run
in one piece, except that each part's first step is computed (nothing is cached yet).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .policies.base import CachePolicy, StepAction, StepContext


@dataclass
class SigmaWindow:
    """The node's start/end window as sigmas: steps outside it are always computed."""

    start_sigma: float
    end_sigma: float
    whole_schedule: bool

    def contains(self, sigma: Callable[[], float]) -> bool:
        return self.whole_schedule or self.end_sigma < sigma() <= self.start_sigma


@dataclass(frozen=True)
class SchedulePart:
    """Where a run's steps lie in the whole schedule: its first step's index and the whole
    schedule's step count (0 and the run's own count for a run in one piece)."""

    first_step: int
    total_steps: int


@dataclass
class StepSchedule:
    policy: CachePolicy
    memory: Any
    part: SchedulePart
    window: SigmaWindow
    step: int = -1
    decision: StepAction | None = None
    last_compute_step: int = -1
    consecutive_skips: int = 0
    _step_sigmas: list[torch.Tensor] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.step = self.part.first_step - 1
        self.last_compute_step = self.part.first_step - 1

    @property
    def started(self) -> bool:
        return bool(self._step_sigmas)

    def new_step(self, sigma: torch.Tensor) -> None:
        """A model evaluation begins: the next step, not yet decided."""
        self.step += 1
        self._step_sigmas.append(sigma.detach().flatten()[0])
        self.decision = None

    def decide(self, has_cache: bool, signal: Callable[[], torch.Tensor]) -> StepAction:
        """This step's decision, asked of the policy inside the window once something is cached."""
        ctx = self._context(signal)
        action = self.policy.decide(ctx, self.memory) if self.window.contains(self.sigma_value) else StepAction.COMPUTE
        if action is StepAction.COMPUTE or not has_cache:
            self._computed(ctx)
        else:
            self.decision = action
            self.consecutive_skips += 1
        return self.decision

    def fall_back(self) -> None:
        """A skipped step whose forecast was not trusted is computed after all."""
        self._computed(self._context(_no_signal))

    def _computed(self, ctx: StepContext) -> None:
        self.policy.observe_compute(ctx, self.memory)
        self.decision = StepAction.COMPUTE
        self.last_compute_step = self.step
        self.consecutive_skips = 0

    def _context(self, signal: Callable[[], torch.Tensor]) -> StepContext:
        return StepContext(step=self.step, total_steps=self.part.total_steps,
                           steps_since_compute=self.step - self.last_compute_step,
                           consecutive_skips=self.consecutive_skips, signal=signal)

    def sigma_value(self) -> float:
        """This step's sigma as a number (waits for the GPU)."""
        return float(self._step_sigmas[-1])

    def sigma_values(self) -> list[float]:
        """Every step's sigma, read in one transfer."""
        return torch.stack(self._step_sigmas).tolist() if self._step_sigmas else []


def _no_signal() -> torch.Tensor:
    raise RuntimeError("a policy read the step signal while being told of a fallback")

