"""The whole model's output as a stand-in, for a policy that `reuses_outputs` (a calibrated plan's
`V` steps): per stream of model calls, and for the guided output of a whole step, the sampler's
direction of the last fully computed one (stand_ins/output_stand_in.py)."""
from __future__ import annotations

import torch

from ..policies.base import StepAction
from ..stand_ins.output_stand_in import OutputStream, direction
from .call_action import call_action
from .call_recorder import CallRecorder
from .stream_cache import stream_label


class OutputReuse:
    def __init__(self, recorder: CallRecorder, cache_device: torch.device | None, block_count: int) -> None:
        self.recorder = recorder
        self.cache_device = cache_device
        self.block_count = block_count
        self.streams: dict[tuple, OutputStream] = {}   # per stream: the model's output
        self.step_output: OutputStream | None = None   # the guided output of the last fully computed step
        self.step_output_calls: tuple[str, ...] = ()   # that step's calls (their streams), for the report

    def step_stand_in(self, step: int, x: torch.Tensor, sigma: torch.Tensor, scale: float) -> torch.Tensor:
        """The guided denoised latent of a REUSE_OUTPUT step that a whole step's output stands in
        for, its calls recorded as they were when it was computed."""
        for label in self.step_output_calls:
            self.recorder.call(step, label, StepAction.REUSE_OUTPUT.letter * self.block_count)
        return self.step_output.stand_in(x, sigma, scale)

    def keep_step(self, x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor, calls_before: int) -> None:
        """After a step: keep its guided direction if every block of every call in it was
        computed (`calls_before`: the recorded calls before the step)."""
        records = self.recorder.fully_computed_since(calls_before)
        if records:
            self.step_output = OutputStream(direction(x, sigma, denoised, self.cache_device), ())
            self.step_output_calls = tuple(r.stream for r in records)

    def call_stand_in(self, identity: tuple, step: int, weights: tuple, between_blocks: bool,
                      x: torch.Tensor, sigma: torch.Tensor, scale: float) -> tuple[torch.Tensor | None, StepAction]:
        """On a REUSE_OUTPUT step, at a model call: the denoised latent that stands in for the
        model (None when the model runs), and what the call's blocks do when it runs."""
        stream = self.streams.get(identity)
        action, reason = call_action(StepAction.REUSE_OUTPUT, stream is not None,
                                     stream.weights if stream is not None else (), weights,
                                     at_output=True, between_blocks=between_blocks)
        if reason is not None:
            self.recorder.note(reason)
        if action is not StepAction.REUSE_OUTPUT:
            return None, action
        self.recorder.call(step, stream_label(identity[0]), StepAction.REUSE_OUTPUT.letter * self.block_count)
        return stream.stand_in(x, sigma, scale), action

    def keep_call(self, identity: tuple, x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor,
                  calls_before: int, weights: tuple) -> bool:
        """After a model call: keep its direction if every block of it was computed; whether kept."""
        if not self.recorder.fully_computed_since(calls_before):
            return False
        self.streams[identity] = OutputStream(direction(x, sigma, denoised, self.cache_device), weights)
        return True

    def nbytes(self) -> int:
        return (sum(stream.nbytes() for stream in self.streams.values())
                + (self.step_output.nbytes() if self.step_output is not None else 0))

    def clear(self) -> None:
        self.streams.clear()
        self.step_output = None
