"""What stands in for a block (or the whole stack) on a step that is not computed.

A predictor is fed the residual (output - input) on computed steps and asked for one on the
others. `LastResidual` is plain reuse (FORA, TeaCache); `TaylorResidual` extrapolates with
finite-difference derivatives in the step index (TaylorSeer); `FoCaResidual` forecasts and
calibrates from the same derivatives (FoCa). Tensors live on the run's cache
device, in the model's dtype; predictions come back on the caller's device.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch

from .hybrid import ChannelSelection, hybrid_forecast


FOCA = -1     # a planned step's "order" when FoCa forecasts it (PlannedTaylorResidual)
HYBRID = -2   # ... when each channel is forecast by its own solver (HyCa: hybrid.py)


class ResidualPredictor(ABC):
    """Holds what one feature needs to be substituted on skipped steps."""

    def __init__(self, cache_device: torch.device | None) -> None:
        self.cache_device = cache_device

    @abstractmethod
    def update(self, step: int, residual: torch.Tensor) -> None:
        """Record the residual computed at `step`. A step's first computed call stands for it: a
        sampler's further evaluations of the step (heun's, dpm_2's) are not recorded again, so a
        forecast's steps stay apart."""

    @abstractmethod
    def predict(self, step: int, like: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """The residual to use at `step`, on `like`'s device and dtype; `scale` multiplies what a
        forecast adds to the last computed residual (0: that residual itself)."""

    @abstractmethod
    def tensors(self) -> list[torch.Tensor]:
        """Everything held, for memory accounting."""

    def added_to(self, step: int, base: torch.Tensor) -> torch.Tensor:
        """`base` plus the residual for `step` (a block's stand-in: its input plus its residual)."""
        return base + self.predict(step, base)

    def ready(self, like: torch.Tensor) -> bool:
        """Whether a prediction for a tensor shaped like `like` can be made."""
        held = self.tensors()
        return bool(held) and held[0].shape == like.shape

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors())

    def _store(self, t: torch.Tensor) -> torch.Tensor:
        return t.detach().to(self.cache_device) if self.cache_device is not None else t.detach()


