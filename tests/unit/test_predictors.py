"""Predictors in isolation: what stands in for a skipped feature."""
import pytest
import torch

from cache_core.predictors import LastResidual, TaylorResidual
from cache_core.deferred_read import DeferredRead
from cache_core.tensor_measures import fitted_scale_and_error, relative_l1


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


def test_taylor_second_order_extrapolates_a_parabola_exactly():
    taylor = TaylorResidual(None, order=2)
    for step in (0, 1, 2):
        taylor.update(step, torch.tensor([float(step**2)]))
    # finite differences of step^2 with unit spacing are exact up to the backward-difference shift
    predicted = taylor.predict(3, torch.zeros(1))
    assert torch.allclose(predicted, torch.tensor([4.0 + 3.0 * 1 + 2.0 / 2]))


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
    from cache_core.output_cache import OutputStream, direction

    x, denoised, sigma = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3), torch.tensor([0.8, 0.5])
    stream = OutputStream(direction(x, sigma, denoised, None), weights=())
    assert torch.allclose(stream.stand_in(x, sigma), denoised, atol=1e-6)     # same point: the same output
    later = x * 0.9
    expected = later - sigma.view(2, 1, 1, 1) * (x - denoised) / sigma.view(2, 1, 1, 1)
    assert torch.allclose(stream.stand_in(later, sigma), expected, atol=1e-6)
    assert stream.nbytes() == x.numel() * 4
