"""Block Profiler: with every step computed, measure how much each block's output changes from
one step to the next, and turn that into settings for the caching policies.

Per step and block it records the relative L1 change and cosine similarity of the block's output
against the previous step; per step, the first block's modulated-input change (TeaCache's
signal), the change of the stack's output, and the magnitude ratio of the stack's residual
(output - input) against the previous step (MagCache's curve). From those it fits a TeaCache
rescale polynomial (input change -> output change, as the TeaCache authors calibrate theirs) and
suggests FORA intervals.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from ..adapters import BlockSpec
from ..support.tensor_measures import relative_l1
from ..run.report import RunReport
from .profile_schema import PROFILE_FORMAT

# FORA suggestion: the longest interval whose accumulated output change stays under this. 0.1
# makes the reference FLUX (median step change 0.048) get interval 3, the setting `make bench`
# found best there (24.5 dB at 2.5x on 8 prompts; interval 4 fell to 19.5 dB). One model's
# calibration: recheck it when more reference models exist.
FORA_CHANGE_BUDGET = 0.1
MAX_SUGGESTED_INTERVAL = 6


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten().float(), b.flatten().float(), dim=0))


class BlockProfileRecorder:
    """Run-scoped observer the engine calls on every computed block. Only the first call of each
    step is measured, so a split cond/uncond batch is not counted twice."""

    def __init__(self, blocks: list[BlockSpec], family: str) -> None:
        self.blocks = blocks
        self.family = family
        self.previous_outputs: dict[int, torch.Tensor] = {}
        self.previous_signal: torch.Tensor | None = None
        self.measuring = False
        self.measured_step: int | None = None
        self.sigmas: list[float] = []
        self.block_rel_l1: list[list[float]] = []
        self.block_cosine: list[list[float]] = []
        self.input_rel_l1: list[float] = []
        self.stack_input: dict[str, torch.Tensor] | None = None
        self.previous_residual_magnitude: float | None = None
        self.residual_magnitude_ratio: list[float] = []

    def on_call(self, step: int, sigma: float, stream: str, signal: Callable[[], torch.Tensor],
                stack_input: Callable[[], dict[str, torch.Tensor]]) -> None:
        self.measuring = step != self.measured_step
        if not self.measuring:
            return
        self.measured_step = step
        self.sigmas.append(sigma)
        self.block_rel_l1.append([math.nan] * len(self.blocks))
        self.block_cosine.append([math.nan] * len(self.blocks))
        self.residual_magnitude_ratio.append(math.nan)
        self.stack_input = {k: v.detach().float() for k, v in stack_input().items()}
        current = signal().detach().float()
        previous, self.previous_signal = self.previous_signal, current
        self.input_rel_l1.append(relative_l1(current, previous) if previous is not None and previous.shape == current.shape else math.nan)

    def on_block(self, step: int, position: int, spec: BlockSpec, outputs: dict,
                 in_last_layout: Callable[[dict[str, torch.Tensor]], torch.Tensor]) -> None:
        """A computed block's output; `in_last_layout` arranges the kept stack input as the last
        block's output is (the stream's join order, read during the call)."""
        if not self.measuring:
            return
        current = outputs["img"].detach().float()
        previous = self.previous_outputs.get(position)
        if previous is not None and previous.shape == current.shape:
            self.block_rel_l1[-1][position] = relative_l1(current, previous)
            self.block_cosine[-1][position] = _cosine(current, previous)
        self.previous_outputs[position] = current.clone()
        if position == len(self.blocks) - 1 and self.stack_input is not None:
            self._record_residual_magnitude(float((current - in_last_layout(self.stack_input)).abs().mean()))

    def _record_residual_magnitude(self, magnitude: float) -> None:
        previous, self.previous_residual_magnitude = self.previous_residual_magnitude, magnitude
        self.residual_magnitude_ratio[-1] = magnitude / previous if previous else 1.0
        self.stack_input = None

    def finish(self, report: RunReport) -> dict[str, Any]:
        self.previous_outputs.clear()
        self.previous_signal = None
        self.stack_input = None
        return {"profile": build_profile(self, report)}


def _finite(values: list[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def fit_rescale_polynomial(input_change: list[float], output_change: list[float], degree: int = 4) -> list[float]:
    """Least-squares polynomial output_change ~ poly(input_change), highest power first."""
    pairs = [(x, y) for x, y in zip(input_change, output_change) if math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < 2:
        return []
    xs, ys = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    degree = max(1, min(degree, len(pairs) - 2))
    return [float(c) for c in np.polyfit(xs, ys, degree)]


def suggest_interval(changes: list[float]) -> int:
    """Longest reuse interval whose accumulated per-step change stays within the budget."""
    finite = _finite(changes)
    if not finite:
        return 1
    typical = float(np.median(finite))
    if typical <= 0:
        return MAX_SUGGESTED_INTERVAL
    return int(max(1, min(MAX_SUGGESTED_INTERVAL, 1 + math.floor(FORA_CHANGE_BUDGET / typical))))


def build_profile(recorder: BlockProfileRecorder, report: RunReport) -> dict[str, Any]:
    """The profile of the run: its measurements, and which part of the whole schedule they
    cover (a profile of one sampler of a split run, or of a run with denoise below 1, is a part;
    consumers use it there or refuse it, never stretch it over a whole run)."""
    output_change = [row[-1] for row in recorder.block_rel_l1]
    per_block = list(zip(*recorder.block_rel_l1)) if recorder.block_rel_l1 else []
    return {
        "format": PROFILE_FORMAT,
        "family": recorder.family,
        "blocks": [f"{kind}.{index}" for kind, index in (b.key for b in recorder.blocks)],
        "steps": len(recorder.sigmas),
        "schedule": {"first_step": report.first_step, "total_steps": max(report.schedule_steps, len(recorder.sigmas))},
        "sigmas": recorder.sigmas,
        "block_rel_l1": recorder.block_rel_l1,
        "block_cosine": recorder.block_cosine,
        "modulated_input_rel_l1": recorder.input_rel_l1,
        "output_rel_l1": output_change,
        "residual_magnitude_ratio": recorder.residual_magnitude_ratio,
        "teacache_coefficients": fit_rescale_polynomial(recorder.input_rel_l1, output_change),
        "suggested_fora_interval": suggest_interval(output_change),
        "suggested_block_intervals": [suggest_interval(list(col)) for col in per_block],
    }
