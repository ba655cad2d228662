"""A slower calibrated plan never keeps less than a faster one: each speedup's search also tries
the faster plan with steps added, and falls back on the faster plan itself when computing more
kept less."""
from __future__ import annotations

from cache_core.calibration.plan_search import SearchResult, computes_for
from cache_core.calibration.request import CalibrationRequest
from cache_core.calibration.speedup_search import SpeedupPlan, search_speedup, steps_to_add, with_steps_added


def test_steps_are_added_in_the_middle_of_the_longest_skipped_runs_keeping_their_stand_ins():
    assert with_steps_added("CVVVVVVC", 1) == "CVVVCVVC"
    assert with_steps_added("CRRC2222", 2) == "CRCC22C2"   # the longer run first, then the earliest of the longest
    assert with_steps_added("CCCC", 3) == "CCCC"
    assert with_steps_added("C1111111", 0) == "C1111111"


def test_steps_to_add_stay_within_the_slower_speedups_block_computes():
    whole = SpeedupPlan(5.0, SearchResult("CRRRRCRRRR", [30.0], 1), (), 1, 30.0)
    assert steps_to_add(10, 6, 4, whole) == 2
    # a per-block plan keeping 2 of 6 blocks on its 8 skipped steps: 2 x 6 + 8 x 2 = 28 block
    # computes; 4 whole steps allow 24: nothing to add
    kept = SpeedupPlan(5.0, SearchResult("CRRRRCRRRR", [30.0], 1), (0, 5), 1, 30.0)
    assert steps_to_add(10, 6, 4, kept) == 0
    assert steps_to_add(10, 6, 6, kept) == 2     # 36 block computes: 8 more, 4 per added step


def _evaluator(scores: dict[str, float], default: float, sampled: list[str]):
    def for_kept(kept):
        def evaluate(plan):
            sampled.append(plan)
            return [scores.get(plan, default)]
        return evaluate
    return for_kept


REQUEST = CalibrationRequest((2.5, 5.0), extra_seeds=0, evaluations=4)


def test_the_faster_plan_with_steps_added_is_kept_where_it_keeps_more():
    faster = SpeedupPlan(5.0, SearchResult("CRRRRCRRRR", [30.0], 1), (), 6, 25.0)
    added = with_steps_added("CRRRRCRRRR", 2)
    sampled: list[str] = []
    best = search_speedup(10, 6, 2.5, REQUEST, _evaluator({added: 35.0}, 20.0, sampled), faster)
    assert computes_for(10, 2.5) == 4 and added.count("C") == 4
    assert best.found.plan == added and best.found.psnr == [35.0] and best.source == "the 5x plan with steps added"
    assert best.evaluations == len(sampled) == 4 + 1


def test_a_slower_plan_that_keeps_less_falls_back_on_the_faster_plan():
    faster = SpeedupPlan(5.0, SearchResult("CRRRRCRRRR", [30.0], 1), (), 6, 25.0)
    best = search_speedup(10, 6, 2.5, REQUEST, _evaluator({}, 20.0, []), faster)
    assert best.found.plan == "CRRRRCRRRR" and best.found.worst == 30.0 and best.source == "the 5x plan"


def test_the_fastest_speedup_is_its_own_search():
    sampled: list[str] = []
    best = search_speedup(10, 6, 5.0, REQUEST, _evaluator({}, 20.0, sampled), None)
    assert best.source == "search" and best.found.plan.count("C") == 2 and best.evaluations == len(sampled)
