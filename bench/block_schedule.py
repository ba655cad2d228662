"""The Block Cache threshold that gives a chosen speedup in block computes on a profile, found
from the policy alone (its schedule depends on the profile, the threshold and the step count,
never on the run): the benches compare it with other settings at matched compute."""
from __future__ import annotations

import torch

from comfyui_dit_cache.cache_core.policies import ProfiledBlockSchedule, StepAction
from comfyui_dit_cache.cache_core.policies.base import SchedulePart
from comfyui_dit_cache.cache_core.run.step_schedule import SigmaWindow, StepSchedule


def block_computes(policy: ProfiledBlockSchedule, steps: int) -> float:
    """Blocks computed over block evaluations on a run of `steps` (the first step computes all)."""
    schedule = StepSchedule(policy, policy.new_run_memory(), SchedulePart(0, steps, steps),
                            SigmaWindow(1.0, 0.0, whole_schedule=True))
    computed, has_cache = 0, False
    for step in range(steps):
        schedule.new_step(torch.tensor([1.0 - step / steps]))
        action = schedule.decide(has_cache, lambda: torch.zeros(1))
        letters = "C" * policy.blocks if action is StepAction.COMPUTE else policy.block_letters(schedule.memory)
        computed += letters.count("C")
        has_cache = True
    return computed / (steps * policy.blocks)


def threshold_for(changes: tuple, steps: int, speedup: float, max_skip: int) -> float:
    """The threshold whose schedule comes nearest `speedup` (block evaluations over computes)."""
    low, high = 0.0, 10.0
    for _ in range(60):
        middle = (low + high) / 2
        if 1.0 / block_computes(ProfiledBlockSchedule(changes, middle, max_skip), steps) < speedup:
            low = middle
        else:
            high = middle
    return high
