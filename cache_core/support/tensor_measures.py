"""Change measures between two tensors, shared by the policies, the forecast guard and the
profiler so that all of them mean the same thing by "relative change"."""
from __future__ import annotations

import math

import torch


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor, when_zero: float) -> torch.Tensor:
    """numerator / denominator, or `when_zero` where the denominator is 0, without a host read."""
    quotient = numerator / denominator.clamp_min(torch.finfo(torch.float32).tiny)
    return torch.where(denominator > 0, quotient, torch.full_like(quotient, when_zero))


def relative_l1_on_device(current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """mean|current - previous| / mean|previous| (0 when previous is all zeros), as a 0-d float32
    tensor on the inputs' device: nothing waits for the GPU until someone reads it."""
    return _ratio((current.float() - previous.float()).abs().mean(), previous.float().abs().mean(), 0.0)


def relative_l1(current: torch.Tensor, previous: torch.Tensor) -> float:
    """`relative_l1_on_device`, read (one read: each waits for the GPU's queue)."""
    return float(relative_l1_on_device(current, previous))


def fitted_scale_and_error(real: torch.Tensor, reused: torch.Tensor, added: torch.Tensor) -> tuple[float, float]:
    """Fit `reused + s * added` to `real` with s in [0, 1] (least squares; 1 when `added` is all
    zeros, where s changes nothing), and the relative L1 error of that fit against `real`.

    Computed on the tensors' device and read back in one transfer: the forecast guard needs
    both on every probed step, and each read waits for the GPU's queue."""
    target, direction = (real - reused).float(), added.float()
    scale = _ratio((target * direction).sum(), (direction * direction).sum(), 1.0).clamp(0.0, 1.0)
    error = _ratio((target - scale * direction).abs().mean(), real.float().abs().mean(), 0.0)
    fitted_scale, fitted_error = torch.stack([scale, error]).tolist()
    return fitted_scale, fitted_error


def batch_psnr(output: torch.Tensor, reference: torch.Tensor) -> list[float]:
    """PSNR of each batch element of a final latent against the uncached one, with the uncached
    latent's own range as the peak (an element reproduced exactly counts as 100 dB)."""
    out = []
    for o, r in zip(output.float(), reference.float()):
        mse = float(((o - r) ** 2).mean())
        peak = float(r.max() - r.min()) or 1.0
        out.append(100.0 if mse == 0 else min(100.0, 10 * math.log10(peak**2 / mse)))
    return out
