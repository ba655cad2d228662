"""Each policy's schedule as a string of steps, from the policy alone (no ComfyUI, no model)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from schedule_driver import schedule_letters

from cache_core.policies.base import SchedulePart

from cache_core.policies import (AdaptiveThreshold, AlwaysCompute, CachePolicy, MagnitudeRatioThreshold, ReuseSchedule,
                                 StepAction, TaylorForecastSchedule)
from cache_core.stand_ins.predictors import LastResidual, TaylorResidual

IDENTITY = (1.0, 0.0)   # a rescale polynomial that keeps the measured change as it is


def growing_signal(steps: int, rate: float) -> list[torch.Tensor]:
    """Signals whose relative L1 change from one step to the next is exactly `rate`."""
    return [torch.full((4,), (1 + rate) ** t) for t in range(steps)]


@pytest.mark.parametrize("policy, expected", [
    (AlwaysCompute(), "CCCCCCCCCC"),
    (ReuseSchedule(interval=1), "CCCCCCCCCC"),
    (ReuseSchedule(interval=3, warmup_steps=1), "CCRRCRRCRR"),
    (ReuseSchedule(interval=2), "CRCRCRCRCR"),
    (TaylorForecastSchedule(interval=3, warmup_steps=2), "CCCFFCFFCF"),
    (TaylorForecastSchedule(interval=2, warmup_steps=3, order=1), "CCCCFCFCFC"),
    (MagnitudeRatioThreshold((1.1,) * 10, threshold=0.2, max_skip=5, retention_ratio=0.0), "CRCRCRCRCR"),
    (MagnitudeRatioThreshold((1.0,) * 10, threshold=1.0, max_skip=2, retention_ratio=0.0), "CRRCRRCRRC"),
    (MagnitudeRatioThreshold((1.0,) * 10, threshold=1.0, max_skip=10, retention_ratio=0.5), "CCCCCRRRRR"),
])
def test_fixed_and_curve_schedules(policy, expected):
    assert schedule_letters(policy, 10) == expected


def test_magnitude_resamples_a_curve_of_another_step_count():
    """A 20-step curve of 1.1 on a 10-step run is 1.1^(19/9) = 1.22 per step: one reuse costs
    more than 0.2 and less than 0.25."""
    curve = (1.1,) * 20
    assert schedule_letters(MagnitudeRatioThreshold(curve, 0.2, max_skip=5, retention_ratio=0.0), 10) == "C" * 10
    assert schedule_letters(MagnitudeRatioThreshold(curve, 0.25, max_skip=5, retention_ratio=0.0), 10) == "CRCRCRCRCR"


def test_teacache_accumulates_the_change_measured_two_steps_earlier():
    """Each step changes the signal by 0.1; a step's change is used two steps later, so steps 0-2
    are computed; then two reuses (0.1, 0.2) fit under 0.25 and the third compute resets; the
    last step is always computed."""
    policy = AdaptiveThreshold(IDENTITY, rel_l1_thresh=0.25)
    assert schedule_letters(policy, 10, growing_signal(10, 0.1)) == "CCCRRCRRCC"


def test_teacache_threshold_zero_and_reuse_limit():
    signals = growing_signal(10, 0.01)
    assert schedule_letters(AdaptiveThreshold(IDENTITY, rel_l1_thresh=0.0), 10, signals) == "C" * 10
    assert schedule_letters(AdaptiveThreshold(IDENTITY, 10.0, max_consecutive_reuse=2), 10, signals) == "CCCRRCRRCC"


@pytest.mark.parametrize("policy", [
    TaylorForecastSchedule(interval=3, warmup_steps=2),
    MagnitudeRatioThreshold((1.0, 1.1, 1.0, 1.2, 1.0, 1.05, 1.0, 1.1, 1.0, 1.3), 0.15, max_skip=3, retention_ratio=0.2),
    MagnitudeRatioThreshold((1.0,) * 10, threshold=1.0, max_skip=10, retention_ratio=0.5),
])
def test_a_run_split_where_the_whole_run_computes_decides_as_the_whole_run(policy):
    """Steps count in the whole schedule (curves, retention, warm-up, the last step): split at a
    step the run in one piece computes, each part makes exactly its decisions."""
    signals = growing_signal(10, 0.1)
    whole = schedule_letters(policy, 10, signals)
    split = next(i for i in range(4, 10) if whole[i] == "C")
    first = schedule_letters(policy, split, signals[:split], part=SchedulePart(0, split, 10))
    second = schedule_letters(policy, 10 - split, signals[split:], part=SchedulePart(split, 10, 10))
    assert first + second == whole
    assert "C" not in whole[split + 1:] or second != schedule_letters(policy, 10 - split, signals[split:])


def test_teacache_measures_afresh_in_each_part_of_a_split_run():
    """Its change signal needs the previous steps' inputs, which a new sampler run has not seen:
    the second part computes its first three steps, then decides as the run in one piece."""
    policy, signals = AdaptiveThreshold(IDENTITY, rel_l1_thresh=0.25), growing_signal(10, 0.1)
    assert schedule_letters(policy, 10, signals) == "CCCRRCRRCC"
    assert schedule_letters(policy, 5, signals[5:], part=SchedulePart(5, 10, 10)) == "CCCRC"


def test_a_fixed_schedule_split_anywhere_decides_as_the_whole_run():
    """FORA's phase is the step's place in the whole schedule: only the second part's first step
    is computed whatever the run in one piece did there (nothing is cached yet)."""
    policy = ReuseSchedule(interval=3, warmup_steps=1)
    whole = schedule_letters(policy, 10)
    for split in range(1, 10):
        second = schedule_letters(policy, 10 - split, part=SchedulePart(split, 10, 10))
        assert schedule_letters(policy, split, part=SchedulePart(0, split, 10)) + second == whole[:split] + "C" + whole[split + 1:]


def test_a_fallback_restarts_taylorseers_interval():
    """A forecast turned into a compute at step 3 counts as the last compute: the next compute is
    `interval` steps after it."""
    policy = TaylorForecastSchedule(interval=3, warmup_steps=2)
    assert schedule_letters(policy, 10, fallbacks=(3,)) == "CCCCFFCFFC"


class _CountingPolicy(ReuseSchedule):
    def new_run_memory(self) -> list:
        return []

    def observe_compute(self, ctx, memory: list) -> None:
        memory.append(ctx.step)


def test_a_fallback_tells_the_policy_like_any_computed_step():
    from cache_core.policies.base import SchedulePart
    from cache_core.run.step_schedule import SigmaWindow, StepSchedule

    policy = _CountingPolicy(interval=3)
    schedule = StepSchedule(policy, policy.new_run_memory(), SchedulePart(0, 6, 6),
                            SigmaWindow(1.0, 0.0, whole_schedule=True))
    for step in range(3):
        schedule.new_step(torch.tensor([1.0 - step / 6]))
        if schedule.decide(has_cache=True, signal=lambda: torch.zeros(1)) is not StepAction.COMPUTE and step == 2:
            schedule.fall_back()
    assert schedule.memory == [0, 2]   # step 0 decided computed, step 2 fell back; step 1 reused


def test_each_policy_chooses_what_stands_in_for_a_skipped_step():
    assert type(ReuseSchedule().new_predictor(None)) is LastResidual
    taylor = TaylorForecastSchedule(order=1).new_predictor(None)
    assert isinstance(taylor, TaylorResidual) and taylor.order == 1
    assert TaylorForecastSchedule().guard() is None
    assert TaylorForecastSchedule(guard_tolerance=0.1).guard().tolerance == 0.1
    assert all(p.guard() is None for p in (ReuseSchedule(), AlwaysCompute(), AdaptiveThreshold(IDENTITY)))


@pytest.mark.parametrize("make, message", [
    (lambda: ReuseSchedule(interval=0), "interval must be at least 1"),
    (lambda: TaylorForecastSchedule(order=4), "order must be 0..3"),
    (lambda: TaylorForecastSchedule(guard_tolerance=-1.0), "guard_tolerance must be between 0"),
    (lambda: AdaptiveThreshold(IDENTITY, rel_l1_thresh=-1.0), "rel_l1_thresh must be between 0 and 10"),
    (lambda: MagnitudeRatioThreshold((1.0, 1.0), threshold=-0.1), "threshold must be between 0 and 2"),
    (lambda: MagnitudeRatioThreshold((1.0, 1.0), retention_ratio=1.0), r"retention_ratio must be in \[0, 1\)"),
    (lambda: MagnitudeRatioThreshold((1.0,)), "ratios must hold two or more positive numbers"),
])
def test_settings_out_of_range_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_the_policies_and_the_run_engine_need_no_comfyui():
    """The policies and the run engine import torch only: a fresh interpreter imports them, every
    module of the run engine included, without ComfyUI."""
    root = Path(__file__).resolve().parents[2]
    code = (f"import importlib.util, sys; spec = importlib.util.spec_from_file_location('cache_core', "
            f"{str(root / 'cache_core' / '__init__.py')!r}, submodule_search_locations=[{str(root / 'cache_core')!r}]); "
            "m = importlib.util.module_from_spec(spec); sys.modules['cache_core'] = m; spec.loader.exec_module(m); "
            "import pkgutil, importlib, cache_core.policies, cache_core.run; "
            "[importlib.import_module('cache_core.run.' + m.name) for m in pkgutil.iter_modules(cache_core.run.__path__)]; "
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('comfy', 'comfy_api', 'nodes')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert issubclass(TaylorForecastSchedule, CachePolicy)
