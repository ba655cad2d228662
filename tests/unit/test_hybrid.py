"""HyCa's hybrid stand-in (`H`): each hidden channel forecast by its own solver, and the
assignment fitted from recorded trajectories by backtesting and clustering."""
from __future__ import annotations

import pytest
import torch

from cache_core.calibration.channel_solvers import backtest_errors, fit_channel_solvers, kmeans
from cache_core.policies.planned import PlannedSchedule
from cache_core.profiles.profile_schema import SchemaError, check_profile
from cache_core.stand_ins.hybrid import CHANNEL_SOLVERS, ChannelSelection, majority
from cache_core.stand_ins.predictors import FoCaResidual, LastResidual, TaylorResidual

CHANNELS = 12


def fed(predictor, steps=(0, 2, 5)):
    g = torch.Generator().manual_seed(3)
    for step in steps:
        predictor.update(step, torch.randn(2, 5, CHANNELS, generator=g))
    return predictor


def planned(plan: str, solvers: str = ""):
    return PlannedSchedule(plan, channel_solvers=solvers).new_predictor(None)


@pytest.mark.parametrize("letter", list(CHANNEL_SOLVERS))
def test_an_assignment_of_one_solver_is_that_letter_bit_for_bit(letter):
    hybrid = fed(planned("CCRCCHH", letter * CHANNELS))
    alone = fed(planned("CCRCC" + letter * 2))
    like = torch.zeros(2, 5, CHANNELS)
    for step in (5, 6):
        assert torch.equal(hybrid.predict(step, like), alone.predict(step, like))
        assert torch.equal(hybrid.added_to(step, like + 1), alone.added_to(step, like + 1))


def test_each_channel_takes_its_own_solvers_forecast():
    solvers = "".join(CHANNEL_SOLVERS[c % 4] for c in range(CHANNELS))
    hybrid = fed(planned("CCRCCHHHH", solvers))
    own = {"R": fed(LastResidual(None)), "1": fed(TaylorResidual(None, 1)), "2": fed(TaylorResidual(None, 2)),
           "P": fed(FoCaResidual(None))}
    like = torch.zeros(2, 5, CHANNELS)
    for step in (6, 8):
        out = hybrid.predict(step, like)
        for c, letter in enumerate(solvers):
            assert torch.equal(out[..., c], own[letter].predict(step, like)[..., c]), (c, letter)


def test_a_tensor_of_another_width_is_forecast_by_the_solver_most_channels_use():
    solvers = "PPPPPPPP1122"
    assert majority(solvers) == "P"
    hybrid, foca = planned("CCRCCHH", solvers), FoCaResidual(None)
    g = torch.Generator().manual_seed(4)
    for step in (0, 2, 5):
        value = torch.randn(3, 7, generator=g)
        hybrid.update(step, value)
        foca.update(step, value)
    like = torch.zeros(3, 7)
    assert torch.equal(hybrid.predict(6, like), foca.predict(6, like))


def test_the_index_is_made_once_per_device():
    selection = ChannelSelection("R12P")
    assert selection.index_on(torch.device("cpu")) is selection.index_on(torch.device("cpu"))
    assert selection.used == "R12P" and ChannelSelection("2R2").used == "R2"


def test_h_steps_need_channel_solvers_of_known_letters():
    with pytest.raises(ValueError, match="channel solvers its calibration fitted"):
        PlannedSchedule("CHH")
    with pytest.raises(ValueError, match="one letter per hidden channel"):
        PlannedSchedule("CHH", channel_solvers="R1X")


def _trajectory(steps: int = 24, rows: int = 6) -> torch.Tensor:
    """Channels 0-3 move along a straight line in the step (Taylor 1 forecasts them exactly,
    reuse lags), channels 4-7 flip sign every step around a constant (every forecast overshoots,
    reuse is off by the flip only)."""
    t = torch.arange(steps, dtype=torch.float64).view(steps, 1, 1)
    g = torch.Generator().manual_seed(5)
    slope = torch.randn(1, rows, 4, generator=g, dtype=torch.float64)
    start = torch.randn(1, rows, 4, generator=g, dtype=torch.float64)
    level = torch.randn(1, rows, 4, generator=g, dtype=torch.float64)
    linear = start + slope * t
    flipping = level + 0.05 * (-1.0) ** t * torch.ones(1, rows, 4, dtype=torch.float64)
    return torch.cat([linear, flipping], dim=-1)


