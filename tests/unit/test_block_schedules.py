"""Block Caching's per-block schedule (policies/block_caching.py), as strings per block, driven by
the engine's own StepSchedule: which blocks each step computes (C) or stands in for (R)."""
from __future__ import annotations

import math

import pytest
import torch

from cache_core.policies import ProfiledBlockSchedule, StepAction
from cache_core.policies.base import SchedulePart, StepsMismatchError
from cache_core.policies.block_caching import resample_block_changes
from cache_core.run.step_schedule import SigmaWindow, StepSchedule


def block_rows(policy: ProfiledBlockSchedule, steps: int) -> list[str]:
    """Per block, its letter at every step (the first step computes all: nothing is cached)."""
    schedule = StepSchedule(policy, policy.new_run_memory(), SchedulePart(0, steps, steps),
                            SigmaWindow(1.0, 0.0, whole_schedule=True))
    columns, has_cache = [], False
    for step in range(steps):
        schedule.new_step(torch.tensor([1.0 - step / steps]))
        action = schedule.decide(has_cache, lambda: torch.zeros(1))
        columns.append("C" * policy.blocks if action is StepAction.COMPUTE else policy.block_letters(schedule.memory))
        has_cache = True
    return ["".join(column[b] for column in columns) for b in range(policy.blocks)]


# Three blocks of 8 profiled steps: one that barely changes, one that changes steadily, one that
# changes a lot early and little late (the first row has no step before it).
CHANGES = ((math.nan, math.nan, math.nan),) + ((0.01, 0.05, 0.3),) * 3 + ((0.01, 0.05, 0.02),) * 4


@pytest.mark.parametrize("threshold, max_skip, expected", [
    (0.0, 3, ["CCCCCCCC", "CCCCCCCC", "CCCCCCCC"]),           # 0: every block, every step
    (0.12, 10, ["CRRRRRRR", "CRRCRRCR", "CCCCRRRR"]),         # each block by its own change
    (0.12, 2, ["CRRCRRCR", "CRRCRRCR", "CCCCRRCR"]),          # no block reuses more than twice
    (10.0, 0, ["CCCCCCCC", "CCCCCCCC", "CCCCCCCC"]),          # max_skip 0: nothing reused
])
def test_each_block_is_recomputed_when_its_accumulated_change_reaches_the_threshold(threshold, max_skip, expected):
    assert block_rows(ProfiledBlockSchedule(CHANGES, threshold, max_skip), 8) == expected


def test_on_twice_the_steps_each_change_is_half_and_the_schedule_keeps_its_rhythm():
    changes = ((math.nan,),) + ((0.05,),) * 9
    halves = resample_block_changes(changes, 19)
    assert halves[0] == [0.0] and all(row[0] == pytest.approx(0.025) for row in halves[1:])
    assert block_rows(ProfiledBlockSchedule(changes, 0.09, 10), 10) == ["CRCRCRCRCR"]
    assert block_rows(ProfiledBlockSchedule(changes, 0.09, 10), 19) == ["CRRRCRRRCRRRCRRRCRR"]


def test_an_unmeasured_change_computes_the_block_there():
    changes = ((math.nan, math.nan), (0.01, 0.01), (math.nan, 0.01), (0.01, 0.01))
    assert block_rows(ProfiledBlockSchedule(changes, 0.5, 10), 4) == ["CRCR", "CRRR"]


def test_a_part_profile_serves_only_its_part_and_says_the_fix():
    part = SchedulePart(4, 8, 8)
    policy = ProfiledBlockSchedule(((math.nan,),) + ((0.01,),) * 3, 0.5, 10, part)
    policy.check_steps(8, 4, 4)
    with pytest.raises(StepsMismatchError, match="steps 5-8 of a schedule of 8.*runs a whole schedule of 8 steps"):
        policy.check_steps(8, 0, 8)
    assert policy._curve_for(8)[:4] == [[0.0]] * 4


@pytest.mark.parametrize("settings, problem", [
    (dict(changes=CHANGES, threshold=-1.0), "threshold"), (dict(changes=CHANGES, threshold=math.nan), "threshold"),
    (dict(changes=CHANGES, max_skip=-1), "max_skip"), (dict(changes=((0.1,),)), "two or more"),
    (dict(changes=((0.1,), (0.1, 0.2))), "one number per block"),
])
def test_settings_out_of_range_are_refused_by_name(settings, problem):
    with pytest.raises(ValueError, match=problem):
        ProfiledBlockSchedule(**settings)


@pytest.mark.parametrize("kept, count, spans", [
    ((0, 1, 55, 56), 57, ((2, 55),)),                 # FLUX.1's 57 blocks, two first and two last kept
    ((0, 5), 6, ((1, 5),)),
    ((2,), 5, ((0, 2), (3, 5))),
    ((0, 1, 2), 3, ()),
])
def test_a_per_block_plan_stands_in_the_blocks_between_its_kept_ones_as_one_span(kept, count, spans):
    from cache_core.policies import PlannedSchedule

    policy = PlannedSchedule(plan="CRC", kept_blocks=kept, block_count=count)
    assert policy.stand_in_spans(count) == spans
    letters = policy.block_letters(None)
    for start, end in spans:   # a span is stood in as a whole
        assert set(letters[start:end]) == {"R"}
    assert all(letters[b] == "C" for b in kept)


def test_block_caching_stands_in_each_block_alone():
    policy = ProfiledBlockSchedule(changes=((0.1, 0.2, 0.3), (0.1, 0.2, 0.3)))
    assert policy.stand_in_spans(3) == ((0, 1), (1, 2), (2, 3))
