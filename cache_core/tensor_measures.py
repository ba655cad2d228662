"""Change measures between two tensors, shared by the policies, the forecast guard and the
profiler so that all of them mean the same thing by "relative change"."""
from __future__ import annotations

import torch


def relative_l1(current: torch.Tensor, previous: torch.Tensor) -> float:
    """mean|current - previous| / mean|previous| (0 when previous is all zeros)."""
    denominator = previous.abs().mean()
    if float(denominator) == 0.0:
        return 0.0
    return float((current - previous).abs().mean() / denominator)
