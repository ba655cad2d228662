"""Search for a calibrated plan (policies/planned.py): at a budget of computed steps, the plan
whose *final* output is closest to the uncached run's, on the worst calibration case.

The search measures, it does not predict: each candidate plan is sampled for real on the
calibration cases and scored by the PSNR of its final latent against the uncached one. A skipped
step's final damage differs by hundreds of times between prompts and follows neither the local
feature change nor a first-block probe (bench/skip_sensitivity.py), so no cheaper signal ranked
plans reliably. It starts from evenly spaced computes after a warm-up, all skipped steps reused,
and tries local moves (shift one computed step by one or two steps; change what stands in for
one run of skipped steps: reuse, Taylor order 1 or 2), keeping a move when the worst case
improves by `MIN_GAIN_DB` and the mean does not drop. The start with a one-step warm-up is Apply
FORA's schedule wherever the steps divide evenly, so the search starts at the fixed schedule it
has to beat.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable

SUBSTITUTES = "R12"      # reuse, Taylor order 1, Taylor order 2 (policies/planned.py)
MIN_GAIN_DB = 0.1
WARMUP_STEPS = 1


@dataclass
class SearchResult:
    plan: str
    psnr: list[float]             # per calibration case, dB
    evaluations: int              # plans sampled, the start included
    history: list[tuple[int, str, float]] = field(default_factory=list)   # (evaluation, plan, worst dB)

    @property
    def worst(self) -> float:
        return min(self.psnr)

    @property
    def mean(self) -> float:
        return sum(self.psnr) / len(self.psnr)


def computes_for(steps: int, speedup: float) -> int:
    """Computed steps for a target speedup (steps over computes), at least one."""
    if speedup < 1.0:
        raise ValueError(f"speedup must be at least 1 (got {speedup})")
    return max(1, min(steps, round(steps / speedup)))


def evenly_spaced(steps: int, computes: int, warmup: int = WARMUP_STEPS) -> list[int]:
    """Computed steps: the first `warmup` (fewer when the budget is small), the rest evenly spaced."""
    warmup = max(1, min(warmup, computes - 1)) if computes > 1 else 1
    rest = computes - warmup
    chosen = set(range(warmup))
    for j in range(rest):
        chosen.add(warmup + math.floor(j * (steps - warmup) / rest))
    return sorted(chosen)


def plan_string(steps: int, computed: list[int], substitutes: list[str]) -> str:
    """The plan with `computed` steps computed and the skipped run after the i-th computed step
    standing in with `substitutes[i]`."""
    letters = ["C"] * steps
    for start, end, letter in zip(computed, computed[1:] + [steps], substitutes):
        for step in range(start + 1, end):
            letters[step] = letter
    return "".join(letters)


def _better(candidate: list[float], best: list[float]) -> bool:
    """Better on the worst case by `MIN_GAIN_DB` and no worse on the mean: a move that trades the
    other cases for the worst one fits the calibration seeds, not the model."""
    return min(candidate) > min(best) + MIN_GAIN_DB and sum(candidate) >= sum(best)


def search_plan(steps: int, computes: int, evaluate: Callable[[str], list[float]], evaluations: int,
                seed: int = 0) -> SearchResult:
    """The best plan found in `evaluations` calls of `evaluate(plan) -> per-case PSNR`."""
    if not 1 <= computes <= steps:
        raise ValueError(f"computes must be between 1 and the {steps} steps (got {computes})")
    computed = evenly_spaced(steps, computes)
    substitutes = ["R"] * len(computed)
    best_plan = plan_string(steps, computed, substitutes)
    best = evaluate(best_plan)
    result = SearchResult(best_plan, best, 1, [(1, best_plan, min(best))])
    rng = random.Random(seed)
    tried = {best_plan}
    attempts = 0
    while result.evaluations < evaluations and attempts < 50 * evaluations:
        attempts += 1
        moved, letters = list(computed), list(substitutes)
        if len(moved) > 1 and rng.random() < 0.6:
            j = rng.randrange(1, len(moved))
            target = moved[j] + rng.choice((-2, -1, 1, 2))
            upper = moved[j + 1] if j + 1 < len(moved) else steps
            if not moved[j - 1] < target < upper:
                continue
            moved[j] = target
        else:
            j = rng.randrange(len(letters))
            letters[j] = rng.choice([s for s in SUBSTITUTES if s != letters[j]])
        plan = plan_string(steps, moved, letters)
        if plan in tried or "C" * steps == plan:
            continue
        tried.add(plan)
        scores = evaluate(plan)
        result.evaluations += 1
        if _better(scores, result.psnr):
            computed, substitutes = moved, letters
            result.plan, result.psnr = plan, scores
            result.history.append((result.evaluations, plan, min(scores)))
    return result
