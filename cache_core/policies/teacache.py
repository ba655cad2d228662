"""TeaCache-style adaptive threshold: reuse the whole-stack residual while the accumulated,
rescaled relative L1 change of the first block's modulated input stays under a threshold.

The rescale polynomial maps the input change to the expected output change; the published
presets below are the TeaCache authors' (coefficients highest power first, as numpy.polyval),
and a Block Profiler profile fits one for the model actually in use.

Each step's change is measured on the GPU and used `DECISION_LAG` (2) steps later: step t adds
the change measured at step t-2, which stands for its own (the change varies smoothly from step
to step). Reading step t's own change before deciding step t makes the host wait for the GPU on
every step, and the GPU then idles while Python prepares the step (deferred_read.py). Steps 1
and 2 have no measured change yet and are always computed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..deferred_read import DeferredRead
from ..tensor_measures import relative_l1_on_device
from .base import CachePolicy, StepAction, StepContext

# name -> (coefficients, recommended threshold, family)
TEACACHE_PRESETS: dict[str, tuple[tuple[float, ...], float, str]] = {
    "flux": ((4.98651651e02, -2.83781631e02, 5.58554382e01, -3.82021401e00, 2.64230861e-01), 0.4, "flux"),
    "hunyuan_video": ((7.33226126e02, -4.01131952e02, 6.75869174e01, -3.14987800e00, 9.61237896e-02), 0.15, "hunyuan_video"),
    "wan2.1_t2v_1.3b": ((2.39676752e03, -1.31110545e03, 2.01331979e02, -8.29855975e00, 1.37887774e-01), 0.08, "wan"),
    "wan2.1_t2v_14b": ((-5784.54975374, 5449.50911966, -1811.16591783, 256.27178429, -13.02252404), 0.2, "wan"),
    "wan2.1_i2v_480p": ((-3.02331670e02, 2.23948934e02, -5.25463970e01, 5.87348440e00, -2.01973289e-01), 0.26, "wan"),
    "wan2.1_i2v_720p": ((-114.36346466, 65.26524496, -18.82220707, 4.91518089, -0.23412683), 0.25, "wan"),
}

# Steps between measuring a change and deciding with it. One is not enough: on the second skipped
# step after a compute, the change measured on the first lies behind that compute's blocks in the
# GPU's queue, and the host waits for all of them (FLUX.1-dev on an H100: 0.94 of the ideal
# speedup with 1, as with 0; 0.99 with 2).
DECISION_LAG = 2

DEFAULT_PRESET_FOR_FAMILY = {"flux": "flux", "hunyuan_video": "hunyuan_video", "wan": "wan2.1_t2v_1.3b"}


def polyval(coefficients: tuple[float, ...], x: float) -> float:
    """numpy.polyval without numpy: highest power first."""
    out = 0.0
    for c in coefficients:
        out = out * x + c
    return out


@dataclass
class _ThresholdMemo:
    previous_signal: torch.Tensor | None = None
    measured_changes: list[DeferredRead | None] = field(default_factory=list)   # of the last steps, on their way
    accumulated: float = 0.0


@dataclass(frozen=True)
class AdaptiveThreshold(CachePolicy):
    rel_l1_thresh: float = 0.4
    coefficients: tuple[float, ...] = field(default=TEACACHE_PRESETS["flux"][0])
    max_consecutive_reuse: int = 0   # 0: no limit

    name = "TeaCache"
    skip_action = StepAction.REUSE

    def __post_init__(self) -> None:
        if not 0.0 <= self.rel_l1_thresh <= 10.0:
            raise ValueError(f"rel_l1_thresh must be between 0 and 10 (got {self.rel_l1_thresh}); FLUX starts at 0.4")
        if self.max_consecutive_reuse < 0:
            raise ValueError(f"max_consecutive_reuse must be 0 (no limit) or more (got {self.max_consecutive_reuse})")
        if not self.coefficients:
            raise ValueError("coefficients must hold at least one number")

    def new_memo(self) -> _ThresholdMemo:
        return _ThresholdMemo()

    def decide(self, ctx: StepContext, memo: _ThresholdMemo) -> StepAction:
        signal = ctx.signal().detach().float()
        previous, memo.previous_signal = memo.previous_signal, signal
        memo.measured_changes.append(DeferredRead(relative_l1_on_device(signal, previous))
                                     if previous is not None and previous.shape == signal.shape else None)
        last_change = memo.measured_changes.pop(0) if len(memo.measured_changes) > DECISION_LAG else None
        if last_change is None or ctx.is_last:
            return StepAction.COMPUTE
        if self.max_consecutive_reuse and ctx.consecutive_skips >= self.max_consecutive_reuse:
            return StepAction.COMPUTE
        memo.accumulated += abs(polyval(self.coefficients, last_change.values()[0]))
        if memo.accumulated < self.rel_l1_thresh:
            return self.skip_action
        return StepAction.COMPUTE

    def observe_compute(self, ctx: StepContext, memo: _ThresholdMemo) -> None:
        memo.accumulated = 0.0

    def describe(self) -> str:
        limit = self.max_consecutive_reuse or "none"
        return f"TeaCache rel_l1_thresh={self.rel_l1_thresh} max_consecutive_reuse={limit}"
