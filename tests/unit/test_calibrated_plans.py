"""Calibrated plans without a model: the planned policy's steps and stand-ins, and the search."""
from __future__ import annotations

import pytest
import torch
from schedule_driver import schedule_letters

from cache_core.calibration.plan_search import (PlanShape, better, computes_for, plan_string, search_plan,
                                    spread_computes)
from cache_core.policies import PlannedSchedule, StepAction
from cache_core.stand_ins.predictors import PlannedTaylorResidual
from cache_core.policies.base import SchedulePart


def test_a_plan_is_followed_step_by_step_with_its_stand_ins():
    policy = PlannedSchedule("CCR1C2RC")
    assert schedule_letters(policy, 8) == "CCRFCFRC"   # the report's letters: R reuse, F forecast
    assert policy.computes == 4


def test_a_split_run_follows_the_plan_at_whole_schedule_steps():
    assert schedule_letters(PlannedSchedule("CRRCRRCRRC"), 4, part=SchedulePart(6, 10, 10)) == "CRRC"


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
    assert computes_for(28, 4) == 7 and computes_for(30, 3) == 10 and computes_for(10, 8) == 1
    # the nearest speedup the step count allows: 6x on 28 steps runs 5.6x (5 computes), not 7.0x
    assert computes_for(28, 6) == 5 and computes_for(30, 4) == 8 and computes_for(20, 6) == 3
    assert computes_for(9, 2) == 5 and computes_for(12, 5) == 2   # 1.8x is nearer 2 than 2.25x; a tie, 6x or 4x: faster
    start = PlanShape()                                          # the search's start
    assert start.computed(28, 7) == [0, 1, 5, 10, 14, 19, 23]   # FORA with warm-up 1 where the steps divide
    assert start.computed(25, 7) == [0, 1, 5, 9, 13, 17, 21]
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


def test_output_reuse_steps_are_their_own_action_and_leave_the_blocks_predictor_out():
    policy = PlannedSchedule("CVV2C")
    assert schedule_letters(policy, 5) == "CVVFC"
    assert policy.reuses_outputs and not PlannedSchedule("CRR2C").reuses_outputs
    assert policy.new_predictor(None).orders == {3: 2}


@pytest.mark.parametrize("steps", [6, 20, 28, 30, 50])
@pytest.mark.parametrize("warmup", [1, 2, 3])
@pytest.mark.parametrize("spacing", [0.75, 1.0, 1.3, 2.0])
@pytest.mark.parametrize("last", [False, True])
def test_every_plan_shape_computes_exactly_its_budget_from_step_zero(steps, warmup, spacing, last):
    for computes in range(1, steps + 1):
        chosen = spread_computes(steps, computes, warmup, spacing, last)
        assert len(chosen) == computes and chosen[0] == 0 and chosen == sorted(set(chosen))
        assert chosen[-1] < steps
        if last and computes > 1:
            assert chosen[-1] == steps - 1


def test_plan_shapes_place_their_computes_as_named():
    assert PlanShape(last_computed=True).plan(28, 7) == "CCRRRRCRRRRCRRRRCRRRRCRRRRRC"
    early = PlanShape(spacing=1.3).computed(28, 7)
    even = PlanShape().computed(28, 7)
    assert early[2] < even[2] and PlanShape(spacing=0.75).computed(28, 7)[2] > even[2]
    assert PlanShape(warmup=2, stand_in="V").plan(12, 4)[:3] == "CCC" and set(PlanShape(stand_in="V").plan(12, 4)) == {"C", "V"}


def test_the_shape_stage_tries_each_move_on_the_best_shape_so_far():
    """A made-up damage that rewards a computed last step and output reuse, and punishes Taylor
    forecasts: the shape stage keeps those two moves and the other variants are each sampled once."""
    sampled = []

    def evaluate(plan: str) -> list[float]:
        sampled.append(plan)
        score = 20.0 + 5 * (plan[-1] == "C") + 3 * ("V" in plan) - 4 * sum(c in "12" for c in plan) / len(plan)
        return [score, score + 1]

    found = search_plan(28, 7, evaluate, evaluations=7)
    start = PlanShape()
    assert sampled[:3] == [start.plan(28, 7), PlanShape(last_computed=True).plan(28, 7),
                           PlanShape(last_computed=True, stand_in="1").plan(28, 7)]
    assert PlanShape(last_computed=True, stand_in="V").plan(28, 7) in sampled
    assert found.plan == PlanShape(last_computed=True, stand_in="V").plan(28, 7) and found.evaluations == 7


def test_a_candidate_is_kept_only_when_worse_on_neither_the_worst_case_nor_the_mean():
    assert better([21.0, 30.0], [20.0, 30.0])            # worst up, mean up
    assert better([20.0, 31.0], [20.0, 30.0])            # mean up alone
    assert not better([19.9, 40.0], [20.0, 30.0])        # the worst case traded for the mean
    assert not better([25.0, 25.0], [20.0, 31.0])        # the mean traded for the worst case
    assert not better([20.0, 30.05], [20.0, 30.0])       # below MIN_GAIN_DB


def test_per_block_plans_keep_the_first_and_last_blocks_within_the_same_block_computes():
    from cache_core.calibration.plan_search import computes_with_kept, kept_block_sets

    assert kept_block_sets(57) == [(0, 56), (0, 1, 55, 56)] and kept_block_sets(3) == [(0, 2)]
    # FLUX.1 (57 blocks), 28 steps at 4x: 7 x 57 = 399 block computes; keeping 2 blocks on the
    # skipped steps leaves 6 full steps (6 x 57 + 22 x 2 = 386 <= 399)
    assert computes_with_kept(28, 7, 57, 2) == 6 and computes_with_kept(28, 7, 57, 4) == 5
    assert computes_with_kept(10, 2, 6, 2) == 0   # nothing fits: 2 blocks on 10 steps is all 12


def test_a_per_block_plan_computes_its_kept_blocks_on_skipped_steps_and_counts_them():
    policy = PlannedSchedule("CRRC1R", kept_blocks=(0, 3), block_count=4)
    assert policy.decides_blocks and policy.block_letters(None) == "CRRC"
    assert policy.speedup == pytest.approx(24 / (2 * 4 + 4 * 2))
    assert "blocks 0, 3 computed on every step" in policy.describe()
    assert not PlannedSchedule("CRRC").decides_blocks
    with pytest.raises(ValueError, match="not blocks of a model of 4"):
        PlannedSchedule("CRRC", kept_blocks=(4,), block_count=4)
