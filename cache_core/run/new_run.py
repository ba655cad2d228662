"""A sampling run put together from its parts, for one engine's adapter, policy and blocks."""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..adapters.base import BlockSpec, ModelAdapter
from ..policies.base import CachePolicy
from .call_in_flight import CallInFlight
from .call_recorder import CallRecorder
from .device_split import DeviceSplit
from .fallback import RunFallback
from .output_reuse import OutputReuse
from .report import RunReport
from .run_geometry import RunGeometry
from .sampler_steps import SamplerSteps
from .sampling_run import SamplingRun
from .span_residuals import SpanResiduals
from .stack_run import StackRun
from .step_schedule import StepSchedule
from .stream_cache import StreamCaches


def new_sampling_run(adapter: ModelAdapter, policy: CachePolicy, blocks: list[BlockSpec],
                     diffusion_model: torch.nn.Module, schedule: StepSchedule, sampler_steps: SamplerSteps,
                     report: RunReport, cache_device: torch.device | None, observer: Any,
                     weight_keyframes: Callable[[], tuple] | None) -> SamplingRun:
    guard = policy.guard()

    def new_probe():
        if guard is None:
            return None
        return guard.new_probe(policy.new_predictor(cache_device), adapter.blocks_modify_inputs)

    recorder = CallRecorder(report)
    fallback = RunFallback(recorder)
    streams = StreamCaches(lambda: policy.new_predictor(cache_device), new_probe)
    outputs = OutputReuse(recorder, cache_device, len(blocks))
    split, call = DeviceSplit(), CallInFlight()
    stack = StackRun(policy, adapter, SpanResiduals(RunGeometry.of(adapter, blocks, policy)), streams, schedule,
                     split, recorder, fallback, call,
                     weights=lambda: weight_keyframes() if weight_keyframes is not None else (),
                     cache_bytes=lambda: streams.nbytes() + outputs.nbytes(),
                     diffusion_model=diffusion_model, observer=observer)
    return SamplingRun(adapter, policy, diffusion_model, schedule, sampler_steps, recorder, fallback, streams, stack,
                       outputs, split, call, weight_keyframes=weight_keyframes, observer=observer)
