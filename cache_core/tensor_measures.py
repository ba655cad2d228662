"""Change measures between two tensors, shared by the policies, the forecast guard and the
profiler so that all of them mean the same thing by "relative change"."""
from __future__ import annotations

import torch


def relative_l1(current: torch.Tensor, previous: torch.Tensor) -> float:
    """mean|current - previous| / mean|previous| (0 when previous is all zeros).

    Both means come back from the device in one read: each read waits for the GPU's queue."""
    numerator, denominator = torch.stack([(current - previous).abs().mean(), previous.abs().mean()]).tolist()
    return numerator / denominator if denominator else 0.0


def least_squares_scale(target: torch.Tensor, direction: torch.Tensor, low: float = 0.0, high: float = 1.0) -> float:
    """The s in [low, high] that minimises |target - s * direction|^2 (`high` when direction is
    all zeros, where s changes nothing); one read from the device."""
    direction = direction.float()
    dot, energy = torch.stack([(target.float() * direction).sum(), (direction * direction).sum()]).tolist()
    if energy == 0.0:
        return high
    return min(max(dot / energy, low), high)
