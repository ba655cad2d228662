"""Calibrated plans without a model: the planned policy's steps and stand-ins, and the search."""
from __future__ import annotations

import pytest
import torch
from schedule_driver import schedule_letters

from cache_core.plan_search import computes_for, evenly_spaced, plan_string, search_plan
from cache_core.policies import PlannedSchedule, StepAction
from cache_core.predictors import PlannedTaylorResidual
from cache_core.step_schedule import SchedulePart


def test_a_plan_is_followed_step_by_step_with_its_stand_ins():
    policy = PlannedSchedule("CCR1C2RC")
    assert schedule_letters(policy, 8) == "CCRFCFRC"   # the report's letters: R reuse, F forecast
    assert policy.computes == 4


def test_a_split_run_follows_the_plan_at_whole_schedule_steps():
    assert schedule_letters(PlannedSchedule("CRRCRRCRRC"), 4, part=SchedulePart(6, 10)) == "CRRC"


@pytest.mark.parametrize("plan", ["", "RC", "CXC", "C3C"])
def test_a_malformed_plan_is_refused_by_name(plan):
    with pytest.raises(ValueError, match="plan"):
        PlannedSchedule(plan)


def test_a_plan_of_another_step_count_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="calibrated plan is for 6 steps, but this sampler runs 8.*set the sampler"):
        PlannedSchedule("CRRCRR").check_steps(8)
    PlannedSchedule("CRRCRR").check_steps(6)


def test_the_planned_predictor_uses_each_steps_own_order():
    predictor = PlannedTaylorResidual(None, {3: 0, 4: 1, 5: 2})
    for step in (0, 1, 2):                           # residual = step^2: derivatives 4, 3, 2 at step 2
        predictor.update(step, torch.tensor([float(step**2)]))
    like = torch.zeros(1)
    assert predictor.predict(3, like).item() == 4.0                  # reuse
    assert predictor.predict(4, like).item() == 4.0 + 3.0 * 2        # order 1, two steps ahead
    assert predictor.predict(5, like).item() == 4.0 + 3.0 * 3 + 2.0 * 9 / 2
    assert predictor.predict(6, like).item() == 4.0                  # not in the plan: reuse


def test_the_policy_gives_the_planned_predictor_and_actions():
    policy = PlannedSchedule("CR2")
    assert isinstance(policy.new_predictor(None), PlannedTaylorResidual)
    assert policy.new_predictor(None).orders == {1: 0, 2: 2}
    assert policy.skip_action is StepAction.FORECAST


def test_budget_and_start_plan():
    assert computes_for(28, 4) == 7 and computes_for(28, 6) == 5 and computes_for(10, 8) == 1
    assert evenly_spaced(28, 7) == [0, 1, 5, 10, 14, 19, 23]   # FORA with warm-up 1 where the steps divide
    assert evenly_spaced(25, 7) == [0, 1, 5, 9, 13, 17, 21]
    assert plan_string(8, [0, 1, 4], ["R", "1", "2"]) == "CC11C222"
    with pytest.raises(ValueError, match="speedup"):
        computes_for(28, 0.5)


def test_the_search_finds_a_better_plan_than_its_start_and_counts_what_it_sampled():
    """A made-up damage: the worst case loses 1 dB per step between a skipped step and the
    computed step before it, the mean also 0.5 dB per forecast letter; the best plans spread
    their computes and reuse."""
    sampled = []

    def evaluate(plan: str) -> list[float]:
        sampled.append(plan)
        gap, worst = 0, 40.0
        for letter in plan:
            gap = 0 if letter == "C" else gap + 1
            worst -= gap
        return [worst, worst + 5 - 0.5 * sum(c in "12" for c in plan)]

    found = search_plan(12, 4, evaluate, evaluations=30, seed=1)
    assert found.evaluations == len(sampled) == 30 and len(set(sampled)) == 30
    assert found.plan.count("C") == 4 and found.plan[0] == "C" and len(found.plan) == 12
    assert found.worst > found.history[0][2]
    assert found.psnr == evaluate(found.plan)
