"""One sampling run through a cached block stack: per block, compute it (and record what the
cache needs) or substitute it.

A step is computed or skipped as a whole. On a skipped step every block but the last passes its
input through and the last adds the cached (or forecast) residual of the whole stack: since each
block only adds its residual to its input, that equals substituting every block with its own
residual, with one tensor held instead of one per block, and one addition per step instead of one
per block. Under a per-block schedule each block is computed or substituted on its own, with its
own residual (layout_cache.py).

Created by `CacheEngine.start_run` and dropped when the run ends (also on interrupt or error),
so nothing from one run can leak into the next.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .adapters import BlockSpec, ModelAdapter
from .containment import own_code
from .layout_cache import WEIGHTS_CHANGED, LayoutCache, call_identity, layout_label, new_layout_cache
from .log import get_logger
from .output_cache import OutputStream, direction
from .policies.base import CachePolicy, StepAction
from .report import CallRecord, RunReport
from .step_schedule import SamplerSteps, StepSchedule

log = get_logger(__name__)


SPLIT_READS_FEATURES = ("this run's model calls are split over several devices (ComfyUI's MultiGPU CFG Split) and this "
                        "node probes the model's features on every device (TaylorSeer's guard, the Block Profiler), "
                        "which the devices would not agree on: every step is computed. Every other caching node, "
                        "TaylorSeer without the guard included, follows the split")
# How long a device's call waits for the main device's decision of a split step before it decides
# on its own: far longer than any model's embeddings take to reach the first block.
SPLIT_DECISION_WAIT_S = 120.0
JOINT_ORDER_UNREAD = ("could not tell in which order this model's joint blocks join the image and text tokens (its "
                      "forward joins them in a way the cache has not seen): every step is computed")


class CallInFlight(threading.local):
    """The model call in flight, one per thread: ComfyUI's multi-GPU split runs a step's calls at
    once, one thread per device, each through its own blocks."""

    layout: LayoutCache | None = None
    adds_between_blocks: bool = False        # told by the APPLY_MODEL wrapper before each call
    # what the call's blocks do on a REUSE_OUTPUT step whose output could not stand in
    blocks_action: StepAction | None = None
    cached_in_forward: bool = False          # a whole-model cache's DIFFUSION_MODEL wrapper cached the call


@dataclass
class StackRun:
    adapter: ModelAdapter
    policy: CachePolicy
    blocks: list[BlockSpec]
    diffusion_model: torch.nn.Module
    schedule: StepSchedule
    report: RunReport
    cache_device: torch.device | None
    sampler_steps: SamplerSteps
    observer: Any = None
    # The strengths of weight-changing hook keyframes (a LoRA scheduled over the steps), when any.
    weight_keyframes: Callable[[], tuple] | None = None
    layouts: dict[tuple, LayoutCache] = field(default_factory=dict)
    outputs: dict[tuple, OutputStream] = field(default_factory=dict)   # per stream: the model's output
    step_output: OutputStream | None = None      # the guided output of the last fully computed step
    step_output_calls: tuple[str, ...] = ()      # that step's calls (their layouts), for the report
    call: CallInFlight = field(default_factory=CallInFlight)
    # Under a split, for a policy that reads the first block's features: the device whose call
    # decides each step (the main one); the other devices' calls wait for its decision.
    deciding_device: Any = None
    step_decided: threading.Event = field(default_factory=threading.Event)
    deciding: threading.Lock = field(default_factory=threading.Lock)
    computes_every_step: bool = False
    whole_level: str | None = None    # a whole-model cache's level, settled by the first call (call_level.py)
    failed: str | None = None         # the note of an unexpected error of the cache's own code

    @property
    def steps_begun(self) -> int:
        """Sampler steps this run has begun."""
        return self.sampler_steps.begun

    def compute_every_step(self, reason: str) -> None:
        """The cache cannot be sure of any skipped step in this run: compute them all, say why once."""
        self.computes_every_step = True
        self.report.note(reason)

    def fail(self, note: str, error: BaseException) -> None:
        """An unexpected error of the cache's own code: the rest of the run is computed without
        the cache, said once in the report and the log (with the traceback)."""
        if self.failed is None:
            log.error("%s: %s", self.report.method, note, exc_info=error)
        self.failed = note
        self.computes_every_step = True
        if note not in self.report.notes:
            self.report.notes.append(note)

    def record_step_without_cache(self, label: str) -> None:
        """The step in flight runs with no part of the cache: it replaces whatever of it was
        recorded before an error, as one fully computed call. Counted from the steps begun, not
        the schedule, which may be what failed."""
        step = self.schedule.part.first_step + self.steps_begun - 1
        self.report.calls = [call for call in self.report.calls if call.step != step]
        self.report.calls.append(CallRecord(step, label, StepAction.COMPUTE.letter * len(self.blocks)))

    def begin_step(self, sigma: torch.Tensor) -> None:
        """A model evaluation begins (the PREDICT_NOISE wrapper): its sampler step begins,
        unless it already has (a sampler's further evaluations of a step follow its decision)."""
        index = self.sampler_steps.current
        if self.schedule.step != self.schedule.part.first_step + index:
            self.schedule.new_step(sigma, index)

    def split_over_devices(self, devices: list) -> str | None:
        """This step's calls run at once on `devices` (ComfyUI's multi-GPU split, one thread per
        device clone, the main device first): each device caches its own calls (its streams, on
        its device) and every device follows the step's one decision: made before the calls
        (`decide_step`), or, for a policy that reads the first block's features, by the main
        device's call, which the others wait for. Why the run cannot follow the split (a guard's
        probe or the profiler read every device's own features)."""
        if self.policy.guard() is not None or self.observer is not None:
            return SPLIT_READS_FEATURES
        self.deciding_device = devices[0] if self.policy.reads_signal else None
        self.report.note(f"split over {len(devices)} devices (ComfyUI's MultiGPU CFG Split): each device caches its own "
                         "calls and every device follows the same step decisions", warn=False)
        return None

    def decide_step(self) -> None:
        """The step's decision, made before its calls (which a multi-GPU split runs at once): from
        the step alone, never a block's features. A stream with nothing cached yet still computes.
        A policy that reads the features is decided by the deciding device's call instead."""
        if self.deciding_device is not None:
            self.step_decided.clear()
        elif self.schedule.decision is None:
            cached = bool(self.layouts or self.outputs) and all(layout.has_cache for layout in self.layouts.values())
            self.schedule.decide(cached, _no_block_signal)

    def begin_model_call(self, control: object, transformer_options: dict, model_kwargs: dict) -> None:
        """A model call begins (the APPLY_MODEL wrapper): note whether it adds terms between blocks."""
        self.call.adds_between_blocks = self.adapter.call_adds_between_blocks(
            self.diffusion_model, control, transformer_options, model_kwargs)

    def step_stand_in(self, x: torch.Tensor, sigma: torch.Tensor, calls_must_run: bool) -> torch.Tensor | None:
        """At the step (the PREDICT_NOISE wrapper), for a policy that reuses outputs: the guided
        denoised latent that stands in for every model call of a REUSE_OUTPUT step, so that not
        even ComfyUI's batching of the conditioning runs. It equals the calls' own stand-ins
        (guidance, areas and context windows combine the calls' outputs with weights that sum to
        one), so it is used wherever nothing else can differ: not when the calls must run
        (`run_wrappers.calls_must_run`: terms between blocks, a post-CFG function), nor under
        weight keyframes (ComfyUI moves them inside the model calls); there the calls decide
        (`output_stand_in`)."""
        if (not self.policy.reuses_outputs or self.computes_every_step or calls_must_run
                or self.weight_keyframes is not None):
            return None
        schedule = self.schedule
        if schedule.decision is None:
            schedule.decide(self.step_output is not None, _no_block_signal)
        if schedule.decision is not StepAction.REUSE_OUTPUT:
            return None
        for label in self.step_output_calls:
            self.report.calls.append(CallRecord(schedule.step, label, StepAction.REUSE_OUTPUT.letter * len(self.blocks)))
        return self.step_output.stand_in(x, sigma)

    def record_step_output(self, x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor,
                           calls_before: int) -> None:
        """After a step, for a policy that reuses outputs: keep its guided direction if every
        block of every call in it was computed (`calls_before`: the report's call count before)."""
        records = self._fully_computed_calls(calls_before)
        if records:
            self.step_output = OutputStream(direction(x, sigma, denoised, self.cache_device), ())
            self.step_output_calls = tuple(r.layout for r in records)

    def output_stand_in(self, x: torch.Tensor, sigma: torch.Tensor, options: dict) -> torch.Tensor | None:
        """At the model call, for a policy that reuses outputs: the denoised latent that stands in
        for the whole model on a REUSE_OUTPUT step, or None when the model runs. A call that adds
        terms between blocks (a ControlNet, VACE) reuses the blocks' residual instead, so that it
        gets this step's terms; a stream with nothing cached, or cached under other weights,
        computes."""
        if self.computes_every_step or not self.policy.reuses_outputs:
            return None
        identity = call_identity(options, x)
        stream = self.outputs.get(identity)
        schedule = self.schedule
        if not schedule.started:
            schedule.new_step(options["sigmas"])
        if schedule.decision is None:
            schedule.decide(stream is not None, _no_block_signal)
        if schedule.decision is not StepAction.REUSE_OUTPUT:
            return None
        weights = self._weights()
        if self.call.adds_between_blocks:
            self.call.blocks_action = StepAction.REUSE
            return None
        if stream is None or stream.weights != weights:
            if stream is not None:
                self.report.note(WEIGHTS_CHANGED)
            self.call.blocks_action = StepAction.COMPUTE
            return None
        self.call.adds_between_blocks = False
        self.report.calls.append(CallRecord(schedule.step, layout_label(identity[0]),
                                            StepAction.REUSE_OUTPUT.letter * len(self.blocks)))
        return stream.stand_in(x, sigma)

    def record_output(self, x: torch.Tensor, sigma: torch.Tensor, options: dict, denoised: torch.Tensor,
                      calls_before: int) -> None:
        """After a model call, for a policy that reuses outputs: keep its direction if every block
        of it was computed (`calls_before`: the report's call count before the call)."""
        if self._fully_computed_calls(calls_before):
            self.outputs[call_identity(options, x)] = OutputStream(direction(x, sigma, denoised, self.cache_device),
                                                                   self._weights())
            self.report.cache_peak_bytes = max(self.report.cache_peak_bytes, self.cache_bytes())

    def _fully_computed_calls(self, calls_before: int) -> list[CallRecord]:
        """The report's calls since `calls_before` if there are some, every block of each was
        computed and the output may be kept (a policy that reuses outputs); else none."""
        if not self.policy.reuses_outputs or self.computes_every_step:
            return []
        records = self.report.calls[calls_before:]
        return records if all(set(r.block_actions) == {"C"} for r in records) else []

    def _weights(self) -> tuple:
        """The current strengths of the run's weight keyframes (none: an empty tuple)."""
        return self.weight_keyframes() if self.weight_keyframes is not None else ()

    def run_block(self, position: int, args: dict, compute: Callable[[dict], dict]) -> dict:
        """Substitute the block, or compute it and record what the cache needs."""
        if self.computes_every_step:
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
        layout = self.call.layout
        if not layout.read_joint_order(position, args):
            self.compute_every_step(JOINT_ORDER_UNREAD)
            return None
        if not layout.computes_block(position):
            if position == 0 and layout.probe is not None and layout.probe.ready(args["img"]):
                self._keep_inputs(layout, position, args)
                layout.probe.probing = True
                return None
            out = layout.substitute(position, args)
            layout.note_block_result(position, out)
            self._block_done(layout, position, layout.action.letter)
            return out
        self._keep_inputs(layout, position, args)
        return None

    def after_block(self, position: int, out: dict) -> dict | None:
        """Record a computed block; after an accepted probe, what the block passes on instead
        of its output (None: its output)."""
        layout = self.call.layout
        if layout.probe is not None and layout.probe.probing:
            layout.probe.probing = False
            scale = layout.probe.fitted_scale(layout.step, out["img"], layout.label)
            if scale is not None:
                layout.forecast_scale = scale
                self.report.forecast_scales.append(scale)
                passed_on = layout.probe_accepted()
                layout.note_block_result(position, out if passed_on is None else passed_on)
                self._block_done(layout, position, "C")
                return passed_on
            layout.action = StepAction.COMPUTE
            self.report.fallbacks += 1
            self.schedule.fall_back()
        self._record(layout, position, out)
        layout.note_block_result(position, out)
        self._block_done(layout, position, "C")
        return None

    # ---- one model call -----------------------------------------------------------------------
    def _begin_call(self, args: dict) -> None:
        options = args["transformer_options"]
        layout = self._layout(call_identity(options, args["img"]))
        schedule = self.schedule
        if not schedule.started:   # the model is called outside ComfyUI's predict_noise
            schedule.new_step(options["sigmas"])
        if schedule.decision is None:
            self._decide(layout, args)
        weights = self._weights()
        decided, self.call.blocks_action = self.call.blocks_action or schedule.decision, None
        if decided is StepAction.REUSE_OUTPUT:   # a call that reached the blocks without a stand-in
            decided = StepAction.COMPUTE
        action, reason = layout.action_for(decided, weights)
        if reason is not None:
            self.report.note(reason)
        if self.observer is not None:
            self.observer.on_call(schedule.step, schedule.sigma_value(), layout.label,
                                  lambda: self.adapter.modulated_input(self.diffusion_model, args),
                                  lambda: self.adapter.stack_input(args, self.blocks))
        plan = self.policy.block_letters(schedule.memory) if self.policy.decides_blocks and action is not StepAction.COMPUTE else None
        layout.begin_call(schedule.step, action, self.call.adds_between_blocks, plan)
        self.call.adds_between_blocks = False
        self.call.layout = layout

    def _decide(self, layout: LayoutCache, args: dict) -> None:
        """The step's decision at its first call. Under a split whose steps the main device's
        features decide, another device's call waits for that decision (and decides on its own
        only if none comes: its own streams stay right either way)."""
        device = args["transformer_options"].get("multigpu_thread_device")
        if self.deciding_device is not None and device is not None and device != self.deciding_device:
            self.step_decided.wait(SPLIT_DECISION_WAIT_S)
        with self.deciding:
            if self.schedule.decision is None:
                self.schedule.decide(layout.has_cache, lambda: self.adapter.modulated_input(self.diffusion_model, args))
        self.step_decided.set()

    def _layout(self, identity: tuple) -> LayoutCache:
        if identity not in self.layouts:
            self.layouts[identity] = new_layout_cache(identity, self.policy, self.adapter, self.blocks,
                                                      self.cache_device)
        return self.layouts[identity]

    def _block_done(self, layout: LayoutCache, position: int, letter: str) -> None:
        layout.block_letters.append(letter)
        if position == len(self.blocks) - 1:
            if layout.action is StepAction.COMPUTE and self.policy.skips_steps:
                layout.has_cache = True
            self.report.calls.append(CallRecord(layout.step, layout.label, "".join(layout.block_letters)))
            self.report.cache_peak_bytes = max(self.report.cache_peak_bytes, self.cache_bytes())
            self.call.layout = None

    def _keep_inputs(self, layout: LayoutCache, position: int, args: dict) -> None:
        if self.policy.skips_steps:   # a policy that never skips needs nothing kept
            layout.keep_inputs(position, args)

    def _record(self, layout: LayoutCache, position: int, out: dict) -> None:
        if self.policy.skips_steps:
            layout.record(position, out)
        if self.observer is not None:
            self.observer.on_block(layout.step, position, self.blocks[position], out, layout.in_last_layout)

    def cache_bytes(self) -> int:
        return (sum(layout.nbytes() for layout in self.layouts.values())
                + sum(stream.nbytes() for stream in self.outputs.values())
                + (self.step_output.nbytes() if self.step_output is not None else 0))

    def release(self) -> None:
        """Drop every cached tensor and the model reference."""
        self.layouts.clear()
        self.outputs.clear()
        self.step_output = None
        self.call.layout = None
        self.observer = None
        self.diffusion_model = None


def _no_block_signal() -> torch.Tensor:
    raise RuntimeError("a policy that reuses model outputs read the first block's signal, which does not exist "
                       "before the model runs")


def _contained(method: Callable, where: str) -> Callable:
    """`method` with its unexpected errors raised as CacheInternalError (see containment.py)."""
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
