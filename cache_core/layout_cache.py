"""The cache of one batch layout, and the model call in flight for it.

A *batch layout* is one arrangement of the batch that reaches the blocks: cond and uncond
batched together, or each alone when ComfyUI splits them. Each layout has its own cache (the
stack's residual history, and the first block's for a guard); the step's decision is shared by
all layouts, so a step is never half computed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .adapters import BlockSpec, ModelAdapter
from .forecast_guard import FirstBlockProbe
from .policies.base import CachePolicy, StepAction
from .predictors import ResidualPredictor


def layout_label(cond_or_uncond: tuple[int, ...]) -> str:
    """"cond+uncond", "cond", "uncond"; "batch" when ComfyUI does not say."""
    return "+".join("uncond" if c == 1 else "cond" for c in cond_or_uncond) or "batch"


@dataclass
class LayoutCache:
    label: str
    stack: ResidualPredictor                 # the whole stack's residual history
    probe: FirstBlockProbe | None = None     # with a forecast guard
    has_cache: bool = False
    # the call in flight
    action: StepAction = StepAction.COMPUTE
    step: int = -1
    block_letters: list[str] = field(default_factory=list)
    stack_input: torch.Tensor | None = None   # kept at the first block, until the last
    forecast_scale: float = 1.0               # of the Taylor terms, fitted by an accepted probe

    def begin_call(self, step: int, action: StepAction) -> None:
        self.step, self.action = step, action
        self.block_letters = []

    def keep_inputs(self, args: dict, adapter: ModelAdapter) -> None:
        """At the first block: keep the stack input (for the stack residual) and, for a guard,
        the first block's input (for its own residual, which the probe forecasts)."""
        if self.probe is not None:
            self.probe.keep_input(args["img"])
        self.stack_input = adapter.stack_input(args)

    def record(self, position: int, last_position: int, out: dict) -> None:
        """A computed block's output: the first block's residual for a guard, the stack's at the
        last block."""
        if position == 0 and self.probe is not None:
            self.probe.record(self.step, out["img"])
        if position == last_position and self.stack_input is not None:
            self.stack.update(self.step, out["img"] - self.stack_input)
            self.stack_input = None

    def substitute(self, position: int, blocks: list[BlockSpec], args: dict) -> dict:
        """Every block but the last passes its input through; the last adds the stack residual."""
        if position < len(blocks) - 1:
            return {k: args[k] for k in blocks[position].outputs}
        # After a probe the first block really ran, so the last block's input is no longer the
        # stack input: add the forecast to the kept stack input instead.
        base = args["img"] if self.stack_input is None else self.stack_input
        self.stack_input = None
        scale, self.forecast_scale = self.forecast_scale, 1.0
        return {"img": base + self.stack.predict(self.step, base, scale=scale)}

    def nbytes(self) -> int:
        held = self.stack.nbytes()
        return held + (self.probe.predictor.nbytes() if self.probe is not None else 0)


def new_layout_cache(cond_or_uncond: tuple[int, ...], policy: CachePolicy, cache_device: torch.device | None,
                     blocks_modify_inputs: bool) -> LayoutCache:
    """An empty cache for a layout first seen in this run, with the policy's substitutes."""
    guard = policy.guard()
    probe = None if guard is None else guard.new_probe(policy.new_predictor(cache_device), blocks_modify_inputs)
    return LayoutCache(layout_label(cond_or_uncond), policy.new_predictor(cache_device), probe)
