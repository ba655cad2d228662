"""Predictors in isolation: what stands in for a skipped feature."""
import pytest
import torch

from cache_core.stand_ins.predictors import LastResidual, TaylorResidual
from cache_core.support.deferred_read import DeferredRead
from cache_core.support.tensor_measures import fitted_scale_and_error, relative_l1


def test_taylor_order_zero_is_plain_reuse():
    reuse, taylor = LastResidual(None), TaylorResidual(None, order=0)
    for step, value in [(0, 1.0), (3, 4.0)]:
        reuse.update(step, torch.full((2, 3), value))
        taylor.update(step, torch.full((2, 3), value))
    like = torch.zeros(2, 3)
    assert torch.equal(taylor.predict(5, like), reuse.predict(5, like))


def test_taylor_first_order_extrapolates_a_line_exactly():
    taylor = TaylorResidual(None, order=1)
    taylor.update(0, torch.tensor([1.0]))
    taylor.update(2, torch.tensor([5.0]))       # slope 2 per step
    assert torch.allclose(taylor.predict(4, torch.zeros(1)), torch.tensor([9.0]))


def test_taylor_second_order_is_the_taylor_series_of_backward_differences():
    """TaylorSeer's derivatives are backward differences at the last computed step, so its second-
    order forecast of a parabola is not exact: it misses k * f'' / 2 at distance k (the backward-
    difference interpolation would add k(k+1)/2 * f'', not k^2/2). Expected values from numpy's
    differences, and the true parabola for the gap."""
    import math

    import numpy as np

    steps = np.arange(3)
    values = steps.astype(float) ** 2
    taylor = TaylorResidual(None, order=2)
    for step, value in zip(steps, values):
        taylor.update(int(step), torch.tensor([float(value)]))
    first, second = np.diff(values)[-1], np.diff(values, n=2)[-1]      # 3 and 2 at step 2
    for k in (1, 2, 3):
        expected = values[-1] + k * first + k**2 / 2 * second
        predicted = taylor.predict(2 + k, torch.zeros(1))
        assert float(predicted) == pytest.approx(expected)
        true = np.polyval(np.polyfit(steps, values, 2), 2 + k)      # the parabola itself: (2 + k)^2
        assert true == pytest.approx((2 + k) ** 2)
        assert true - float(predicted) == pytest.approx(k * second / 2)
    assert math.isclose(float(taylor.predict(3, torch.zeros(1))), 8.0)   # (not the parabola's 9)


def test_cache_device_holds_the_tensors_and_predictions_return_to_the_caller():
    store = LastResidual(torch.device("cpu"))
    store.update(0, torch.ones(4, dtype=torch.float16))
    assert store.residual.device.type == "cpu" and store.nbytes() == 8
    assert store.predict(1, torch.zeros(4, dtype=torch.float32)).dtype == torch.float32


def test_a_scale_multiplies_only_what_the_forecast_adds():
    predictor = TaylorResidual(None, order=2)
    for step in range(3):
        predictor.update(step, torch.full((2, 3), float(step * step)))
    reused = predictor.predict(4, torch.zeros(2, 3), scale=0.0)
    full = predictor.predict(4, torch.zeros(2, 3))
    assert torch.equal(reused, torch.full((2, 3), 4.0))
    assert torch.allclose(predictor.predict(4, torch.zeros(2, 3), scale=0.25), reused + 0.25 * (full - reused))


@pytest.mark.parametrize("true_scale, fitted", [(0.3, 0.3), (1.7, 1.0), (-0.5, 0.0)])
def test_the_fitted_scale_is_least_squares_clamped_to_0_1(true_scale, fitted):
    g = torch.Generator().manual_seed(0)
    reused, added, noise = (torch.randn(4, 5, generator=g) for _ in range(3))
    real = reused + true_scale * added + 0.01 * noise
    scale, error = fitted_scale_and_error(real, reused, added)
    assert scale == pytest.approx(fitted, abs=0.01)
    assert error == pytest.approx(relative_l1(reused + scale * added, real), rel=1e-5)


def test_nothing_to_scale_fits_at_one_and_an_all_zero_target_has_no_error():
    assert fitted_scale_and_error(torch.ones(3), torch.ones(3), torch.zeros(3)) == (1.0, 0.0)
    scale, error = fitted_scale_and_error(torch.zeros(3), torch.zeros(3), torch.ones(3))
    assert (scale, error) == (0.0, 0.0)


def test_a_deferred_read_gives_the_values_it_was_handed():
    assert DeferredRead(torch.tensor([0.25, 3.0])).values() == [0.25, 3.0]
    assert DeferredRead(torch.tensor(2.5, dtype=torch.bfloat16)).values() == [2.5]



