"""ERTACache's residual correction: per skipped step, the least-squares gain on the stand-in's
residual, fitted by replaying the plan on recorded trajectories, and applied by the predictor."""
from __future__ import annotations

import pytest
import torch

from cache_core.calibration.residual_gains import residual_gains
from cache_core.policies.planned import PlannedSchedule


def _shrinking(steps: int, rate: float = 0.9) -> torch.Tensor:
    """A residual that shrinks by `rate` every step: reuse from step s at t is off by rate**(t-s)."""
    direction = torch.randn(1, 3, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    return torch.stack([direction[0] * rate**t for t in range(steps)])


def test_reuse_gains_undo_a_residual_that_shrinks_geometrically():
    plan = "CRRCRRV"
    gains = residual_gains(PlannedSchedule(plan), [_shrinking(len(plan))], first_step=0)
    assert gains[0] == gains[3] == gains[6] == 1.0             # computed and V steps keep 1
    for step, source in ((1, 0), (2, 0), (4, 3), (5, 3)):
        assert gains[step] == pytest.approx(0.9 ** (step - source))


def test_gains_are_fitted_from_the_recorded_steps_on():
    """A recording of the second part of a split schedule (its steps from 3 on)."""
    plan = "CCCCRRCR"
    gains = residual_gains(PlannedSchedule(plan), [_shrinking(5)], first_step=3)
    assert gains[:4] == (1.0,) * 4 and gains[4] == pytest.approx(0.9) and gains[7] == pytest.approx(0.9)


def test_a_forecast_the_recording_makes_exact_keeps_gain_one():
    t = torch.arange(6, dtype=torch.float64).view(6, 1, 1)
    line = 1.0 + 0.5 * t * torch.ones(6, 2, 4, dtype=torch.float64)
    gains = residual_gains(PlannedSchedule("CC1C11"), [line], first_step=0)
    assert gains == pytest.approx((1.0,) * 6)


def _fed(policy):
    predictor = policy.new_predictor(None)
    for step, value in ((0, 1.0), (1, 3.0)):
        predictor.update(step, torch.full((2, 4), value))
    return predictor


def test_gain_one_is_no_gain_bit_for_bit_and_a_gain_multiplies_the_forecast():
    like = torch.zeros(2, 4)
    plain = _fed(PlannedSchedule("CC11"))
    ones = _fed(PlannedSchedule("CC11", residual_gains=(1.0,) * 4))
    scaled = _fed(PlannedSchedule("CC11", residual_gains=(1.0, 1.0, 0.5, 1.0)))
    for step in (2, 3):
        assert torch.equal(ones.predict(step, like), plain.predict(step, like))
    assert torch.equal(scaled.predict(2, like), plain.predict(2, like) * 0.5)
    assert torch.equal(scaled.predict(3, like), plain.predict(3, like))


def test_gains_are_one_per_step():
    with pytest.raises(ValueError, match="residual gains are one per step of the plan"):
        PlannedSchedule("CRR", residual_gains=(1.0, 0.9))
