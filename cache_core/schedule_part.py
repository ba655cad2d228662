"""Where a sampling run lies in the whole schedule it is a part of.

KSamplerAdvanced with start/end steps (two-expert Wan2.2, refiners), KSampler with denoise < 1
and SamplerCustom with a sliced schedule all sample a contiguous slice of the sigmas that one
of ComfyUI's schedulers makes for the whole run. Finding that scheduler and step count from the
slice's own sigmas tells the policies which steps of the whole schedule they are deciding, so a
run split in two makes the decisions of the run in one piece.
"""
from __future__ import annotations

from typing import Any

import torch

from .log import get_logger
from .step_schedule import SchedulePart

log = get_logger(__name__)

# The whole schedule is looked for among step counts up to this many times the run's own.
LONGEST_WHOLE = 4


def schedule_part(model_sampling: Any, sigmas: torch.Tensor) -> SchedulePart:
    """The run's first step and the whole schedule's step count. A run from the top of the
    schedule to zero is its own whole schedule; otherwise the slice is matched against ComfyUI's
    schedulers, step counts nearest the position estimate first. Failing a match (a custom
    schedule) the estimate is used where it is plausible, else the run counts as a whole."""
    steps = max(len(sigmas) - 1, 0)
    values = sigmas.detach().float().cpu()
    if steps == 0:
        return SchedulePart(0, 0)
    start, end = _percent_at(model_sampling, float(values[0])), _percent_at(model_sampling, float(values[-1]))
    if (start <= 1e-6 and float(values[-1]) <= 0.0) or end - start <= 1e-6:
        return SchedulePart(0, steps)
    estimate = max(steps, round(steps / (end - start)))
    matched = _matching_slice(model_sampling, values, estimate)
    if matched is not None:
        return matched
    if estimate > LONGEST_WHOLE * steps:
        log.info("this run's %d steps match no ComfyUI schedule; their decisions count from the run's own first step",
                 steps)
        return SchedulePart(0, steps)
    log.debug("schedule of %d steps from percent %.3f to %.3f matches no ComfyUI scheduler; taken as steps %d.. of "
              "%d by position", steps, start, end, round(start * estimate), estimate)
    return SchedulePart(min(round(start * estimate), estimate - steps), estimate)


def _matching_slice(model_sampling: Any, values: torch.Tensor, estimate: int) -> SchedulePart | None:
    import comfy.samplers

    steps = len(values) - 1
    totals = sorted(range(steps, LONGEST_WHOLE * steps + 1), key=lambda total: abs(total - estimate))
    for total in totals:
        for name in comfy.samplers.SCHEDULER_NAMES:
            whole = comfy.samplers.calculate_sigmas(model_sampling, name, total).float().cpu()
            first = int(torch.argmin((whole - values[0]).abs()))
            window = whole[first:first + steps + 1]
            if len(window) == len(values) and torch.allclose(window, values, rtol=1e-4, atol=1e-6):
                return SchedulePart(first, total)
    return None


def _percent_at(model_sampling: Any, sigma: float) -> float:
    """The percent of the schedule whose sigma is `sigma` (bisection: percent_to_sigma falls
    from the largest sigma at 0 to 0 at 1)."""
    if sigma <= 0.0:
        return 1.0
    if sigma >= float(model_sampling.percent_to_sigma(0.0)):
        return 0.0
    low, high = 0.0, 1.0
    for _ in range(40):
        middle = (low + high) / 2
        if float(model_sampling.percent_to_sigma(middle)) > sigma:
            low = middle
        else:
            high = middle
    return (low + high) / 2
