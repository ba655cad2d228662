"""One sampling run: what the wrappers and hooks talk to, made by `CacheEngine.start_run` and
dropped when the run ends (also on interrupt or error), so nothing from one run can leak into
the next. It holds the run's parts (the step clock and decision, the streams' caches, the block
dispatch, the output reuse, a multi-GPU split, the report's recorder, the fallback) and routes
each event of the sampling to the part it concerns."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..adapters.base import ModelAdapter
from ..policies.base import CachePolicy, StepAction
from .call_in_flight import CallInFlight
from .call_recorder import CallRecorder
from .device_split import DeviceSplit
from .fallback import RunFallback
from .output_reuse import OutputReuse
from .report import RunReport
from .sampler_steps import SamplerSteps
from .stack_run import StackRun
from .step_schedule import StepSchedule
from .stream_cache import StreamCaches, call_identity


@dataclass
class SamplingRun:
    adapter: ModelAdapter
    policy: CachePolicy
    diffusion_model: torch.nn.Module | None
    schedule: StepSchedule
    sampler_steps: SamplerSteps
    recorder: CallRecorder
    fallback: RunFallback
    streams: StreamCaches
    stack: StackRun
    outputs: OutputReuse
    split: DeviceSplit
    call: CallInFlight
    # the strengths of weight-changing hook keyframes (a LoRA scheduled over the steps), when any
    weight_keyframes: Callable[[], tuple] | None = None
    observer: Any = None
    whole_level: str | None = None    # a whole-model cache's level, settled by the first call (call_level.py)

    @property
    def report(self) -> RunReport:
        return self.recorder.report

    @property
    def computes_every_step(self) -> bool:
        return self.fallback.computes_every_step

    @property
    def steps_begun(self) -> int:
        """Sampler steps this run has begun."""
        return self.sampler_steps.begun

    def compute_every_step(self, reason: str) -> None:
        """The cache cannot be sure of any skipped step in this run: compute them all, say why once."""
        self.fallback.compute_every_step(reason)

    def fail(self, note: str, error: BaseException) -> None:
        self.fallback.fail(note, error)

    def record_step_without_cache(self, label: str) -> None:
        """The step in flight runs with no part of the cache: it replaces whatever of it was
        recorded before an error, as one fully computed call. Counted from the steps begun, not
        the schedule, which may be what failed."""
        step = self.schedule.part.first + self.steps_begun - 1
        self.recorder.step_without_cache(step, label, len(self.stack.residuals.geometry.blocks))

    def weights(self) -> tuple:
        """The current strengths of the run's weight keyframes (none: an empty tuple)."""
        return self.stack.weights()

    def begin_step(self, sigma: torch.Tensor) -> None:
        """A model evaluation begins (the PREDICT_NOISE wrapper): its sampler step begins,
        unless it already has (a sampler's further evaluations of a step follow its decision)."""
        index = self.sampler_steps.current
        if self.schedule.step != self.schedule.part.first + index:
            self.schedule.new_step(sigma, index)

    def split_over_devices(self, devices: list) -> str | None:
        """This step's calls run at once on `devices` (device_split.py); why the run cannot
        follow the split, or None."""
        refused = self.split.split(devices, self.policy, self.policy.guard() is not None or self.observer is not None)
        if refused is None:
            self.recorder.note(f"split over {len(devices)} devices (ComfyUI's MultiGPU CFG Split): each device caches "
                               "its own calls and every device follows the same step decisions", warn=False)
        return refused

    def decide_step(self) -> None:
        """Before a split step's calls, which run at once."""
        cached = bool(self.streams or self.outputs.streams) and self.streams.all_cached()
        self.split.before_calls(self.schedule, cached)

    def begin_model_call(self, adds_between_blocks: bool) -> None:
        """A model call begins (the APPLY_MODEL wrapper), adding terms between blocks or not."""
        self.call.adds_between_blocks = adds_between_blocks

    def step_stand_in(self, x: torch.Tensor, sigma: torch.Tensor, calls_must_run: bool) -> torch.Tensor | None:
        """At the step (the PREDICT_NOISE wrapper), for a policy that reuses outputs: the guided
        denoised latent that stands in for every model call of a REUSE_OUTPUT step, so that not
        even ComfyUI's batching of the conditioning runs. It equals the calls' own stand-ins
        (guidance, areas and context windows combine the calls' outputs with weights that sum to
        one), so it is used wherever nothing else can differ: not when the calls must run (terms
        between blocks, a post-CFG function), nor under weight keyframes (ComfyUI moves them
        inside the model calls); there the calls decide (`output_stand_in`)."""
        if (not self.policy.reuses_outputs or self.computes_every_step or calls_must_run
                or self.weight_keyframes is not None):
            return None
        if self.schedule.decided(self.outputs.step_output is not None) is not StepAction.REUSE_OUTPUT:
            return None
        step = self.schedule.step
        return self.outputs.step_stand_in(step, x, sigma, self.policy.output_scale(step))

    def record_step_output(self, x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor,
                           calls_before: int) -> None:
        if self.policy.reuses_outputs and not self.computes_every_step:
            self.outputs.keep_step(x, sigma, denoised, calls_before)

    def output_stand_in(self, x: torch.Tensor, sigma: torch.Tensor, options: dict) -> torch.Tensor | None:
        """At the model call, for a policy that reuses outputs: the denoised latent that stands in
        for the whole model on a REUSE_OUTPUT step, or None when the model runs (call_action.py)."""
        if self.computes_every_step or not self.policy.reuses_outputs:
            return None
        identity = call_identity(options, x)
        decision = self.schedule.decided(identity in self.outputs.streams, sigmas=options["sigmas"])
        if decision is not StepAction.REUSE_OUTPUT:
            return None
        stand_in, self.call.blocks_action = self.outputs.call_stand_in(
            identity, self.schedule.step, self.weights(), self.call.adds_between_blocks, x, sigma,
            self.policy.output_scale(self.schedule.step))
        if stand_in is not None:
            self.call.adds_between_blocks, self.call.blocks_action = False, None
        return stand_in

    def record_output(self, x: torch.Tensor, sigma: torch.Tensor, options: dict, denoised: torch.Tensor,
                      calls_before: int) -> None:
        """After a model call, for a policy that reuses outputs: keep its direction if every block
        of it was computed (`calls_before`: the calls recorded before it)."""
        if not self.policy.reuses_outputs or self.computes_every_step:
            return
        if self.outputs.keep_call(call_identity(options, x), x, sigma, denoised, calls_before, self.weights()):
            self.recorder.cache_size(self.cache_bytes())

    def run_block(self, position: int, args: dict, compute: Callable[[dict], dict]) -> dict:
        return self.stack.run_block(position, args, compute)

    def cache_bytes(self) -> int:
        return self.stack.cache_bytes()

    def release(self) -> None:
        """Drop every cached tensor and the model reference."""
        self.streams.clear()
        self.outputs.clear()
        self.call.stream = None
        self.observer = self.stack.observer = None
        self.diffusion_model = self.stack.diffusion_model = None
