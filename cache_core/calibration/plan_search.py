"""Search for a calibrated plan (policies/planned.py): at a budget of computed steps, the plan
whose *final* output is closest to the uncached run's on the calibration cases, planned for the
worst one.

The search measures, it does not predict: each candidate plan is sampled for real on the
calibration cases and scored by the PSNR of its final latent against the uncached one. A skipped
step's final damage differs by hundreds of times between prompts and follows neither the local
feature change nor a first-block probe (bench/skip_sensitivity.py): no cheaper signal ranked them.

It runs in two stages. The *shape* stage varies a plan described by a few numbers (`PlanShape`:
warm-up, how the computes are spread, whether the last step is computed, one stand-in for every
skipped run), one number at a time: few degrees of freedom fit the model rather than the
calibration seeds, and they carry the big wins (a computed last step, Taylor forecasts on models
with smooth features, the model's output reused). The *local* stage then shifts single computed
steps by one or two and changes the stand-in of single skipped runs. Both keep a candidate only
when it is no worse on the worst case and on the mean and better by `MIN_GAIN_DB` on the two
together. It starts at `PlanShape()`, Apply FORA's schedule where the steps divide: the fixed
schedule it has to beat."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

# stand-ins searched: reuse, Taylor 1 or 2 of the blocks, the model's output reused (policies/planned.py);
# FoCa (P) and HyCa (H) where a family's calibrations use them (solver_choices.py)
SUBSTITUTES = "R12V"
MIN_GAIN_DB = 0.1
WARMUP_STEPS = 1


@dataclass
class SearchResult:
    plan: str
    psnr: list[float]             # per calibration case, dB
    evaluations: int              # plans sampled, the start included
    history: list[tuple[int, str, float]] = field(default_factory=list)   # (evaluation, plan, worst dB)
    shape: "PlanShape | None" = None   # the best shape of the shape stage

    @property
    def worst(self) -> float:
        return min(self.psnr)

    @property
    def mean(self) -> float:
        return sum(self.psnr) / len(self.psnr)


def computes_for(steps: int, speedup: float) -> int:
    """Computed steps for a target speedup (steps over computes): the count whose speedup is
    nearest the target, the faster on a tie (6x on 28 steps computes 5, 5.6x, not 4, 7.0x, which
    keeps 2-4 dB less), at least one."""
    if speedup < 1.0:
        raise ValueError(f"speedup must be at least 1 (got {speedup})")
    fewer = max(1, min(steps, math.floor(steps / speedup + 1e-9)))
    more = min(steps, fewer + 1)
    return more if abs(steps / more - speedup) < abs(steps / fewer - speedup) - 1e-9 else fewer


def kept_block_sets(blocks: int) -> list[tuple[int, ...]]:
    """The blocks a per-block plan keeps computed on its skipped steps: the first and last, then
    the first two and last two (the papers' early and late blocks, which matter most)."""
    sets = [(0, blocks - 1), (0, 1, blocks - 2, blocks - 1)]
    return [kept for kept in sets if len(set(kept)) == len(kept) < blocks]


def computes_with_kept(steps: int, computes: int, blocks: int, kept: int) -> int:
    """Computed steps of a plan that keeps `kept` blocks computed on its skipped steps, within the
    block computes of a whole-stack plan of `computes` steps (0: none fits)."""
    if kept >= blocks:
        return 0
    return max(0, min(steps, (computes * blocks - kept * steps) // (blocks - kept)))


def spread_computes(steps: int, computes: int, warmup: int = WARMUP_STEPS, spacing: float = 1.0,
                    last_computed: bool = False) -> list[int]:
    """Computed steps: the first `warmup` (fewer when the budget is small), the last one if
    `last_computed`, the rest spread over the steps between; `spacing` 1 spreads them evenly,
    above 1 packs them towards the start, below 1 towards the end."""
    if computes >= steps:
        return list(range(steps))
    last_computed = last_computed and computes > 1
    free = computes - int(last_computed)
    warmup = max(1, min(warmup, free - 1)) if free > 1 else 1
    end = steps - 1 if last_computed else steps
    rest = free - warmup
    chosen = list(range(warmup))
    for j in range(rest):
        position = warmup + math.floor((j / rest) ** spacing * (end - warmup))
        chosen.append(max(position, chosen[-1] + 1))      # a collision moves on to the next step
    if last_computed:
        chosen.append(steps - 1)
    chosen[-1] = min(chosen[-1], steps - 1)
    for i in range(len(chosen) - 2, -1, -1):               # pushed past the end: pull back
        chosen[i] = min(chosen[i], chosen[i + 1] - 1)
    return chosen


def plan_string(steps: int, computed: list[int], substitutes: list[str]) -> str:
    """The plan with `computed` steps computed and the skipped run after the i-th computed step
    standing in with `substitutes[i]`."""
    letters = ["C"] * steps
    for start, end, letter in zip(computed, computed[1:] + [steps], substitutes):
        for step in range(start + 1, end):
            letters[step] = letter
    return "".join(letters)


@dataclass(frozen=True)
class PlanShape:
    """A plan in a few numbers: the shape stage of the search varies these."""
    warmup: int = WARMUP_STEPS
    spacing: float = 1.0
    last_computed: bool = False
    stand_in: str = "R"

    def computed(self, steps: int, computes: int) -> list[int]:
        return spread_computes(steps, computes, self.warmup, self.spacing, self.last_computed)

    def plan(self, steps: int, computes: int) -> str:
        computed = self.computed(steps, computes)
        return plan_string(steps, computed, [self.stand_in] * len(computed))


def shape_variants(stand_ins: str) -> Iterator[tuple[str, Callable[[PlanShape], PlanShape]]]:
    """The shape stage's moves, in the order tried; each applies to the best shape so far."""
    yield "last step computed", lambda s: replace(s, last_computed=True)
    for letter in stand_ins[1:]:
        yield f"stand-in {letter}", lambda s, letter=letter: replace(s, stand_in=letter)
    for spacing in (1.3, 0.75):
        yield f"spacing {spacing}", lambda s, spacing=spacing: replace(s, spacing=spacing)
    yield "warm-up 2", lambda s: replace(s, warmup=2)


def better(candidate: list[float], best: list[float]) -> bool:
    """No worse on the worst case nor on the mean, and better on the two together by
    `MIN_GAIN_DB`: a move that trades the other cases for the worst one (or the reverse) fits
    the calibration seeds, not the model."""
    worst_gain = min(candidate) - min(best)
    mean_gain = (sum(candidate) - sum(best)) / len(best)
    return worst_gain >= 0 and mean_gain >= 0 and worst_gain + mean_gain >= MIN_GAIN_DB


def search_plan(steps: int, computes: int, evaluate: Callable[[str], list[float]], evaluations: int,
                seed: int = 0, start_shape: PlanShape | None = None, stand_ins: str = "") -> SearchResult:
    """The best plan found in `evaluations` calls of `evaluate(plan) -> per-case PSNR`, with the
    letters of `stand_ins` (else SUBSTITUTES). From `start_shape` (the best shape of another
    search) the shape stage is left out."""
    stand_ins = stand_ins or SUBSTITUTES
    if not 1 <= computes <= steps:
        raise ValueError(f"computes must be between 1 and the {steps} steps (got {computes})")
    shape = start_shape or PlanShape()
    start = shape.plan(steps, computes)
    result = SearchResult(start, evaluate(start), 1)
    result.history.append((1, start, result.worst))
    tried = {start}

    def consider(plan: str) -> bool:
        """Sample `plan` once (unless tried already or out of budget); True when it is kept."""
        if plan in tried or result.evaluations >= evaluations:
            return False
        tried.add(plan)
        scores = evaluate(plan)
        result.evaluations += 1
        if not better(scores, result.psnr):
            return False
        result.plan, result.psnr = plan, scores
        result.history.append((result.evaluations, plan, min(scores)))
        return True

    for _name, move in shape_variants(stand_ins) if start_shape is None else ():
        candidate = move(shape)
        if consider(candidate.plan(steps, computes)):
            shape = candidate
    result.shape = shape

    computed = shape.computed(steps, computes)
    substitutes = [shape.stand_in] * len(computed)
    rng = random.Random(seed)
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
            letters[j] = rng.choice([s for s in stand_ins if s != letters[j]])
        plan = plan_string(steps, moved, letters)
        if plan in tried or "C" * steps == plan:
            continue
        if consider(plan):
            computed, substitutes = moved, letters
    return result
