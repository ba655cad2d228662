"""Predictors in isolation: what stands in for a skipped feature."""
import torch

from comfyui_dit_cache.cache_core.predictors import LastResidual, TaylorResidual


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
