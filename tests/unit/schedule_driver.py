"""Drives a policy through a run's steps with the engine's own `StepSchedule`, without a model:
the step string a policy promises ("C" computed, "R" reused, "F" forecast)."""
from __future__ import annotations

import torch

from cache_core.policies import CachePolicy, StepAction
from cache_core.policies.base import SchedulePart
from cache_core.run.step_schedule import SigmaWindow, StepSchedule


def schedule_letters(policy: CachePolicy, steps: int, signals: list[torch.Tensor] | None = None,
                     fallbacks: tuple[int, ...] = (), part: SchedulePart | None = None) -> str:
    """One letter per step of the run. `signals[t]` is the run's step t's modulated input (for
    threshold policies); at the steps in `fallbacks` a skipped step is turned into a computed one,
    as a forecast guard does; `part` places the run in a longer schedule (default: the whole)."""
    schedule = StepSchedule(policy, policy.new_run_memory(), part or SchedulePart(0, steps, steps),
                            SigmaWindow(1.0, 0.0, whole_schedule=True))
    letters, has_cache = [], False
    for step in range(steps):
        schedule.new_step(torch.tensor([1.0 - step / steps]))
        signal = signals[step] if signals is not None else torch.zeros(1)
        action = schedule.decide(has_cache, lambda: signal)
        if step in fallbacks and action is not StepAction.COMPUTE:
            schedule.fall_back()
            action = schedule.decision
        letters.append(action.letter)
        has_cache = has_cache or action is StepAction.COMPUTE
    return "".join(letters)
