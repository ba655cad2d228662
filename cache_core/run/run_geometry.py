"""What a run's block stack looks like to the cache, worked out once per run: which blocks stand
in together (spans), where the joint blocks begin, and how one block's tensors are laid out as a
later block takes them.

A span is a run of consecutive blocks that is computed or stands in as one, with one residual
(per hidden-state stream of its last block). A policy that skips whole steps has one span, the
whole stack (0, n), which keeps only the last block's `img`; a per-block schedule
(`decides_blocks`) has the policy's `stand_in_spans`. Blocks in no span never stand in.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..adapters.base import BlockSpec, ModelAdapter
from ..policies.base import CachePolicy

Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class RunGeometry:
    adapter: ModelAdapter
    blocks: list[BlockSpec]
    spans: tuple[tuple[int, int], ...]
    whole_stack: bool                     # the one span is the whole stack, kept as the last block's `img`
    span_at: dict[int, tuple[int, int]] = field(init=False)
    first_joint: int | None = field(init=False)   # the first joint block after two-stream blocks

    def __post_init__(self) -> None:
        object.__setattr__(self, "span_at", {p: (start, end) for start, end in self.spans for p in range(start, end)})
        joint = [position for position, spec in enumerate(self.blocks) if spec.joint]
        object.__setattr__(self, "first_joint", joint[0] if joint and joint[0] > 0 else None)

    @classmethod
    def of(cls, adapter: ModelAdapter, blocks: list[BlockSpec], policy: CachePolicy) -> RunGeometry:
        if policy.decides_blocks:
            return cls(adapter, blocks, policy.stand_in_spans(len(blocks)), whole_stack=False)
        return cls(adapter, blocks, ((0, len(blocks)),), whole_stack=True)

    @property
    def last(self) -> int:
        return len(self.blocks) - 1

    def in_last_layout(self, parts: torch.Tensor | Tensors, text_first: bool | None) -> torch.Tensor:
        """A residual or input kept as `stack_parts`, arranged as the last block's `img`."""
        return parts if isinstance(parts, torch.Tensor) else self.adapter.in_last_layout(parts, text_first)

    def in_layout_of(self, spec: BlockSpec, tensors: Tensors, later: BlockSpec, text_first: bool | None) -> Tensors:
        """Per-stream tensors of block `spec` as a later block `later` takes them: both streams
        joined when `later` is a joint block and `spec` a two-stream one."""
        if later.joint and not spec.joint:
            parts = self.adapter.stack_parts(spec, tensors, later)
            return {"img": self.adapter.in_last_layout(parts, text_first)}
        return tensors

    def kept_input(self, position: int, args: dict, per_block: bool) -> Tensors:
        """What a span's residual is measured from, kept before block `position`: of the whole
        stack, the `stack_parts` of its input; else the block's inputs of the streams it
        returns. Copied where the blocks add into their inputs in place."""
        if self.whole_stack and not per_block:
            return self.adapter.stack_input(args, self.blocks)
        copy = self.adapter.blocks_modify_inputs
        return {k: args[k].clone() if copy else args[k] for k in self.blocks[position].outputs if args.get(k) is not None}

    def residual_parts(self, spec: BlockSpec, residual: Tensors) -> Tensors:
        """Of one block's residuals, the ones its span keeps: all of them, or of the whole stack
        those that make up the last block's `img`."""
        if not self.whole_stack:
            return residual
        return {"img": residual["img"]} if spec.joint else self.adapter.stack_parts(spec, residual, self.blocks[-1])
