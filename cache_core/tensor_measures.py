"""Change measures between two tensors, shared by the policies, the forecast guard and the
profiler so that all of them mean the same thing by "relative change"."""
from __future__ import annotations

import torch


def relative_l1(current: torch.Tensor, previous: torch.Tensor) -> float:
    """mean|current - previous| / mean|previous| (0 when previous is all zeros).

    Both means come back from the device in one read: each read waits for the GPU's queue."""
    numerator, denominator = torch.stack([(current - previous).abs().mean(), previous.abs().mean()]).tolist()
    return numerator / denominator if denominator else 0.0


def fitted_scale_and_error(real: torch.Tensor, reused: torch.Tensor, added: torch.Tensor) -> tuple[float, float]:
    """Fit `reused + s * added` to `real` with s in [0, 1] (least squares; 1 when `added` is all
    zeros, where s changes nothing), and the relative L1 error of that fit against `real`.

    Computed on the tensors' device and read back in one transfer: the forecast guard needs
    both on every probed step, and each read waits for the GPU's queue."""
    target, direction = (real - reused).float(), added.float()
    energy = (direction * direction).sum()
    scale = torch.where(energy > 0, (target * direction).sum() / energy.clamp_min(torch.finfo(torch.float32).tiny),
                        torch.ones_like(energy)).clamp(0.0, 1.0)
    denominator = real.float().abs().mean()
    error = (target - scale * direction).abs().mean() / denominator.clamp_min(torch.finfo(torch.float32).tiny)
    error = torch.where(denominator > 0, error, torch.zeros_like(error))
    fitted_scale, fitted_error = torch.stack([scale, error]).tolist()
    return fitted_scale, fitted_error
