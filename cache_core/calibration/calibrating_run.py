"""Calibrating inside the Block Profiler's sampling run: after the profiled (uncached) run, sample
the calibration cases uncached (the run's own noise and `extra_seeds` more) and search, for each
target speedup, the plan with the least final damage on the worst case (plan_search.py), sampling
each candidate for real through ComfyUI's own sampler with the same conditioning and sigmas.

It is an `OUTER_SAMPLE` wrapper registered before the engine's own, so each of its sampler calls
goes through the engine's run scope; it points that scope at a reference engine (every step
computed) or at a planned engine per candidate, and back. The profile and the run report are
handed to the profiler's listeners once the search is done, with the plans added."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import torch
from comfy.model_patcher import create_model_options_clone

from ..policies import AlwaysCompute, PlannedSchedule
from ..policies.base import SchedulePart
from ..profiles.profile_io import profiled_part
from ..run.engine import ENGINE_KEY, CacheEngine
from ..run.report import RunReport
from ..support.log import get_logger
from ..support.tensor_measures import batch_psnr
from .channel_recording import RecordingReference, reference_runs
from .channel_solvers import fit_channel_solvers
from .node_progress import node_progress
from .output_scales import DirectionRecorder, fitted_factors, output_scales
from .progress import planned_evaluations, stopped_note
from .residual_gains import residual_gains
from .solver_choices import SolverChoice, solver_choice
from .request import CalibrationRequest
from .speedup_search import search_speedup

log = get_logger(__name__)

NOISE_SEED_STRIDE = 7919   # extra cases' noise seeds: the run's seed + k * stride


class CalibratingWrapper:
    """The OUTER_SAMPLE wrapper of a calibrating Block Profiler (one sampling run at a time)."""

    def __init__(self, request: CalibrationRequest, node_id: str | None = None) -> None:
        self.request = request
        self.node_id = node_id     # the Block Profiler's node, where the calibration's progress shows

    def __call__(self, executor, *args, **kwargs):
        guider = executor.class_obj
        engine: CacheEngine | None = guider.model_options["transformer_options"].get(ENGINE_KEY)
        if engine is None:   # the profiler passed the model through: nothing to calibrate
            return executor(*args, **kwargs)
        listeners, reports = engine.report_listeners, []
        engine.report_listeners = [reports.append]
        choice = solver_choice(engine.adapter.family)
        recorder = DirectionRecorder(args[3], args[5]) if choice.fit_output_scales and len(args) > 5 else None
        try:
            result = (executor(*args[:5], recorder, *args[6:], **kwargs) if recorder is not None
                      else executor(*args, **kwargs))
        except BaseException:
            self._tell(listeners, reports)   # the profiled run did not finish: its listeners say so
            raise
        finally:
            engine.report_listeners = listeners
        report: RunReport = reports[0]
        profile = report.extras.get("profile")
        if profile is not None and not report.interrupted:
            calibration: dict[str, Any] = {"plans": [], "solvers": choice.variant}
            try:
                self._calibrate(executor, guider, engine, args, kwargs, result, profile, calibration, recorder, choice)
                profile["calibration"] = calibration
            except BaseException as err:
                # the profile itself is complete: it is kept, with the plans finished before, and
                # the log says why
                report.note(stopped_note(err, calibration["plans"], self.request.speedups))
                if calibration["plans"]:
                    profile["calibration"] = calibration
                self._tell(listeners, reports)
                raise
        self._tell(listeners, reports)
        return result

    @staticmethod
    def _tell(listeners: list, reports: list[RunReport]) -> None:
        for report in reports:
            for listener in listeners:
                listener(report)

    def _calibrate(self, executor, guider, engine: CacheEngine, args: tuple, kwargs: dict, reference: torch.Tensor,
                   profile: dict[str, Any], calibration: dict[str, Any], recorder: DirectionRecorder | None,
                   choice: SolverChoice) -> None:
        """Plans for each speedup, searched over the profiled steps, added to `calibration` as
        each is found. A profile of part of a schedule gets plans of the whole schedule's length
        (the policies count steps in the whole schedule) that compute every step outside the part."""
        steps, blocks = profile["steps"], len(engine.blocks)
        part = profiled_part(profile) or SchedulePart(0, steps, steps)
        before, after = "C" * part.first, "C" * (part.total - part.end)
        noise, seed = args[0], (args[7] if len(args) > 7 else kwargs.get("seed")) or 0
        cases = [(noise, seed, reference)]
        references = reference_runs(self.request, choice.records_residuals)
        progress = node_progress(self.node_id, planned_evaluations(self.request, steps, blocks, references))
        progress.stage(f"{references} uncached reference run(s)")
        recorders = [recorder] if recorder is not None else []
        # HyCa's stand-in (H) and the residual gains are fitted on what the reference runs record
        recording = RecordingReference() if choice.records_residuals else None
        reference_engine = CacheEngine("Calibration reference", engine.adapter, recording or AlwaysCompute(),
                                       engine.blocks, log_reports=False)
        for k in range(1, self.request.extra_seeds + 1):
            case_seed = seed + k * NOISE_SEED_STRIDE
            case_noise = torch.randn(noise.shape, generator=torch.Generator().manual_seed(case_seed),
                                     dtype=torch.float32).to(device=noise.device, dtype=noise.dtype)
            step_done = progress.run_step(1.0)
            if recorder is not None:
                recorders.append(DirectionRecorder(args[3], step_done))
                step_done = recorders[-1]
            cases.append((case_noise, case_seed, self._sample(executor, guider, reference_engine, args, kwargs,
                                                              case_noise, case_seed, step_done)))
        if recording is not None and not self.request.extra_seeds:   # the run's own case, recorded
            self._sample(executor, guider, reference_engine, args, kwargs, noise, seed, progress.run_step(1.0))
        factors = fitted_factors(recorders) if recorder is not None else None
        recorded = recording.trajectories() if recording is not None else []
        channels = fit_channel_solvers(recorded) if "H" in choice.stand_ins else None
        if channels is not None:
            calibration["channel_solvers"] = channels.as_profile()
        stand_ins = choice.stand_ins if channels is not None else choice.stand_ins.replace("H", "")
        calibration.update(cases=len(cases), batch=int(reference.shape[0]),
                           cost_runs=1.0 + references,
                           evaluations_per_speedup=self.request.evaluations)

        def policy(plan: str, kept: tuple[int, ...] = ()) -> PlannedSchedule:
            scales = ()
            if factors is not None and "V" in plan:
                scales = (1.0,) * len(before) + output_scales(plan, factors) + (1.0,) * len(after)
            chosen = PlannedSchedule(before + plan + after, None if part.is_whole else part, kept, blocks,
                                     output_scales=scales, channel_solvers=channels.solvers if "H" in plan else "")
            if choice.fit_residual_gains and recorded and not kept and set(plan) - set("CV"):
                return replace(chosen, residual_gains=residual_gains(chosen, recorded, part.first))
            return chosen

        def evaluator(kept: tuple[int, ...]) -> Callable[[str], list[float]]:
            def evaluate(plan: str) -> list[float]:
                candidate = policy(plan, kept)
                calibration["cost_runs"] += len(cases) / candidate.speedup
                planned = CacheEngine("Calibration candidate", engine.adapter, candidate, engine.blocks,
                                      log_reports=False)
                scores = []
                for case_noise, case_seed, case_reference in cases:
                    out = self._sample(executor, guider, planned, args, kwargs, case_noise, case_seed,
                                       progress.run_step(1.0 / candidate.speedup))
                    scores += batch_psnr(out, case_reference)
                progress.scored(plan, min(scores))
                return scores
            return evaluate

        plans, faster = calibration["plans"], None
        for speedup in sorted(self.request.speedups, reverse=True):
            progress.stage(f"{speedup:g}x ({len(plans) + 1} of {len(self.request.speedups)} speedups)")
            faster = search_speedup(steps, blocks, speedup, self.request, evaluator, faster, stand_ins)
            found, kept = faster.found, faster.kept
            chosen = policy(found.plan, kept)
            plans.append({"speedup": speedup, "computes": chosen.computes, "plan": chosen.plan,
                          "kept_blocks": list(kept), "psnr_worst": found.worst, "psnr_mean": found.mean,
                          "start_psnr_worst": faster.start_worst, "evaluations": faster.evaluations,
                          **({"output_scales": list(chosen.output_scales)} if chosen.output_scales else {}),
                          **({"residual_gains": list(chosen.residual_gains)} if chosen.residual_gains else {})})
            plans.sort(key=lambda entry: entry["speedup"])
            log.info("Calibration: %gx asked, %.2fx run (%d of %d steps computed%s): plan %s (%s), worst calibration "
                     "case %.1f dB (evenly spaced reuse: %.1f dB), %d plans sampled", speedup, chosen.speedup,
                     chosen.computes, steps, f"; blocks {', '.join(map(str, kept))} on every step" if kept else "",
                     found.plan, faster.source, found.worst, faster.start_worst, faster.evaluations)
        progress.finish()
        cost = calibration["cost_runs"]
        log.info("Calibration cost: %.1f uncached runs of this workflow (%d full-model evaluations per batch "
                 "element, %d cases)", cost, round(cost * steps), len(cases))

    @staticmethod
    def _sample(executor, guider, engine: CacheEngine, args: tuple, kwargs: dict, noise: torch.Tensor,
                seed: int, step_done: Callable[..., None]) -> torch.Tensor:
        """One more sampling run of the same workflow through `engine`, with `noise`, no preview:
        each step it samples is told to `step_done`."""
        original = guider.model_options
        guider.model_options = create_model_options_clone(original)
        guider.model_options["transformer_options"][ENGINE_KEY] = engine
        call = list(args)
        call[0] = noise
        if len(call) > 5:
            call[5] = step_done     # callback: the calibration's progress, no previews
        if len(call) > 6:
            call[6] = True          # disable_pbar
        if len(call) > 7:
            call[7] = seed
        try:
            return executor(*call, **kwargs)
        finally:
            guider.model_options = original

