"""One speedup's calibrated plan: the whole-stack search, per-block plans at the same block
computes, and the plan of the next faster speedup with steps added, so that a slower plan never
keeps less on the calibration cases than a faster one (the speedups are searched fastest first)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .plan_search import SearchResult, better, computes_for, computes_with_kept, kept_block_sets, search_plan
from .request import CalibrationRequest

Evaluator = Callable[[tuple[int, ...]], Callable[[str], list[float]]]   # kept blocks -> plan -> per-case PSNR


@dataclass
class SpeedupPlan:
    speedup: float
    found: SearchResult
    kept: tuple[int, ...]        # blocks computed on every step (a per-block plan), else ()
    evaluations: int             # plans sampled for this speedup
    start_worst: float           # the search's start (evenly spaced reuse) on the worst case
    source: str = "search"       # how the plan was found, for the log


def with_steps_added(plan: str, count: int) -> str:
    """`plan` with `count` more steps computed, each in the middle of the longest run of skipped
    steps (the earliest of equal runs); the stand-ins of the runs it splits are kept."""
    letters = list(plan)
    for _ in range(count):
        runs, start = [], None
        for i, letter in enumerate(letters + ["C"]):
            if letter != "C" and start is None:
                start = i
            elif letter == "C" and start is not None:
                runs.append((start, i))
                start = None
        if not runs:
            break
        start, end = max(runs, key=lambda run: (run[1] - run[0], -run[0]))
        letters[start + (end - start) // 2] = "C"
    return "".join(letters)


def steps_to_add(steps: int, blocks: int, computes: int, faster: SpeedupPlan) -> int:
    """Steps the faster plan may compute more within the block computes of `computes` whole steps."""
    kept = len(faster.kept)
    faster_computes = faster.found.plan.count("C")
    used = faster_computes * blocks + kept * (steps - faster_computes)
    return max(0, (computes * blocks - used) // (blocks - kept))


def per_block_searches(steps: int, computes: int, blocks: int,
                       request: CalibrationRequest) -> list[tuple[tuple[int, ...], int]]:
    """The per-block searches a speedup of `computes` whole steps gets: per set of kept blocks
    (the early and late ones), its computed steps at the same block computes, where one fits."""
    if not request.per_block_evaluations:
        return []
    searches = [(kept, computes_with_kept(steps, computes, blocks, len(kept))) for kept in kept_block_sets(blocks)]
    return [(kept, fewer) for kept, fewer in searches if 1 <= fewer < computes]


def search_speedup(steps: int, blocks: int, speedup: float, request: CalibrationRequest, evaluator: Evaluator,
                   faster: SpeedupPlan | None, stand_ins: str = "") -> SpeedupPlan:
    computes = computes_for(steps, speedup)
    found = search_plan(steps, computes, evaluator(()), request.evaluations, stand_ins=stand_ins)
    best = SpeedupPlan(speedup, found, (), found.evaluations, found.history[0][2])
    # per-block plans at the same block computes: the early and late blocks computed on every
    # step, fewer steps computed in full; from the whole-stack search's best shape
    for kept, fewer in per_block_searches(steps, computes, blocks, request):
        candidate = search_plan(steps, fewer, evaluator(kept), request.per_block_evaluations, start_shape=found.shape,
                                stand_ins=stand_ins)
        best.evaluations += candidate.evaluations
        if better(candidate.psnr, best.found.psnr):
            best.found, best.kept, best.source = candidate, kept, "search"
    if faster is None:
        return best
    added = with_steps_added(faster.found.plan, steps_to_add(steps, blocks, computes, faster))
    if added != faster.found.plan and (added, faster.kept) != (best.found.plan, best.kept):
        scores = evaluator(faster.kept)(added)
        best.evaluations += 1
        if better(scores, best.found.psnr):
            best.found, best.kept = SearchResult(added, scores, 1), faster.kept
            best.source = f"the {faster.speedup:g}x plan with steps added"
    if best.found.worst < faster.found.worst:   # computing more kept less: the faster plan serves
        best.found, best.kept, best.source = faster.found, faster.kept, f"the {faster.speedup:g}x plan"
    return best
