"""HyCa's channel assignment, fitted on the calibration's uncached runs (channel_recording.py).

The hidden channels of a residual move differently: some smoothly (a Taylor forecast extrapolates
them), some back and forth (a forecast overshoots and plain reuse is better). Each channel's
recorded trajectory is backtested: at every skip distance a plan can have (2 to 6 steps between
computed steps), from three computed anchors that far apart, every candidate solver forecasts the
steps in between, with the very predictor the run uses, and its squared error is summed per
channel. The channels are then clustered by how the solvers rank on them (k-means on their
log-errors relative to the channel's own mean), and each cluster takes the solver with the least
error summed over its channels: a cluster's choice rests on many channels, which holds across
prompts where a per-channel choice would fit the calibration's noise."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..stand_ins.hybrid import CHANNEL_SOLVERS
from ..stand_ins.predictors import FoCaResidual, TaylorResidual

DISTANCES = (2, 3, 4, 5, 6)
CLUSTERS = 8
KMEANS_ITERATIONS = 25


@dataclass(frozen=True)
class ChannelSolverFit:
    solvers: str                    # one letter of CHANNEL_SOLVERS per hidden channel
    clusters: int
    errors: dict[str, float]        # backtest error of each solver alone and of the hybrid, over reuse's

    def as_profile(self) -> dict:
        return {"solvers": self.solvers, "clusters": self.clusters,
                "backtest_error_over_reuse": {k: round(v, 4) for k, v in self.errors.items()}}


def backtest_errors(trajectories: list[torch.Tensor], distances: tuple[int, ...] = DISTANCES) -> torch.Tensor:
    """[solvers, channels]: each solver's squared forecast error per channel, summed over every
    trajectory ([steps, rows, channels]), distance, anchor and skipped step."""
    channels = trajectories[0].shape[-1]
    errors = torch.zeros(len(CHANNEL_SOLVERS), channels, dtype=torch.float64)
    for trajectory in trajectories:
        steps = trajectory.shape[0]
        for d in distances:
            anchors = list(range(2 * d, steps - 1))
            if not anchors:
                continue
            # every anchor at once: the predictors work on any shape, here [anchors, rows, channels]
            taylor, foca = TaylorResidual(None, order=2), FoCaResidual(None)
            for back in (2, 1, 0):
                held = trajectory[[a - back * d for a in anchors]]
                taylor.update(2 * d - back * d, held)
                foca.update(2 * d - back * d, held)
            for j in range(1, d):
                valid = [i for i, a in enumerate(anchors) if a + j < steps]
                if not valid:
                    continue
                truth, base = trajectory[[anchors[i] + j for i in valid]], trajectory[anchors]
                for s, letter in enumerate(CHANNEL_SOLVERS):
                    forecast = (foca.predict(2 * d + j, base) if letter == "P"
                                else taylor.series(2 * d + j, base, 1.0, s))[valid]
                    errors[s] += (forecast - truth).double().pow(2).sum(dim=(0, 1))
    return errors


def kmeans(features: torch.Tensor, k: int, iterations: int = KMEANS_ITERATIONS) -> torch.Tensor:
    """Cluster labels of the rows of `features`, from a deterministic start (rows spread over the
    order of their first principal coordinate)."""
    k = max(1, min(k, features.shape[0]))
    centred = features - features.mean(dim=0)
    direction = torch.linalg.svd(centred, full_matrices=False).Vh[0] if features.shape[0] > 1 else None
    order = torch.argsort(centred @ direction) if direction is not None else torch.arange(features.shape[0])
    centres = features[order[torch.linspace(0, features.shape[0] - 1, k).round().long()]].clone()
    labels = torch.zeros(features.shape[0], dtype=torch.long)
    for _ in range(iterations):
        labels = torch.cdist(features, centres).argmin(dim=1)
        for c in range(k):
            members = features[labels == c]
            if len(members):
                centres[c] = members.mean(dim=0)
    return labels


def fit_channel_solvers(trajectories: list[torch.Tensor], clusters: int = CLUSTERS) -> ChannelSolverFit | None:
    """The assignment, or None when nothing was recorded (no extra calibration seeds)."""
    if not trajectories:
        return None
    errors = backtest_errors(trajectories)
    if not bool(errors.sum() > 0):
        return None
    logs = torch.log(errors + errors.max() * 1e-12 + 1e-30)
    labels = kmeans((logs - logs.mean(dim=0)).T.float(), clusters)
    solvers = [""] * errors.shape[1]
    for c in labels.unique().tolist():
        members = labels == c
        best = int(errors[:, members].sum(dim=1).argmin())
        for channel in members.nonzero().flatten().tolist():
            solvers[channel] = CHANNEL_SOLVERS[best]
    chosen = torch.tensor([CHANNEL_SOLVERS.index(s) for s in solvers])
    reuse = float(errors[0].sum())
    summary = {letter: float(errors[s].sum()) / reuse for s, letter in enumerate(CHANNEL_SOLVERS)}
    summary["hybrid"] = float(errors.gather(0, chosen.view(1, -1)).sum()) / reuse
    return ChannelSolverFit("".join(solvers), int(labels.unique().numel()), summary)
