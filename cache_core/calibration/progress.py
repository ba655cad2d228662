"""How far a calibration has got, shown where ComfyUI shows progress: one bar on the Block
Profiler's node over the whole calibration (ComfyUI's `ProgressBar`, advanced at every step of
every calibration run), and a line of text on the node (the stage, the plan in flight, the best
worst-case PSNR so far, the time left). The work is counted in model evaluations: an uncached
reference run is `steps`, a candidate plan `steps / speedup` per case."""
from __future__ import annotations

import time
from typing import Callable

from ..support.containment import is_cancel
from .plan_search import computes_for
from .request import CalibrationRequest
from .speedup_search import per_block_searches

Bar = Callable[[float, float], None]          # (done, total)
Text = Callable[[str], None]


class CalibrationProgress:
    def __init__(self, total: float, bar: Bar, text: Text, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = max(total, 1e-9)
        self.done = 0.0
        self._bar, self._text, self._clock = bar, text, clock
        self._started = clock()
        self._stage = ""
        self._best: float | None = None

    def stage(self, stage: str) -> None:
        """A new stage begins (the reference runs, a speedup's search): its best so far resets."""
        self._stage, self._best = stage, None
        self._say()

    def run_step(self, weight: float) -> Callable[..., None]:
        """A sampler callback for one calibration run, advancing the bar by `weight` evaluations
        per step (ComfyUI calls it with the step index, the denoised latent, x, total steps)."""
        def step_done(*_):
            self.advance(weight)
        return step_done

    def advance(self, evaluations: float) -> None:
        self.done = min(self.done + evaluations, self.total)
        self._bar(self.done, self.total)

    def scored(self, plan: str, worst_db: float) -> None:
        """A candidate plan was sampled on every case: `worst_db` its worst case."""
        self._best = worst_db if self._best is None else max(self._best, worst_db)
        self._say(plan)

    def finish(self) -> None:
        self.done = self.total
        self._bar(self.total, self.total)
        self._text("calibration done")

    def text(self, plan: str | None = None) -> str:
        line = f"Calibrating: {self._stage}"
        if plan is not None:
            line += f"; last plan {plan}"
        if self._best is not None:
            line += f"; best worst case so far {self._best:.1f} dB"
        elapsed = self._clock() - self._started
        if self.done > 0 and elapsed > 0:
            left = elapsed * (self.total - self.done) / self.done
            line += f"; about {_duration(left)} left ({100 * self.done / self.total:.0f}%)"
        return line

    def _say(self, plan: str | None = None) -> None:
        self._text(self.text(plan))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def planned_evaluations(request: CalibrationRequest, steps: int, blocks: int,
                        references: int | None = None) -> float:
    """The calibration's work in model evaluations of one case, as planned: the uncached reference
    runs (`references`; by default one per extra seed), then per speedup every candidate on every
    case (per-block candidates where their block computes allow one, and the faster speedup's plan
    with steps added). The search may sample fewer; the bar ends at 100% anyway."""
    cases = 1 + request.extra_seeds
    total = float((request.extra_seeds if references is None else references) * steps)
    for speedup in request.speedups:
        computes = computes_for(steps, speedup)
        # the faster speedup's plan with steps added: every speedup but the fastest
        candidates = request.evaluations + (speedup != max(request.speedups))
        candidates += request.per_block_evaluations * len(per_block_searches(steps, computes, blocks, request))
        total += candidates * cases * steps / speedup
    return total


def stopped_note(err: BaseException, plans: list[dict], speedups: tuple[float, ...]) -> str:
    """The report's line when a calibration ends early: which plans the profile keeps."""
    stopped = "was cancelled" if is_cancel(err) else f"failed ({type(err).__name__}: {err})"
    if not plans:
        return (f"the calibration {stopped}: the profile is saved without calibrated plans (Calibrated Cache needs "
                "them; profile again with calibrate_speedups to make them)")
    done = ", ".join(f"{p['speedup']:g}x" for p in plans)
    missing = ", ".join(f"{s:g}x" for s in speedups if s not in {p["speedup"] for p in plans})
    return (f"the calibration {stopped}: the profile is saved with the plans finished before ({done}), without "
            f"{missing} (profile again with calibrate_speedups to make them)")
