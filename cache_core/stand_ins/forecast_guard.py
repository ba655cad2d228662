"""The forecast guard: check a skipped step's forecast on the first block before trusting it.

On a guarded skipped step the first block is computed for real (the *probe*). Its forecast is
its last computed residual plus what the Taylor terms add; the scale of those terms that brings
the forecast closest to the block's real residual (0 = plain reuse, 1 = the full extrapolation)
says how much of the extrapolation the model followed at this step, and the whole stack is then
forecast at that scale. When the first block's forecast at that scale is still off by more than
the tolerance (relative L1), the step is computed in full instead (a *fallback*).

`ForecastGuard` is a policy's setting; `FirstBlockProbe` is what one batch layout keeps during a
run: the first block's own residual history and, during a call, its input.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..support.log import get_logger
from .predictors import ResidualPredictor
from ..support.tensor_measures import fitted_scale_and_error

log = get_logger(__name__)


@dataclass(frozen=True)
class ForecastGuard:
    tolerance: float

    def new_probe(self, predictor: ResidualPredictor, copy_input: bool) -> FirstBlockProbe:
        return FirstBlockProbe(self.tolerance, predictor, copy_input)


class FirstBlockProbe:
    """The first block's residuals of one batch layout, and the check of one probed step."""

    def __init__(self, tolerance: float, predictor: ResidualPredictor, copy_input: bool) -> None:
        self.tolerance = tolerance
        self.predictor = predictor
        self.copy_input = copy_input   # the blocks add into their inputs in place
        self.first_block_input: torch.Tensor | None = None
        self.probing = False           # this skipped step's first block is being computed

    def ready(self, img: torch.Tensor) -> bool:
        """Whether a forecast of the first block can be checked for an input shaped like `img`."""
        return self.predictor.ready(img)

    def keep_input(self, img: torch.Tensor) -> None:
        """Called before the first block runs, on every step the block is computed."""
        self.first_block_input = img.clone() if self.copy_input else img

    def record(self, step: int, out_img: torch.Tensor) -> None:
        """Feed a computed first block's residual to the history, if its input was kept."""
        if self.first_block_input is not None:
            self.predictor.update(step, out_img - self.first_block_input)
            self.first_block_input = None

    def fitted_scale(self, step: int, out_img: torch.Tensor, label: str) -> float | None:
        """The scale to forecast this step's stack at, or None when the forecast is not trusted.
        An accepted probe is not recorded: the history holds computed steps only."""
        real = out_img - self.first_block_input
        reused = self.predictor.predict(step, real, scale=0.0)
        added = self.predictor.predict(step, real) - reused
        scale, error = fitted_scale_and_error(real, reused, added)
        log.debug("step %d: %s forecast scale %.3f, error %.4f (tolerance %s)", step, label, scale, error,
                  self.tolerance)
        if error > self.tolerance:
            return None
        self.first_block_input = None
        return scale