def test_the_backtest_scores_each_solver_against_the_steps_between_anchors():
    errors = backtest_errors([_trajectory()])
    assert errors.shape == (len(CHANNEL_SOLVERS), 8)
    linear, flipping = errors[:, :4], errors[:, 4:]
    assert torch.all(linear[1:] < 1e-18)                 # Taylor 1, 2 and FoCa are exact on a line
    assert torch.all(linear[0] > 1.0)                     # reuse lags it
    assert torch.all(flipping[0] < flipping[1:].min(dim=0).values)   # forecasts overshoot the flips


def test_reuse_error_is_the_squared_change_over_every_skipped_step():
    trajectory = _trajectory(steps=8, rows=1)
    errors = backtest_errors([trajectory], distances=(2,))
    # anchors at steps 4..6 (three computed steps two apart fit from step 4), one step forecast each
    expected = sum((trajectory[a + 1] - trajectory[a]).pow(2).sum(dim=0) for a in (4, 5, 6))
    assert torch.allclose(errors[0], expected)


def test_the_fit_gives_each_cluster_the_solver_that_forecast_it_best():
    fit = fit_channel_solvers([_trajectory(), _trajectory() * 2])
    assert fit is not None and len(fit.solvers) == 8
    assert set(fit.solvers[4:]) == {"R"} and "R" not in fit.solvers[:4]
    assert fit.errors["R"] == 1.0 and fit.errors["hybrid"] < min(fit.errors[k] for k in CHANNEL_SOLVERS)
    assert fit_channel_solvers([]) is None


def test_kmeans_is_deterministic_and_separates_far_groups():
    points = torch.cat([torch.zeros(5, 2), torch.full((5, 2), 10.0)]) + torch.linspace(0, 0.1, 10).view(-1, 1)
    labels = kmeans(points, 2)
    assert torch.equal(labels, kmeans(points, 2))
    assert len(set(labels[:5].tolist())) == 1 and len(set(labels[5:].tolist())) == 1 and labels[0] != labels[5]


def _profile(plan: str, channel_solvers=None) -> dict:
    steps = len(plan)
    calibration = {"plans": [{"speedup": 2.0, "computes": plan.count("C"), "plan": plan, "psnr_worst": 30.0}]}
    if channel_solvers is not None:
        calibration["channel_solvers"] = channel_solvers
    return {"family": "flux", "blocks": ["a", "b"], "steps": steps, "sigmas": [1.0 - i / steps for i in range(steps)],
            "modulated_input_rel_l1": [None] * steps, "output_rel_l1": [None] * steps,
            "block_rel_l1": [[None, None]] * steps, "block_cosine": [[None, None]] * steps,
            "teacache_coefficients": [], "suggested_fora_interval": 2, "calibration": calibration}


def test_a_profile_with_h_steps_needs_its_channel_solvers():
    check_profile(_profile("CCHHC", {"solvers": "R12P"}))
    with pytest.raises(SchemaError, match="no calibration.channel_solvers"):
        check_profile(_profile("CCHHC"))
    with pytest.raises(SchemaError, match="channel_solvers.solvers"):
        check_profile(_profile("CCHHC", {"solvers": "R9"}))


def test_a_profiles_residual_gains_are_one_per_step_within_range():
    profile = _profile("CCRRC")
    plan = profile["calibration"]["plans"][0]
    plan["residual_gains"] = [1.0, 1.0, 0.9, 1.1, 1.0]
    check_profile(profile)
    plan["residual_gains"] = [1.0, 0.9]
    with pytest.raises(SchemaError, match="residual_gains must be a list of 5 numbers"):
        check_profile(profile)
    plan["residual_gains"] = [1.0, 1.0, 9.0, 1.0, 1.0]
    with pytest.raises(SchemaError, match=r"residual_gains\[2\] must be a number between 0 and 2"):
        check_profile(profile)
