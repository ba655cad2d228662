"""The model call in flight: what one call through the blocks carries from its first block to its
last. Everything here is reset when the next call begins (`begin`); what a stream keeps across
steps is its `StreamCache`."""
from __future__ import annotations

import threading

import torch

from ..adapters.base import BlockSpec
from ..policies.base import StepAction
from .stream_cache import StreamCache


class CallInFlight(threading.local):
    """One per thread: ComfyUI's multi-GPU split runs a step's calls at once, one thread per
    device, each through its own blocks."""

    def __init__(self) -> None:
        self.stream: StreamCache | None = None
        self.step = -1
        self.action = StepAction.COMPUTE
        self.per_block = False      # the call adds terms between blocks: residuals are summed block by block
        self.plan: str | None = None            # under a per-block schedule: a letter per block
        self.letters: list[str] = []            # what each block did, for the report
        # the input the span being computed is measured from: the span's first block's (the
        # whole stack's: `stack_parts`), or, per block, the block's own
        self.kept_input: dict[str, torch.Tensor] | None = None
        self.summed: dict[str, torch.Tensor] | None = None   # per block: the span's residuals so far
        self.summed_spec: BlockSpec | None = None             # the block `summed` is laid out as
        self.forecast_scale = 1.0               # of the Taylor terms, fitted by an accepted probe
        self.streams_before_joint: dict[str, torch.Tensor] | None = None
        # told before the blocks run, by the model call's wrapper
        self.adds_between_blocks = False
        self.blocks_action: StepAction | None = None   # what the blocks do where the output could not stand in
        self.cached_in_forward = False          # a whole-model cache's DIFFUSION_MODEL wrapper cached the call

    def begin(self, stream: StreamCache, step: int, action: StepAction, plan: str | None) -> None:
        """A call of `stream` reaches its first block: `action` for the step, `plan` its letter per
        block under a per-block schedule (None: every block does `action`)."""
        self.stream, self.step, self.action, self.plan = stream, step, action, plan
        self.per_block, self.adds_between_blocks = self.adds_between_blocks, False
        self.letters = []
        self.kept_input = self.summed = self.summed_spec = self.streams_before_joint = None
        self.forecast_scale = 1.0

    def computes_block(self, position: int) -> bool:
        """Whether the block at `position` is computed on this call."""
        return self.action is StepAction.COMPUTE or (self.plan is not None and self.plan[position] == "C")
