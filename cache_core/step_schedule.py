"""The step clock and the step's decision: the one writer of which step a model call belongs
to, what was decided for it, and the counters the policies read.

A call starts a new step when it brings a new sigma *tensor*: ComfyUI hands every call of one
model evaluation (cond and uncond, batched or split) the same timestep tensor and makes a new
one for each evaluation. Comparing the tensor, not its value, keeps the run free of a GPU
synchronisation per call: reading the value waits for every queued kernel, and the GPU then
idles while Python prepares the step, which is most of what a skipped step costs. The values
are read once, when the run ends (`sigma_values`), or when a window needs them.
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


@dataclass
class StepSchedule:
    policy: CachePolicy
    memory: Any
    total_steps: int
    window: SigmaWindow
    step: int = -1
    decision: StepAction | None = None
    last_compute_step: int = -1
    consecutive_skips: int = 0
    _sigma: torch.Tensor | None = None
    _step_sigmas: list[torch.Tensor] = field(default_factory=list)

    def tick(self, sigma: torch.Tensor) -> bool:
        """Advance on a new sigma tensor; True when this call starts a new step."""
        if sigma is self._sigma:
            return False
        self.step += 1
        self._sigma = sigma
        self._step_sigmas.append(sigma.detach().flatten()[0])
        self.decision = None
        return True

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
        return StepContext(step=self.step, total_steps=self.total_steps,
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
