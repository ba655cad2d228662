"""Block dispatch: per block of a model call, compute it (and record what the cache needs) or
substitute it.

A step is computed or skipped as a whole, each span of blocks (the whole stack, or the spans of a
per-block schedule) standing in with its residual (span_residuals.py). A guarded skipped step
computes its first block (the probe): accepted, the stack's forecast is scaled by the fitted
factor; refused, the step is computed after all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..adapters.base import ModelAdapter
from ..policies.base import CachePolicy, StepAction
from ..support.containment import own_code
from .call_action import call_action
from .call_in_flight import CallInFlight
from .call_recorder import CallRecorder
from .device_split import DeviceSplit
from .fallback import RunFallback
from .joint_order import JOINT_ORDER_UNREAD, note_block_result, read_joint_order
from .span_residuals import SpanResiduals
from .step_schedule import StepSchedule
from .stream_cache import StreamCaches, call_identity


@dataclass
class StackRun:
    policy: CachePolicy
    adapter: ModelAdapter
    residuals: SpanResiduals
    streams: StreamCaches
    schedule: StepSchedule
    split: DeviceSplit
    recorder: CallRecorder
    fallback: RunFallback
    call: CallInFlight
    weights: Callable[[], tuple]
    cache_bytes: Callable[[], int]          # the whole run's cache, for the report's peak
    diffusion_model: torch.nn.Module | None
    observer: Any = None

    def run_block(self, position: int, args: dict, compute: Callable[[dict], dict]) -> dict:
        """Substitute the block, or compute it and record what the cache needs."""
        if self.fallback.computes_every_step:
            return compute(args)
        compiling = torch.compiler.is_compiling()
        before = _before_block_untraced if compiling else _before_block
        after = _after_block_untraced if compiling else _after_block
        substitute = before(self, position, args)
        if substitute is not None:
            return substitute
        out = compute(args)  # the real block: what torch.compile compiles
        passed_on = after(self, position, out)
        return out if passed_on is None else passed_on

    def before_block(self, position: int, args: dict) -> dict | None:
        """The block's substitute output on a skipped step; None when it must be computed (a
        guarded skipped step computes its first block: the probe)."""
        if position == 0:
            self._begin_call(args)
        call, geometry = self.call, self.residuals.geometry
        if not read_joint_order(geometry, call, position, args):
            self.fallback.compute_every_step(JOINT_ORDER_UNREAD)
            return None
        if not call.computes_block(position):
            probe = call.stream.probe
            if position == 0 and probe is not None and probe.ready(args["img"]):
                self._keep_input(position, args)
                probe.probing = True
                return None
            out = self.residuals.substitute(call, position, args)
            note_block_result(geometry, call, position, out)
            self._block_done(position, call.action.letter)
            return out
        self._keep_input(position, args)
        return None

    def after_block(self, position: int, out: dict) -> dict | None:
        """Record a computed block; after an accepted probe, what the block passes on instead
        of its output (None: its output)."""
        call = self.call
        probe = call.stream.probe
        if probe is not None and probe.probing:
            probe.probing = False
            scale = probe.fitted_scale(call.step, out["img"], call.stream.label)
            if scale is not None:
                call.forecast_scale = scale
                self.recorder.forecast_accepted(scale)
                passed_on = self.residuals.probe_accepted(call)
                note_block_result(self.residuals.geometry, call, position, out if passed_on is None else passed_on)
                self._block_done(position, "C")
                return passed_on
            call.action = StepAction.COMPUTE
            self.recorder.fallback()
            self.schedule.fall_back()
        if self.policy.skips_steps:
            self.residuals.record(call, position, out)
        if self.observer is not None:
            stream = call.stream
            self.observer.on_block(call.step, position, self.residuals.geometry.blocks[position], out,
                                   lambda parts: self.residuals.geometry.in_last_layout(parts, stream.text_first))
        note_block_result(self.residuals.geometry, call, position, out)
        self._block_done(position, "C")
        return None

    def _begin_call(self, args: dict) -> None:
        """The call's stream, and its action on the step (deciding the step at its first call)."""
        options = args["transformer_options"]
        stream = self.streams.stream_for(call_identity(options, args["img"]))
        schedule = self.schedule
        if not schedule.started:   # the model is called outside ComfyUI's predict_noise
            schedule.new_step(options["sigmas"])
        decision = self.split.decide(schedule, options.get("multigpu_thread_device"), stream.has_cache,
                                     lambda: self.adapter.modulated_input(self.diffusion_model, args))
        call = self.call
        decided, call.blocks_action = call.blocks_action or decision, None
        weights = self.weights()
        action, reason = call_action(decided, stream.has_cache, stream.weights, weights)
        if reason is not None:
            self.recorder.note(reason)
        if action is StepAction.COMPUTE:
            stream.weights = weights
        if self.observer is not None:
            self.observer.on_call(schedule.step, schedule.sigma_value(), stream.label,
                                  lambda: self.adapter.modulated_input(self.diffusion_model, args),
                                  lambda: self.adapter.stack_input(args, self.residuals.geometry.blocks))
        skipping_blocks = self.policy.decides_blocks and action is not StepAction.COMPUTE
        call.begin(stream, schedule.step, action, self.policy.block_letters(schedule.memory) if skipping_blocks else None)

    def _keep_input(self, position: int, args: dict) -> None:
        if self.policy.skips_steps:   # a policy that never skips needs nothing kept
            self.residuals.keep_input(self.call, position, args)

    def _block_done(self, position: int, letter: str) -> None:
        call = self.call
        call.letters.append(letter)
        if position == self.residuals.geometry.last:
            if call.action is StepAction.COMPUTE and self.policy.skips_steps:
                call.stream.has_cache = True
            self.recorder.call(call.step, call.stream.label, "".join(call.letters))
            self.recorder.cache_size(self.cache_bytes())
            call.stream = None


def _contained(method: Callable, where: str) -> Callable:
    """`method` with its unexpected errors raised as CacheInternalError (support/containment.py)."""
    def call(*args):
        with own_code(where):
            return method(*args)
    return call


_before_block = _contained(StackRun.before_block, "before a block")
_after_block = _contained(StackRun.after_block, "after a block")
# Under torch.compile (ComfyUI's TorchCompileModel) the run's bookkeeping, which changes every
# step, would make dynamo recompile per step; these untraced entry points keep it eager while the
# real block between them is compiled.
_before_block_untraced = torch.compiler.disable(_before_block)
_after_block_untraced = torch.compiler.disable(_after_block)