class LastResidual(ResidualPredictor):
    """Reuse: the residual of the last computed step, unchanged."""

    def __init__(self, cache_device: torch.device | None) -> None:
        super().__init__(cache_device)
        self.residual: torch.Tensor | None = None
        self.step: int | None = None

    def update(self, step: int, residual: torch.Tensor) -> None:
        if step != self.step:
            self.residual, self.step = self._store(residual), step

    def predict(self, step: int, like: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return self.residual.to(device=like.device, dtype=like.dtype)

    def tensors(self) -> list[torch.Tensor]:
        return [] if self.residual is None else [self.residual]


class TaylorResidual(ResidualPredictor):
    """TaylorSeer: derivatives up to `order` from successive computed steps; the forecast is
    the Taylor series in the distance (in steps) from the last computed step. Order 0 is reuse."""

    def __init__(self, cache_device: torch.device | None, order: int) -> None:
        super().__init__(cache_device)
        self.order = order
        self.derivatives: list[torch.Tensor] = []
        self.last_step: int | None = None
        self.gaps: tuple[float, ...] = ()     # the distances between the last computed steps, latest first

    def update(self, step: int, residual: torch.Tensor) -> None:
        if step == self.last_step:
            return
        new = [self._store(residual)]
        if self.last_step is not None and step > self.last_step:
            distance = float(step - self.last_step)
            for k in range(min(self.order, len(self.derivatives))):
                new.append((new[k] - self.derivatives[k]) / distance)
            self.gaps = (distance, *self.gaps[:1])
        self.derivatives = new
        self.last_step = step

    def predict(self, step: int, like: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return self.series(step, like, scale, len(self.derivatives) - 1)

    def series(self, step: int, like: torch.Tensor, scale: float, order: int) -> torch.Tensor:
        """The Taylor series up to `order` (at most the derivatives held), `scale` on its terms."""
        # In the stored dtype with fused multiply-adds: float32 round trips held TaylorSeer
        # per-block forecasts at 0.77 of their ideal speedup on FLUX.1-dev (H100, bench/gpu_speed.py);
        # this way they reached 0.88 there.
        distance = float(step - self.last_step)
        out = self.derivatives[0].to(device=like.device, dtype=like.dtype, copy=True)
        for k in range(1, min(order, len(self.derivatives) - 1) + 1):
            out.add_(self.derivatives[k].to(device=like.device, dtype=like.dtype),
                     alpha=scale * distance**k / math.factorial(k))
        return out

    def foca_forecast(self, step: int, like: torch.Tensor, scale: float) -> torch.Tensor:
        """FoCaResidual's forecast, from the derivatives held (fewer than three: the Taylor series)."""
        if len(self.derivatives) < 3 or len(self.gaps) < 2:
            return self.series(step, like, scale, len(self.derivatives) - 1)
        h = float(step - self.last_step)
        g, g1 = self.gaps
        out = self.derivatives[0].to(device=like.device, dtype=like.dtype, copy=True)
        out.add_(self.derivatives[1].to(device=like.device, dtype=like.dtype), alpha=scale * h)
        out.add_(self.derivatives[2].to(device=like.device, dtype=like.dtype),
                 alpha=scale * h * (g + h / 2) * g / (g + g1))
        return out

    def added_to(self, step: int, base: torch.Tensor) -> torch.Tensor:
        # the forecast is a fresh tensor: add the base into it rather than into a third one
        # (addition commutes exactly, so this equals base + forecast bit for bit)
        return self.predict(step, base).add_(base)

    def tensors(self) -> list[torch.Tensor]:
        return list(self.derivatives)


class FoCaResidual(TaylorResidual):
    """FoCa (forecast then calibrate), read as a predictor-corrector over the last three computed
    residuals at their steps t2 < t1 < t0: the forecast is the quadratic through them, P(t) =
    F0 + D1 h + D2 h (h + g) (h = t - t0, g = t0 - t1, D1 and D2 their first and second divided
    differences), and the calibration a trapezoidal step that averages the slope at the anchor,
    P'(t0), with the slope the forecast implies, (P(t) - F0) / h: F0 + D1 h + D2 h (g + h / 2),
    which halves the curvature term of the forecast. The divided differences come from the Taylor
    derivatives kept for order 2 (D2 = d2 g / (g + g1)), so it holds no more than Taylor 2 does;
    with two residuals it is Taylor 1, bit for bit, with one plain reuse."""

    def __init__(self, cache_device: torch.device | None) -> None:
        super().__init__(cache_device, order=2)

    def predict(self, step: int, like: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return self.foca_forecast(step, like, scale)


class PlannedTaylorResidual(TaylorResidual):
    """A Taylor forecast whose order is chosen per skipped step (a calibrated plan: 0 is reuse,
    FOCA FoCa, HYBRID each channel its own solver out of `channel_solvers`), from derivatives kept
    up to the highest order the plan uses; a step in `gains` has its forecast multiplied by its
    gain (ERTACache's residual correction)."""

    def __init__(self, cache_device: torch.device | None, orders: dict[int, int], channel_solvers: str = "",
                 gains: dict[int, float] | None = None) -> None:
        super().__init__(cache_device, max((2 if o < 0 else o for o in orders.values()), default=0))
        self.orders = orders
        self.selection = ChannelSelection(channel_solvers) if channel_solvers else None
        self.gains = gains or {}

    def predict(self, step: int, like: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        order = self.orders.get(step, 0)
        if order == HYBRID and self.selection is not None:
            out = hybrid_forecast(self, step, like, scale, self.selection)
        else:
            out = self.foca_forecast(step, like, scale) if order < 0 else self.series(step, like, scale, order)
        gain = self.gains.get(step, 1.0)
        return out if gain == 1.0 else out.mul_(gain)
