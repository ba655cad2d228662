"""A calibrated plan: which steps are computed and, for each skipped step, what stands in (the
blocks' residual reused or forecast by a Taylor series of order 1 or 2, or the whole model's
output reused), fixed before the run by `cache_core/calibration/plan_search.py` from a profile of the user's
own model and step count.

A plan is a string of one letter per step of the whole schedule: `C` compute, `R` reuse, `1` / `2`
a Taylor forecast of that order, `P` FoCa's forecast, `H` each hidden channel forecast by its own
solver (HyCa), `V` the model's output reused (stand_ins/output_stand_in.py), e.g.
"CCCR1C1R2CVVC"; steps count in the whole schedule, so the same plan serves each part of a
split run. A per-block plan also keeps some blocks (`kept_blocks`, the first and last ones)
computed on its skipped steps; the other blocks then stand in with their own residual."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..stand_ins.hybrid import check_channel_solvers
from ..stand_ins.predictors import FOCA, HYBRID, PlannedTaylorResidual, ResidualPredictor
from .base import CachePolicy, SchedulePart, StepAction, StepContext, StepsMismatchError

# letter -> Taylor order of the blocks' stand-in (P: FoCa, stand_ins/predictors.FoCaResidual;
# H: each hidden channel its own solver, stand_ins/hybrid.py)
PLAN_LETTERS = {"C": 0, "R": 0, "1": 1, "2": 2, "V": 0, "P": FOCA, "H": HYBRID}
MAX_SPEEDUP = 8.0   # the highest speedup a plan may be calibrated for (and a profile may name)


# How far a run's step sigma may lie from the calibration's (relative) before the plan is
# refused: rounding and dtype differences are far below it, another scheduler or shift far above.
SIGMA_TOLERANCE = 0.02
SIGMA_FLOOR = 1e-3


class PlanStepsError(StepsMismatchError):
    """A plan calibrated for one step count, sampled at another."""


class PlanScheduleError(StepsMismatchError):
    """A plan calibrated on one schedule, sampled on another of the same step count."""


@dataclass(frozen=True)
class PlannedSchedule(CachePolicy):
    plan: str = "C"
    # the steps the plan was calibrated on, when a part of the schedule (None: the whole)
    calibrated_part: SchedulePart | None = None
    # a per-block plan: these blocks (of `block_count`) are computed on its skipped steps too,
    # the others stand in with their own residual
    kept_blocks: tuple[int, ...] = ()
    block_count: int = 0
    # the sigma of each step it was calibrated on (from the calibrated part's first step); empty:
    # not known (a profile from before they were kept)
    calibrated_sigmas: tuple[float, ...] = ()
    # per step of the plan, the share of the reused direction a `V` step applies (ERTACache's
    # rescaled step, fitted in the calibration run: calibration/output_scales.py); empty: all 1
    output_scales: tuple[float, ...] = ()
    # per hidden channel, the solver of an `H` step (HyCa's assignment, fitted in the calibration
    # run: calibration/channel_solvers.py); needed only by a plan with `H` steps
    channel_solvers: str = ""
    # per step of the plan, the gain on the blocks' forecast residual of a skipped step (ERTACache's
    # residual correction, fitted per plan in the calibration run: calibration/residual_gains.py);
    # empty: all 1
    residual_gains: tuple[float, ...] = ()

    name = "Calibrated"
    skip_action = StepAction.FORECAST

    def __post_init__(self) -> None:
        unknown = sorted(set(self.plan) - set(PLAN_LETTERS))
        if not self.plan or unknown:
            raise ValueError(f"a plan is one letter per step out of C, R, 1, 2, P, H, V (got {self.plan!r})")
        if "H" in self.plan and not self.channel_solvers:
            raise ValueError("a plan with H steps needs the channel solvers its calibration fitted")
        if self.channel_solvers:
            check_channel_solvers(self.channel_solvers)
        if self.plan[0] != "C":
            raise ValueError(f"a plan computes its first step (got {self.plan!r})")
        for name, values in (("output scales", self.output_scales), ("residual gains", self.residual_gains)):
            if values and len(values) != len(self.plan):
                raise ValueError(f"{name} are one per step of the plan ({len(self.plan)}; got {len(values)})")
        if self.kept_blocks and not all(0 <= b < self.block_count for b in self.kept_blocks):
            raise ValueError(f"kept blocks {list(self.kept_blocks)} are not blocks of a model of {self.block_count}")

    @property
    def decides_blocks(self) -> bool:
        return bool(self.kept_blocks)

    def block_letters(self, memory: Any) -> str:
        return "".join("C" if b in self.kept_blocks else "R" for b in range(self.block_count))

    def stand_in_spans(self, block_count: int) -> tuple[tuple[int, int], ...]:
        """The runs of blocks between the kept ones: each stands in as one (the first and last
        kept blocks leave one span, whose single residual replaces one per block)."""
        spans, start = [], None
        for block in range(block_count + 1):
            stood_in = block < block_count and block not in self.kept_blocks
            if stood_in and start is None:
                start = block
            elif not stood_in and start is not None:
                spans.append((start, block))
                start = None
        return tuple(spans)

    @property
    def calibrated_steps(self) -> int:
        """The steps it was calibrated on: its part's, or all of them."""
        return self.calibrated_part.steps if self.calibrated_part else len(self.plan)

    @property
    def computes(self) -> int:
        """Computed steps of the steps it was calibrated on."""
        part = self.calibrated_part
        return self.plan[part.first:part.end].count("C") if part else self.plan.count("C")

    @property
    def speedup(self) -> float:
        """Block evaluations over blocks computed on the steps it was calibrated on."""
        steps = self.calibrated_steps
        if not self.kept_blocks:
            return steps / self.computes
        computed = self.computes * self.block_count + len(self.kept_blocks) * (steps - self.computes)
        return steps * self.block_count / computed

    @property
    def reuses_outputs(self) -> bool:
        return "V" in self.plan

    def check_steps(self, total_steps: int, first_step: int = 0, run_steps: int | None = None) -> None:
        if self.calibrated_part is not None:
            self.calibrated_part.check_run("the calibrated plan", total_steps, first_step, run_steps)
        if total_steps != len(self.plan):
            raise PlanStepsError(
                f"DiT Cache: the calibrated plan is for {len(self.plan)} steps, but this sampler runs {total_steps}; "
                f"set the sampler to {len(self.plan)} steps, or calibrate at {total_steps} steps (Block Profiler with "
                "calibrate_speedups, then Load Cache Profile)")

    def check_sigmas(self, sigmas: list[float], first_step: int) -> None:
        """Refuse a run whose steps lie at other noise levels than the calibration's (another
        scheduler, shift or denoise at the same step count): the plan's skips were chosen for
        those."""
        offset = first_step - (self.calibrated_part.first if self.calibrated_part else 0)
        for index, sigma in enumerate(sigmas):
            step = offset + index
            if not 0 <= step < len(self.calibrated_sigmas):
                continue
            calibrated = self.calibrated_sigmas[step]
            if abs(sigma - calibrated) > SIGMA_TOLERANCE * max(calibrated, SIGMA_FLOOR):
                raise PlanScheduleError(
                    f"DiT Cache: the calibrated plan was made on another schedule than this run's: step "
                    f"{first_step + index + 1} has sigma {calibrated:.4g} in the calibration and {sigma:.4g} here "
                    "(another scheduler, shift or denoise). Set the sampler's scheduler, the model's shift and the "
                    "denoise as they were when profiling, or profile again with these settings")

    def decide(self, ctx: StepContext, memory: Any) -> StepAction:
        letter = self.plan[ctx.step] if ctx.step < len(self.plan) else "C"
        if letter == "C":
            return StepAction.COMPUTE
        if letter == "V":
            return StepAction.REUSE_OUTPUT
        return StepAction.REUSE if letter == "R" else StepAction.FORECAST

    def output_scale(self, step: int) -> float:
        return self.output_scales[step] if step < len(self.output_scales) else 1.0

    def new_predictor(self, cache_device: torch.device | None) -> ResidualPredictor:
        orders = {step: PLAN_LETTERS[letter] for step, letter in enumerate(self.plan) if letter not in "CV"}
        solvers = self.channel_solvers if "H" in self.plan else ""
        gains = {step: gain for step, gain in enumerate(self.residual_gains) if step in orders and gain != 1.0}
        return PlannedTaylorResidual(cache_device, orders, solvers, gains)

    def describe(self) -> str:
        where = f", {self.calibrated_part.describe()}" if self.calibrated_part else ""
        if self.kept_blocks:
            where += f", blocks {', '.join(map(str, self.kept_blocks))} computed on every step"
        return f"Calibrated plan={self.plan} ({self.computes} of {self.calibrated_steps} steps computed, {self.speedup:.2f}x{where})"
