"""ERTACache's residual correction for a calibrated plan: on a skipped step the blocks' residual is
reused or forecast from the computed steps, and its error has a part that a gain removes (the
residual growing or shrinking between the source step and this one). Per skipped step of a plan,
the least-squares gain that takes the stand-in's residual closest to the step's own,
g_t = <r_t, f_t> / <f_t, f_t>, is fitted on the calibration's uncached reference runs
(channel_recording.py): the plan is replayed on each recorded trajectory with the very predictor
the run uses (its computed steps fed, its skipped steps forecast), summed over the recordings."""
from __future__ import annotations

import torch

from ..policies import PlannedSchedule

GAIN_RANGE = (0.0, 2.0)     # a fitted gain outside it is clipped


def residual_gains(policy: PlannedSchedule, trajectories: list[torch.Tensor], first_step: int) -> tuple[float, ...]:
    """One gain per step of `policy`'s plan (1 on computed and `V` steps, and where a step was
    not recorded); the trajectories hold the recorded steps from `first_step` on."""
    plan = policy.plan
    inner = torch.zeros(len(plan), dtype=torch.float64)
    norm = torch.zeros(len(plan), dtype=torch.float64)
    for trajectory in trajectories:
        predictor = policy.new_predictor(None)
        for index in range(trajectory.shape[0]):
            step = first_step + index
            if step >= len(plan) or plan[step] == "V":
                continue
            residual = trajectory[index]
            if plan[step] == "C":
                predictor.update(step, residual)
            elif predictor.ready(residual):
                forecast = predictor.predict(step, residual).double()
                inner[step] += float((forecast * residual.double()).sum())
                norm[step] += float(forecast.pow(2).sum())
    low, high = GAIN_RANGE
    return tuple(min(max(float(inner[t] / norm[t]), low), high) if norm[t] > 0 else 1.0 for t in range(len(plan)))
