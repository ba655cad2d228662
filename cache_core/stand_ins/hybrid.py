"""HyCa's hybrid forecast: each hidden channel of a cached residual is forecast by the solver that
forecast that channel best on the calibration's uncached runs (calibration/channel_solvers.py
assigns them). The candidates are reuse, Taylor 1, Taylor 2 and FoCa; Adams-Bashforth 2 over the
computed residuals is Taylor 2 here (its slope extrapolation, (1 + h/2g) s0 - (h/2g) s1, is
Taylor 2's series in the divided differences TaylorResidual keeps), so it is not a candidate of
its own. Every candidate is linear in what Taylor 2 keeps (the last residual and its first and
second divided differences), so the hybrid holds no more than Taylor 2 does and reads nothing back
from the device: each candidate's forecast is formed as its own letter would form it, and each
channel takes its own solver's (so an assignment of one solver is that solver bit for bit)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .predictors import TaylorResidual

CHANNEL_SOLVERS = "R12P"   # per channel: reuse, Taylor order 1, Taylor order 2, FoCa


def check_channel_solvers(solvers: str) -> None:
    if not solvers or set(solvers) - set(CHANNEL_SOLVERS):
        raise ValueError(f"channel solvers are one letter per hidden channel out of {', '.join(CHANNEL_SOLVERS)} "
                         f"(got {solvers[:40]!r}{'...' if len(solvers) > 40 else ''})")


def majority(solvers: str) -> str:
    """The solver most channels use (the earlier letter on a tie)."""
    return max(CHANNEL_SOLVERS, key=lambda letter: (solvers.count(letter), -CHANNEL_SOLVERS.index(letter)))


class ChannelSelection:
    """An assignment of solvers to channels, with its per-channel index kept on each device it is
    used on (made once per device, not per step)."""

    def __init__(self, solvers: str) -> None:
        check_channel_solvers(solvers)
        self.solvers = solvers
        self.used = "".join(letter for letter in CHANNEL_SOLVERS if letter in solvers)
        self._index: dict[torch.device, torch.Tensor] = {}

    def index_on(self, device: torch.device) -> torch.Tensor:
        if device not in self._index:
            self._index[device] = torch.tensor([CHANNEL_SOLVERS.index(s) for s in self.solvers], dtype=torch.int8,
                                               device=device)
        return self._index[device]


def hybrid_forecast(predictor: "TaylorResidual", step: int, like: torch.Tensor, scale: float,
                    selection: ChannelSelection) -> torch.Tensor:
    """Each channel (the last dimension) forecast by its own solver. A tensor whose channels are
    not the assignment's (another stream's width) is forecast by the solver most channels use."""
    def candidate(letter: str) -> torch.Tensor:
        if letter == "P":
            return predictor.foca_forecast(step, like, scale)
        return predictor.series(step, like, scale, CHANNEL_SOLVERS.index(letter))

    if len(selection.used) == 1 or like.shape[-1] != len(selection.solvers):
        return candidate(selection.used if len(selection.used) == 1 else majority(selection.solvers))
    index = selection.index_on(like.device)
    out = None
    for letter in selection.used:
        forecast = candidate(letter)
        out = forecast if out is None else torch.where(index == CHANNEL_SOLVERS.index(letter), forecast, out)
    return out
