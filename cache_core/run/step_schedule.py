"""The step clock and the step's decision: the one writer of which step a model call belongs
to, what was decided for it, and the counters the policies read.

A step is a sampler step (`SamplerSteps`): every model evaluation (ComfyUI's `predict_noise`)
from the sampler's report of one step to its report of the next belongs to one step, so a
sampler that evaluates the model twice a step (heun, dpm_2, dpmpp_sde, dpmpp_2s_ancestral, ...)
is counted in steps, not calls, and both evaluations follow the step's one decision. Every model
call of an evaluation (cond and uncond, batched or split, each context window, each area) belongs
to its step. The sigma tensors are kept, not read: reading a value waits for every
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

from ..policies.base import CachePolicy, SchedulePart, StepAction, StepContext


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
    part: SchedulePart
    window: SigmaWindow
    step: int = -1
    decision: StepAction | None = None
    last_compute_step: int = -1
    consecutive_skips: int = 0
    # the run's sigmas (a step's sigma is where the schedule puts its start, whatever sigmas the
    # sampler's further evaluations of it are at); None: each step's first evaluation's
    run_sigmas: torch.Tensor | None = None
    _step_sigmas: list[torch.Tensor] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.step = self.part.first - 1
        self.last_compute_step = self.part.first - 1

    @property
    def started(self) -> bool:
        return bool(self._step_sigmas)

    def new_step(self, sigma: torch.Tensor, index: int | None = None) -> None:
        """A step begins, not yet decided: the run's step `index` (its first step is the
        schedule part's first), or the next one."""
        self.step = self.part.first + index if index is not None else self.step + 1
        if index is not None and self.run_sigmas is not None and index < len(self.run_sigmas):
            sigma = self.run_sigmas[index]
        self._step_sigmas.append(sigma.detach().flatten()[0])
        self.decision = None

    def decided(self, has_cache: bool, signal: Callable[[], torch.Tensor] | None = None,
                sigmas: torch.Tensor | None = None) -> StepAction:
        """The step's one decision: made at its first ask, followed by every later ask of the
        step (each call, each device, each evaluation of a sampler's step). `signal`: the first
        block's features, for a policy that reads them (none before the model runs); `sigmas`: a
        model call's, which begins a step of its own when it comes outside ComfyUI's
        predict_noise (no step begun)."""
        if not self.started and sigmas is not None:
            self.new_step(sigmas)
        if self.decision is None:
            self.decide(has_cache, signal or _no_block_signal)
        return self.decision

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
        return StepContext(step=self.step, total_steps=self.part.total,
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


def _no_block_signal() -> torch.Tensor:
    raise RuntimeError("a policy read the first block's signal where none exists: before the model runs (a policy "
                       "that reuses model outputs), or before a split step's calls")
