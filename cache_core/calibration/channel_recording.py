"""What HyCa's channel assignment is fitted on: the calibration's uncached reference runs, each
recording the whole stack's residual on every step at a fixed subsample of its tokens, every
hidden channel whole (HyCa's channel solvers and ERTACache's residual gains are fitted on
them). A reference run computes every step as `AlwaysCompute` does; it only asks
the engine to hand it each computed residual, as a caching policy would keep it. Without extra
calibration seeds the run's own case is sampled once more to be recorded."""
from __future__ import annotations

import torch

from ..policies import AlwaysCompute
from ..stand_ins.predictors import ResidualPredictor
from .request import CalibrationRequest

TOKENS = 256   # token rows recorded per step (evenly spaced over batch and tokens)


class TrajectoryRecorder(ResidualPredictor):
    """Keeps each computed step's residual at `TOKENS` fixed token rows, in float32 on the
    residual's device until the fit reads it. It never stands in for anything."""

    def __init__(self) -> None:
        super().__init__(None)
        self.rows: dict[int, torch.Tensor] = {}

    def update(self, step: int, residual: torch.Tensor) -> None:
        if step in self.rows or residual.ndim < 2:
            return
        flat = residual.detach().reshape(-1, residual.shape[-1])
        stride = max(1, flat.shape[0] // TOKENS)
        self.rows[step] = flat[::stride][:TOKENS].float().clone()

    def predict(self, step: int, like: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        raise RuntimeError("a calibration reference run computes every step: nothing stands in")

    def tensors(self) -> list[torch.Tensor]:
        return list(self.rows.values())

    def ready(self, like: torch.Tensor) -> bool:
        return False

    def trajectory(self) -> torch.Tensor | None:
        """[steps, rows, channels] on the CPU, when the steps recorded follow one another."""
        steps = sorted(self.rows)
        if len(steps) < 4 or steps != list(range(steps[0], steps[0] + len(steps))):
            return None
        return torch.stack([self.rows[s] for s in steps]).cpu()


class RecordingReference(AlwaysCompute):
    """Every step computed, each stream's residual recorded (one recorder per stream and output)."""

    skips_steps = True   # the engine then hands every computed residual to the stand-ins it made

    def __init__(self) -> None:
        self.recorders: list[TrajectoryRecorder] = []

    def new_predictor(self, cache_device: torch.device | None) -> ResidualPredictor:
        recorder = TrajectoryRecorder()
        self.recorders.append(recorder)
        return recorder

    def trajectories(self) -> list[torch.Tensor]:
        """The complete recordings of the widest channel count seen (the stack's hidden states;
        a narrower output, another stream's, is left out)."""
        found = [t for t in (r.trajectory() for r in self.recorders) if t is not None]
        if not found:
            return []
        width = max(t.shape[-1] for t in found)
        return [t for t in found if t.shape[-1] == width]


def reference_runs(request: CalibrationRequest, records: bool) -> int:
    """Uncached runs a calibration samples besides the profiled one: one per extra seed, or, where
    the reference runs `records` and there is no extra seed, one of the run's own case."""
    return request.extra_seeds or int(records)
