"""Where a sampling run lies in the whole schedule it is a part of.

KSamplerAdvanced with start/end steps (two-expert Wan2.2, refiners), KSampler with denoise < 1
and SamplerCustom with a sliced schedule all sample a contiguous slice of the sigmas that one
of ComfyUI's schedulers makes for the whole run. Finding that scheduler and step count from the
slice's own sigmas tells the policies which steps of the whole schedule they are deciding, so a
run split in two makes the decisions of the run in one piece.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..support.log import get_logger
from ..policies.base import SchedulePart

log = get_logger(__name__)

# The whole schedule is looked for among step counts up to this many times the run's own.
LONGEST_WHOLE = 4
# Guesses of the whole step count per scheduler, each refined from the last.
REFINEMENTS = 6
PER_GUESS = 5


def schedule_part(model_sampling: Any, sigmas: torch.Tensor) -> SchedulePart:
    """The run's first step and the whole schedule's step count. A run from the top of the
    schedule to zero is its own whole schedule; otherwise the slice is matched against ComfyUI's
    schedulers, step counts nearest the position estimate first. Failing a match (a custom
    schedule) the estimate is used where it is plausible, else the run counts as a whole."""
    steps = max(len(sigmas) - 1, 0)
    values = sigmas.detach().float().cpu()
    if steps == 0:
        return SchedulePart(0, 0, 0)
    start, end = _percent_at(model_sampling, float(values[0])), _percent_at(model_sampling, float(values[-1]))
    if (start <= 1e-6 and float(values[-1]) <= 0.0) or end - start <= 1e-6:
        return SchedulePart(0, steps, steps)
    estimate = max(steps, round(steps / (end - start)))
    matched = _matching_slice(model_sampling, values, estimate)
    if matched is not None:
        return matched
    if estimate > LONGEST_WHOLE * steps:
        log.info("this run's %d steps match no ComfyUI schedule; their decisions count from the run's own first step",
                 steps)
        return SchedulePart(0, steps, steps)
    log.debug("schedule of %d steps from percent %.3f to %.3f matches no ComfyUI scheduler; taken as steps %d.. of "
              "%d by position", steps, start, end, round(start * estimate), estimate)
    first = min(round(start * estimate), estimate - steps)
    return SchedulePart(first, first + steps, estimate)


def _matching_slice(model_sampling: Any, values: torch.Tensor, estimate: int) -> SchedulePart | None:
    """The part of a ComfyUI schedule the run's sigmas are; among several schedulers' matches,
    the whole step count nearest the estimate."""
    import comfy.samplers

    matches = [part for name in comfy.samplers.SCHEDULER_NAMES
               if (part := _match_in(model_sampling, name, values, estimate)) is not None]
    return min(matches, key=lambda part: abs(part.total - estimate)) if matches else None


def _match_in(model_sampling: Any, scheduler: str, values: torch.Tensor, estimate: int) -> SchedulePart | None:
    """The part of one scheduler's schedule the run's sigmas are: a few step counts around a
    guess, the guess refined from where the run's sigmas fall in its schedule. A handful of
    schedules at any length, where trying every count would grow with the square of it."""
    import comfy.samplers

    steps = len(values) - 1
    tried: set[int] = set()
    guess = min(max(estimate, steps), LONGEST_WHOLE * steps)
    for _ in range(REFINEMENTS):
        wholes = {}
        nearest = (guess + offset for distance in range(3 * PER_GUESS) for offset in (-distance, distance))
        candidates = [total for total in dict.fromkeys(nearest)
                      if total not in tried and steps <= total <= LONGEST_WHOLE * steps][:PER_GUESS]
        for total in candidates:
            tried.add(total)
            wholes[total] = whole = comfy.samplers.calculate_sigmas(model_sampling, scheduler, total).float().cpu()
            first = int(torch.argmin((whole - values[0]).abs()))
            window = whole[first:first + steps + 1]
            if len(window) == len(values) and torch.allclose(window, values, rtol=1e-4, atol=1e-6):
                return SchedulePart(first, first + steps, total)
        if not wholes:
            return None
        nearest_tried = min(wholes, key=lambda total: abs(total - guess))
        refined = _refined_total(wholes[nearest_tried], values)
        if refined is not None:   # else the next untried counts nearest the same guess
            guess = min(max(refined, steps), LONGEST_WHOLE * steps)
    return None


def _refined_total(whole: torch.Tensor, values: torch.Tensor) -> int | None:
    """The step count at which the run's sigmas would span their own number of steps, from the
    (fractional) steps they span in `whole`: at a given sigma, a scheduler's step index grows in
    proportion to its step count."""
    # a schedule's closing zero is one step after its last sigma at every length: leave it out
    closing = 1 if float(values[-1]) <= 0.0 and float(whole[-1]) <= 0.0 and len(values) > 2 else 0
    length = len(whole) - 1 - closing
    descending = whole[:length + 1].numpy()[::-1]   # np.interp wants increasing abscissae
    positions = np.arange(length, -1, -1, dtype=np.float64)
    first, last = np.interp([float(values[0]), float(values[-1 - closing])], descending, positions)
    span = last - first
    if span <= 0.5:
        return None
    return round(length * (len(values) - 1 - closing) / span) + closing


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