def test_the_reused_output_is_the_last_direction_from_this_latent():
    """Hand-derived: row 0 was computed at x = 2, sigma 0.5 with denoised 1 (direction
    (2 - 1) / 0.5 = 2); at x = 1.5, sigma 0.25 the stand-in is 1.5 - 0.25 * 2 = 1.0. Row 1: x = -1,
    sigma 0.8, denoised 0.6 (direction -2); at x = -0.5, sigma 0.4: -0.5 + 0.4 * 2 = 0.3."""
    from cache_core.stand_ins.output_stand_in import OutputStream, direction

    def rows(a: float, b: float) -> torch.Tensor:
        return torch.stack([torch.full((4, 3, 3), a), torch.full((4, 3, 3), b)])

    x, denoised, sigma = rows(2.0, -1.0), rows(1.0, 0.6), torch.tensor([0.5, 0.8])
    stream = OutputStream(direction(x, sigma, denoised, None), weights=())
    assert torch.allclose(stream.stand_in(x, sigma), denoised, atol=1e-6)     # same point: the same output
    assert torch.allclose(stream.stand_in(rows(1.5, -0.5), torch.tensor([0.25, 0.4])), rows(1.0, 0.3), atol=1e-6)
    assert stream.nbytes() == x.numel() * 4


def test_foca_with_two_computed_steps_is_taylor_one_bit_for_bit_and_with_one_reuse():
    from cache_core.stand_ins.predictors import FoCaResidual

    torch.manual_seed(0)
    residuals = [(0, torch.randn(2, 5, 7)), (3, torch.randn(2, 5, 7))]
    foca, taylor1, reuse = FoCaResidual(None), TaylorResidual(None, order=1), LastResidual(None)
    foca.update(*residuals[0])
    reuse.update(*residuals[0])
    like = torch.zeros(2, 5, 7)
    assert torch.equal(foca.predict(2, like), reuse.predict(2, like))
    for step, value in residuals:
        taylor1.update(step, value)
    foca.update(*residuals[1])
    for step in (4, 5, 7):
        assert torch.equal(foca.predict(step, like), taylor1.predict(step, like))
        assert torch.equal(foca.added_to(step, like + 1), taylor1.added_to(step, like + 1))


def test_foca_forecasts_the_quadratic_through_three_steps_with_its_curvature_halved():
    """At uneven gaps (steps 0, 3, 5): the forecast at t is F0 + D1 h + D2 h (g + h/2), F0 the
    last residual, D1 and D2 numpy's divided differences, h = t - 5, g = 2; the full quadratic
    (Lagrange through the three points) would have D2 h (h + g)."""
    import numpy as np

    from cache_core.stand_ins.predictors import FoCaResidual

    steps = np.array([0.0, 3.0, 5.0])
    rng = np.random.default_rng(1)
    values = rng.normal(size=(3, 4, 6))
    foca = FoCaResidual(None)
    for step, value in zip(steps, values):
        foca.update(int(step), torch.tensor(value, dtype=torch.float64))
    d1 = (values[2] - values[1]) / (steps[2] - steps[1])
    d2 = (d1 - (values[1] - values[0]) / (steps[1] - steps[0])) / (steps[2] - steps[0])
    for t in (6.0, 7.0, 9.0):
        h, g = t - steps[2], steps[2] - steps[1]
        expected = values[2] + d1 * h + d2 * h * (g + h / 2)
        quadratic = sum(values[i] * np.prod([(t - steps[j]) / (steps[i] - steps[j]) for j in range(3) if j != i])
                        for i in range(3))
        assert np.allclose(foca.predict(int(t), torch.zeros(4, 6, dtype=torch.float64)).numpy(), expected)
        assert np.allclose(values[2] + d1 * h + d2 * h * (h + g), quadratic)   # the forecast it calibrates
        scaled = foca.predict(int(t), torch.zeros(4, 6, dtype=torch.float64), scale=0.5).numpy()
        assert np.allclose(scaled, values[2] + 0.5 * (expected - values[2]))


def test_a_plan_step_marked_p_is_forecast_by_foca():
    from cache_core.policies import PlannedSchedule
    from cache_core.stand_ins.predictors import FoCaResidual

    plan = PlannedSchedule("CCCCP2")
    planned, foca, taylor2 = plan.new_predictor(None), FoCaResidual(None), TaylorResidual(None, order=2)
    torch.manual_seed(2)
    for step in range(4):
        value = torch.randn(3, 3)
        for predictor in (planned, foca, taylor2):
            predictor.update(step, value)
    like = torch.zeros(3, 3)
    assert torch.equal(planned.predict(4, like), foca.predict(4, like))
    assert torch.equal(planned.predict(5, like), taylor2.predict(5, like))
    # one step on at even gaps FoCa's curvature weight is 3/4 where Taylor 2's is 1/2 (two steps
    # on, both are 2)
    assert not torch.equal(foca.predict(4, like), taylor2.predict(4, like))
