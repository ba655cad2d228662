"""ERTACache's rescaled step for a plan's V steps: the least-squares factor per (step, source
step) from the uncached runs' directions, and the factor each V step of a plan gets."""
from __future__ import annotations

import numpy as np
import torch

from cache_core.calibration.output_scales import DirectionRecorder, fitted_factors, output_scales


def _recorded(directions: np.ndarray, sigmas: np.ndarray) -> DirectionRecorder:
    """A recorder fed as a sampler calls it: x and denoised whose direction is each given one."""
    recorder = DirectionRecorder(torch.tensor(sigmas), None)
    for step, d in enumerate(directions):
        x = torch.randn(d.shape, dtype=torch.float64)
        denoised = x - float(sigmas[step]) * torch.tensor(d)
        recorder(step, denoised, x, len(directions))
        recorder(step, denoised * 0, x, len(directions))     # a second evaluation of the step: not kept
    return recorder


def test_the_factor_is_the_least_squares_fit_of_the_source_direction_summed_over_the_runs():
    rng = np.random.default_rng(0)
    sigmas = np.array([1.0, 0.8, 0.5, 0.3, 0.0])
    runs = [rng.normal(size=(4, 2, 3, 5)) for _ in range(2)]
    factors = fitted_factors([_recorded(run, sigmas) for run in runs])
    for t in range(4):
        for s in range(t):
            dot = sum(float((run[t] * run[s]).sum()) for run in runs)
            norm = sum(float((run[s] ** 2).sum()) for run in runs)
            assert np.isclose(factors[t][s], min(max(dot / norm, 0.0), 4.0), rtol=1e-5)
        assert factors[t][t] == 1.0


def test_each_v_step_gets_the_factor_from_the_last_computed_step():
    factors = [[1.0] * 6 for _ in range(6)]
    factors[2][1], factors[3][1], factors[5][4] = 0.9, 0.8, 1.1
    assert output_scales("CCVVCV", factors) == (1.0, 1.0, 0.9, 0.8, 1.0, 1.1)
    assert output_scales("CC11CR", factors) == (1.0,) * 6      # only V steps reuse the output
