"""What a sampling run did, block by block, and its one-line summary.

The engine records every model call (one per step, or one per cond/uncond when ComfyUI splits
them) as a string of block actions ("CCCC", "RRRR", "FFFF"). Summaries count a step as full
when every block of every call in it was computed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..support.log import get_logger
from ..policies.base import StepAction

log = get_logger(__name__)


@dataclass
class CallRecord:
    step: int
    stream: str            # the calls' stream: "cond+uncond", "cond" or "uncond" (a context window's too)
    block_actions: str     # one letter per block: C computed, R reused, F forecast, V the model's output reused


# An accepted forecast fitted below this scale of its Taylor terms is, in effect, plain reuse.
REUSE_SCALE = 0.01


@dataclass
class RunReport:
    method: str
    family: str
    settings: str
    total_steps: int
    level: str = "block"   # "model": the diffusion model's forward as one block; "call": the model call as one
    # where the run's steps lie in the whole schedule (a split sampler, denoise below 1): the
    # whole schedule's step count and the run's first step in it
    schedule_steps: int = 0
    first_step: int = 0
    calls: list[CallRecord] = field(default_factory=list)
    sigmas: list[float] = field(default_factory=list)   # per step, filled when the run ends
    cache_peak_bytes: int = 0
    fallbacks: int = 0
    forecast_scales: list[float] = field(default_factory=list)   # one per forecast the guard accepted
    interrupted: bool = False   # the run did not finish: cancelled, or failed (then `failure` says why)
    failure: str | None = None
    notes: list[str] = field(default_factory=list)   # what the run could not cache, said once each
    extras: dict[str, Any] = field(default_factory=dict)

    def note(self, message: str, warn: bool = True) -> None:
        """Say once per run, in the log and the report, why steps were computed that the
        policy would have skipped (`warn`), or how the run was carried out."""
        if message not in self.notes:
            self.notes.append(message)
            (log.warning if warn else log.info)("%s: %s", self.method, message)

    def step_actions(self) -> list[str]:
        """Per step: 'compute' if fully computed, else the action of its skipped blocks."""
        by_step: dict[int, str] = {}
        for call in self.calls:
            by_step[call.step] = by_step.get(call.step, "") + call.block_actions
        out = []
        for step in sorted(by_step):
            letters = set(by_step[step])
            if letters == {"C"}:
                out.append(StepAction.COMPUTE.value)
            elif letters == {"V"}:
                out.append(StepAction.REUSE_OUTPUT.value)
            elif "F" in letters:
                out.append(StepAction.FORECAST.value)
            else:
                out.append(StepAction.REUSE.value)
        return out

    @property
    def steps(self) -> int:
        return len({c.step for c in self.calls})

    @property
    def full_steps(self) -> int:
        return self.step_actions().count(StepAction.COMPUTE.value)

    @property
    def block_evaluations(self) -> int:
        return sum(len(c.block_actions) for c in self.calls)

    @property
    def blocks_computed(self) -> int:
        return sum(c.block_actions.count("C") for c in self.calls)

    @property
    def estimated_speedup(self) -> float:
        """Block evaluations over blocks computed: the speedup if blocks were all the cost."""
        return self.block_evaluations / self.blocks_computed if self.blocks_computed else 1.0

    @property
    def blocks_scheduled_alone(self) -> bool:
        """Whether some call computed some blocks and stood in for others (a per-block schedule):
        then the blocks computed, not the full steps, say what the run cost."""
        return any("C" in c.block_actions and set(c.block_actions) != {"C"} for c in self.calls)

    @property
    def reuse_ratio(self) -> float:
        total = self.block_evaluations
        return 1.0 - self.blocks_computed / total if total else 0.0

    def summary_line(self) -> str:
        actions = self.step_actions()
        where = {"model": " (whole model)", "call": " (model call)"}.get(self.level, "")
        parts = [f"{self.method}{where}: {self.steps} steps, {actions.count('compute')} full"]
        if actions.count("reuse"):
            parts.append(f"{actions.count('reuse')} reused")
        if actions.count("forecast"):
            parts.append(f"{actions.count('forecast')} forecast")
        if actions.count("reuse_output"):
            parts.append(f"{actions.count('reuse_output')} model output reused")
        if self.fallbacks:
            parts.append(f"{self.fallbacks} fallbacks")
        if self.forecast_scales:
            scales = self.forecast_scales
            part = f"forecast scale {sum(scales) / len(scales):.2f}"
            # A mean hides what matters: accepted forecasts fitted to scale 0 are reuse, and
            # several in a row are what cost the guard 5 dB on the HunyuanVideo reference model.
            at_reuse = sum(s < REUSE_SCALE for s in scales)
            if at_reuse:
                part += f" ({at_reuse} of {len(scales)} at plain reuse)"
            parts.append(part)
        if self.blocks_scheduled_alone:
            parts.append(f"blocks computed {self.blocks_computed}/{self.block_evaluations}")
        line = ", ".join(parts) + f", est. {self.estimated_speedup:.1f}x"
        if self.cache_peak_bytes:
            line += f", cache {self.cache_peak_bytes / 2**20:.1f} MB"
        if self.failure is not None:
            line += f" (failed: {self.failure})"
        elif self.interrupted:
            line += " (interrupted)"
        return line

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary for the web extension and the benchmark."""
        return {
            "method": self.method,
            "family": self.family,
            "level": self.level,
            "settings": self.settings,
            "steps": self.steps,
            "full_steps": self.full_steps,
            "step_actions": self.step_actions(),
            "blocks_computed": self.blocks_computed,
            "blocks_scheduled_alone": self.blocks_scheduled_alone,
            "block_evaluations": self.block_evaluations,
            "estimated_speedup": round(self.estimated_speedup, 3),
            "cache_peak_bytes": self.cache_peak_bytes,
            "fallbacks": self.fallbacks,
            "interrupted": self.interrupted,
            "failure": self.failure,
            "notes": self.notes,
            "summary": self.summary_line(),
            "heatmap": self.extras.get("heatmap"),
        }
