"""A cache engine: the immutable configuration one caching node attaches to a model (family
adapter, policy, window, where the cache lives, who hears the run report), shared by every run
of that model. All that changes during a run lives in the `SamplingRun` that `start_run` makes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..adapters.base import BlockSpec, ModelAdapter
from ..policies.base import CachePolicy, SchedulePart
from ..support.log import get_logger
from .new_run import new_sampling_run
from .report import RunReport
from .sampler_steps import SamplerSteps
from .sampling_run import SamplingRun
from .step_schedule import SigmaWindow, StepSchedule

log = get_logger(__name__)

# Where the engine and its run ride in `transformer_options`: the engine on the patched model's
# options, the run in the sampling run's own copy of them, where the block hooks find it.
ENGINE_KEY = "dit_cache_engine"
RUN_KEY = "dit_cache_run"

ReportListener = Callable[[RunReport], None]
# Makes a run's observer (the Block Profiler's recorder) from the engine's blocks and family.
ObserverFactory = Callable[[list[BlockSpec], ModelAdapter], Any]


@dataclass
class CacheEngine:
    method: str
    adapter: ModelAdapter
    policy: CachePolicy
    blocks: list[BlockSpec]
    start_percent: float = 0.0
    end_percent: float = 1.0
    offload_cache: bool = False
    observer_factory: ObserverFactory | None = None
    report_listeners: list[ReportListener] = field(default_factory=list)
    log_reports: bool = True       # False for the calibration's own runs: dozens, summed up once
    notes: tuple[str, ...] = ()    # said in every run's report, as warnings (an uncalibrated default, say)
    info_notes: tuple[str, ...] = ()   # said in every run's report, as information (what a node chose)

    def __post_init__(self) -> None:
        if not 0.0 <= self.start_percent <= 1.0 or not 0.0 <= self.end_percent <= 1.0:
            raise ValueError(f"start_percent and end_percent must be between 0 and 1 (got {self.start_percent}, "
                             f"{self.end_percent})")
        if self.start_percent > self.end_percent:
            raise ValueError(f"start_percent ({self.start_percent}) must not be after end_percent ({self.end_percent})")

    def start_run(self, diffusion_model: torch.nn.Module, model_sampling: Any, sigmas: torch.Tensor,
                  part_of: Callable[[torch.Tensor], SchedulePart],
                  weight_keyframes: Callable[[], tuple] | None = None, replaced_blocks: list | None = None) -> SamplingRun:
        """A run over `sigmas`; `part_of` says where they lie in the whole schedule, from their
        values on the host (the attachment matches them to ComfyUI's schedulers)."""
        total_steps = max(len(sigmas) - 1, 0)
        window = SigmaWindow(start_sigma=float(model_sampling.percent_to_sigma(self.start_percent)),
                             end_sigma=float(model_sampling.percent_to_sigma(self.end_percent)),
                             whole_schedule=self.start_percent == 0.0 and self.end_percent == 1.0)
        values = sigmas.detach().float().cpu()   # once per run: the schedule's sigmas, on the host
        part = part_of(values)
        self.policy.check_steps(part.total, part.first, total_steps)
        self.policy.check_sigmas(values[:-1].tolist(), part.first)
        report = RunReport(self.method, self.adapter.family, self.policy.describe(), total_steps=total_steps,
                           level=self.adapter.level, schedule_steps=part.total, first_step=part.first)
        run = new_sampling_run(self.adapter, self.policy, self.blocks, diffusion_model,
                               StepSchedule(self.policy, self.policy.new_run_memory(), part, window, run_sigmas=sigmas),
                               SamplerSteps(total_steps), report,
                               torch.device("cpu") if self.offload_cache else None,
                               self.observer_factory(self.blocks, self.adapter) if self.observer_factory else None,
                               weight_keyframes)
        for note in self.notes:
            run.recorder.note(note)
        for note in self.info_notes:
            run.recorder.note(note, warn=False)
        if replaced_blocks:
            run.compute_every_step(
                f"another node replaced the cache's hook on {len(replaced_blocks)} block(s) ({replaced_blocks[0][0]} "
                f"{replaced_blocks[0][1]}, ...) after this caching node, so the cache cannot skip the stack as a "
                "whole: every step is computed. Put the caching node after the nodes that patch blocks")
        return run

    def finish_run(self, run: SamplingRun, interrupted: bool, failure: str | None = None) -> RunReport:
        """End the run: `interrupted` when it did not finish, `failure` the error that stopped it
        (None for a cancel)."""
        report = run.report
        report.interrupted = interrupted
        report.failure = failure
        report.sigmas = run.schedule.sigma_values()
        if run.observer is not None:
            report.extras.update(run.observer.finish(report))
        run.release()
        if self.log_reports:
            log.info(report.summary_line())
        for listener in self.report_listeners:
            listener(report)
        return report
