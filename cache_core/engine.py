"""Runs one block under a policy: compute it (and record the stack's residual), or substitute it.

A step is computed or skipped as a whole. On a skipped step every block but the last passes its
input through and the last adds the cached (or forecast) residual of the whole stack: since each
block only adds its residual to its input, that equals substituting every block with its own
residual, with one tensor held instead of one per block, and one addition per step instead of one
per block.

The engine is immutable configuration shared by every run of one patched model; all that
changes during a run lives in the `RunState` it creates in `start_run`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .adapters import BlockSpec, ModelAdapter
from .log import get_logger
from .policies.base import CachePolicy, StepAction, StepContext
from .predictors import LastResidual, ResidualPredictor, TaylorResidual
from .report import CallRecord, RunReport
from .state import PROBE_SLOT, STACK_SLOT, RunState, StreamState
from .tensor_measures import fitted_scale_and_error

log = get_logger(__name__)

ReportListener = Callable[[RunReport], None]


@dataclass
class CacheEngine:
    method: str
    adapter: ModelAdapter
    policy: CachePolicy
    blocks: list[BlockSpec]
    start_percent: float = 0.0
    end_percent: float = 1.0
    offload_cache: bool = False
    observer_factory: Callable[["CacheEngine"], Any] | None = None
    report_listeners: list[ReportListener] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 <= self.start_percent <= 1.0 or not 0.0 <= self.end_percent <= 1.0:
            raise ValueError(f"start_percent and end_percent must be between 0 and 1 (got {self.start_percent}, {self.end_percent})")
        if self.start_percent > self.end_percent:
            raise ValueError(f"start_percent ({self.start_percent}) must not be after end_percent ({self.end_percent})")

    # ---- run lifetime -------------------------------------------------------------------
    def start_run(self, diffusion_model: torch.nn.Module, model_sampling: Any, sigmas: torch.Tensor) -> RunState:
        report = RunReport(self.method, self.adapter.family, self.policy.describe(), total_steps=max(len(sigmas) - 1, 0))
        state = RunState(
            policy=self.policy,
            adapter=self.adapter,
            blocks=self.blocks,
            diffusion_model=diffusion_model,
            start_sigma=float(model_sampling.percent_to_sigma(self.start_percent)),
            end_sigma=float(model_sampling.percent_to_sigma(self.end_percent)),
            full_window=self.start_percent == 0.0 and self.end_percent == 1.0,
            total_steps=report.total_steps,
            cache_device=torch.device("cpu") if self.offload_cache else None,
            report=report,
            engine=self,
            memo=self.policy.new_memo(),
            observer=self.observer_factory(self) if self.observer_factory else None,
        )
        return state

    def finish_run(self, state: RunState, interrupted: bool) -> RunReport:
        report = state.report
        report.interrupted = interrupted
        report.sigmas = state.clock.sigma_values()
        if state.observer is not None:
            report.extras.update(state.observer.finish(report))
        state.release()
        log.info(report.summary_line())
        for listener in self.report_listeners:
            listener(report)
        return report

    # ---- per block ----------------------------------------------------------------------
    def run_block(self, state: RunState, position: int, args: dict, compute: Callable[[dict], dict]) -> dict:
        """Substitute the block, or compute it and record what the policy needs."""
        compiling = torch.compiler.is_compiling()
        before = _before_block_untraced if compiling else CacheEngine.before_block
        after = _after_block_untraced if compiling else CacheEngine.after_block
        substitute = before(self, state, position, args)
        if substitute is not None:
            return substitute
        out = compute(args)  # the real block: what torch.compile compiles
        after(self, state, position, out)
        return out

    def before_block(self, state: RunState, position: int, args: dict) -> dict | None:
        """The block's substitute output on a skipped step; None when it must be computed. A
        guarded skipped step computes its first block (the probe)."""
        if position == 0:
            self._begin_call(state, args)
        stream = state.current
        if stream.action is not StepAction.COMPUTE:
            if position == 0 and self._can_probe(state, stream, args):
                self._keep_inputs(state, stream, args)
                stream.probing = True
                return None
            out = self._substitute(state, stream, position, args)
            self._block_done(state, stream, position, stream.action.letter)
            return out
        if position == 0:
            self._keep_inputs(state, stream, args)
        return None

    def after_block(self, state: RunState, position: int, out: dict) -> None:
        stream = state.current
        if stream.probing:
            stream.probing = False
            if self._forecast_holds(state, stream, out):
                stream.probe_inputs = None
                self._block_done(state, stream, position, "C")
                return
            self._fall_back(state, stream)
        self._record(state, stream, position, out)
        self._block_done(state, stream, position, "C")

    def _block_done(self, state: RunState, stream: StreamState, position: int, letter: str) -> None:
        stream.block_actions.append(letter)
        if position == len(self.blocks) - 1:
            self._end_call(state, stream)

    # ---- forecast guard -------------------------------------------------------------------
    def _can_probe(self, state: RunState, stream: StreamState, args: dict) -> bool:
        if state.policy.guard_tolerance <= 0:
            return False
        predictor = stream.predictors.get(PROBE_SLOT)
        return predictor is not None and predictor.ready(args["img"])

    def _forecast_holds(self, state: RunState, stream: StreamState, out: dict) -> bool:
        """Fit this step's forecast to the probe, then say whether the fit is close enough.

        The first block's forecast is its last computed residual plus what the Taylor terms add.
        The scale of those terms that brings the forecast closest to the block's real residual
        (0 = plain reuse, 1 = the full extrapolation) says how much of the extrapolation the
        model followed at this step; the whole stack is forecast at the same scale. The step is
        trusted when the first block's forecast at that scale is within the tolerance."""
        real = out["img"] - stream.probe_inputs["img"]
        predictor = stream.predictors[PROBE_SLOT]
        reused = predictor.predict(stream.step, real, scale=0.0)
        added = predictor.predict(stream.step, real) - reused
        scale, error = fitted_scale_and_error(real, reused, added)
        log.debug("step %d: %s forecast scale %.3f, error %.4f (tolerance %s)", stream.step, stream.label, scale,
                  error, state.policy.guard_tolerance)
        if error > state.policy.guard_tolerance:
            return False
        stream.forecast_scale = scale
        state.report.forecast_scales.append(scale)
        return True

    def _fall_back(self, state: RunState, stream: StreamState) -> None:
        """Turn this call's skipped step into a full compute; the first block is already done."""
        stream.action = StepAction.COMPUTE
        state.report.fallbacks += 1
        clock = state.clock
        if clock.step == stream.step:  # later calls of this step compute too
            clock.decision = StepAction.COMPUTE
            clock.last_compute_step = clock.step
            clock.consecutive_skips = 0

    # ---- step bookkeeping -------------------------------------------------------------------
    def _begin_call(self, state: RunState, args: dict) -> None:
        options = args["transformer_options"]
        cond_or_uncond = tuple(options.get("cond_or_uncond", ()))
        key = (cond_or_uncond, tuple(args["img"].shape))
        stream = state.streams.get(key)
        if stream is None:
            label = "+".join("uncond" if c == 1 else "cond" for c in cond_or_uncond) or "batch"
            stream = state.streams[key] = StreamState(label)
        clock = state.clock
        if clock.tick(options["sigmas"]):
            clock.decision = self._decide(state, stream, args)
            if clock.decision is StepAction.COMPUTE:
                clock.last_compute_step = clock.step
                clock.consecutive_skips = 0
            else:
                clock.consecutive_skips += 1
        action = clock.decision
        if action is not StepAction.COMPUTE and not stream.has_cache:
            log.debug("step %d: %s has nothing cached yet, computing it", clock.step, stream.label)
            action = StepAction.COMPUTE
        if state.observer is not None:
            state.observer.on_call(clock.step, clock.sigma_value(), stream.label,
                                   lambda: self.adapter.modulated_input(state.diffusion_model, args),
                                   lambda: self.adapter.stack_input(args))
        stream.action, stream.step = action, clock.step
        stream.block_actions = []
        state.current = stream

    def _decide(self, state: RunState, stream: StreamState, args: dict) -> StepAction:
        clock = state.clock
        ctx = StepContext(
            step=clock.step,
            total_steps=state.total_steps,
            steps_since_compute=clock.step - clock.last_compute_step,
            consecutive_skips=clock.consecutive_skips,
            signal=lambda: self.adapter.modulated_input(state.diffusion_model, args),
        )
        action = state.policy.decide(ctx, state.memo) if state.in_window() else StepAction.COMPUTE
        if action is StepAction.COMPUTE or not stream.has_cache:
            state.policy.observe_compute(ctx, state.memo)
            return StepAction.COMPUTE
        return action

    def _end_call(self, state: RunState, stream: StreamState) -> None:
        if stream.action is StepAction.COMPUTE and state.policy.skips_steps:
            stream.has_cache = True
        state.report.calls.append(CallRecord(stream.step, stream.label, "".join(stream.block_actions)))
        state.report.cache_peak_bytes = max(state.report.cache_peak_bytes, state.cache_bytes())
        state.current = None

    # ---- the cache ----------------------------------------------------------------------------
    def _predictor(self, state: RunState, stream: StreamState, slot: tuple[int, str]) -> ResidualPredictor:
        predictor = stream.predictors.get(slot)
        if predictor is None:
            if state.policy.skip_action is StepAction.FORECAST:
                predictor = TaylorResidual(state.cache_device, getattr(state.policy, "order", 0))
            else:
                predictor = LastResidual(state.cache_device)
            stream.predictors[slot] = predictor
        return predictor

    def _keep_inputs(self, state: RunState, stream: StreamState, args: dict) -> None:
        """At the first block: keep the stack input (for the stack residual) and, for a guard,
        the first block's inputs (for its own residual, which the probe forecasts)."""
        if not state.policy.skips_steps:
            return
        if state.policy.guard_tolerance > 0:
            img = args["img"]
            stream.probe_inputs = {"img": img.clone() if self.adapter.blocks_modify_inputs else img}
        stream.stack_input = self.adapter.stack_input(args)

    def _record(self, state: RunState, stream: StreamState, position: int, out: dict) -> None:
        if position == 0 and stream.probe_inputs is not None:
            for k, before in stream.probe_inputs.items():
                self._predictor(state, stream, (0, k)).update(stream.step, out[k] - before)
            stream.probe_inputs = None
        if position == len(self.blocks) - 1 and stream.stack_input is not None:
            self._predictor(state, stream, STACK_SLOT).update(stream.step, out["img"] - stream.stack_input)
            stream.stack_input = None
        if state.observer is not None:
            state.observer.on_block(stream.step, position, self.blocks[position], out)

    def _substitute(self, state: RunState, stream: StreamState, position: int, args: dict) -> dict:
        """Every block but the last passes its input through; the last adds the stack residual."""
        if position < len(self.blocks) - 1:
            return {k: args[k] for k in self.blocks[position].streams}
        # After a probe the first block really ran, so the last block's input is no longer the
        # stack input: add the forecast to the kept stack input instead.
        base = args["img"] if stream.stack_input is None else stream.stack_input
        stream.stack_input = None
        scale, stream.forecast_scale = stream.forecast_scale, 1.0
        return {"img": base + stream.predictors[STACK_SLOT].predict(stream.step, base, scale=scale)}


# Under torch.compile (ComfyUI's TorchCompileModel) the engine's bookkeeping, which changes every
# step, would make dynamo recompile per step; these untraced entry points keep it eager while the
# real block between them is compiled. Eager runs call the plain methods directly.
_before_block_untraced = torch.compiler.disable(CacheEngine.before_block)
_after_block_untraced = torch.compiler.disable(CacheEngine.after_block)
