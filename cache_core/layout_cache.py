"""The cache of one stream of model calls, and the call in flight for it.

A stream is one identity of the model calls of a step (`call_identity`): cond and
uncond batched together, or each alone when ComfyUI splits them, each context window, each
area. Each stream has its own cache (the stack's residual history, and the first block's for a
guard); the step's decision is shared by all of them, so a step is never half computed.

The cached residual is always what the blocks themselves add. Usually that is the stack's output
minus its input. When the model adds terms between blocks (ControlNet residuals, VACE hints;
the adapter says when), the stack's difference would hold them too and a skipped step, which
gets this step's terms anyway, would count them twice: such calls record each block's own
residual instead (one extra copy of a block's input per block on computed steps).

Under a per-block schedule (a policy that `decides_blocks`) each span of blocks the policy stands
in together (`stand_in_spans`: every block alone for Block Caching, the blocks between the kept
ones for a per-block plan) keeps its own residual, one per hidden-state stream of its last block:
on a step, each span is computed or stands in on its own, its last block adding the span's
residual to what reaches it. Blocks the policy never stands in keep nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .adapters import BlockSpec, ModelAdapter
from .forecast_guard import FirstBlockProbe
from .policies.base import CachePolicy, StepAction
from .predictors import ResidualPredictor


def call_identity(options: dict, img: torch.Tensor) -> tuple:
    """What makes two model calls of a step the same stream of features: which conditionings
    are batched, in which order (ComfyUI's per-cond uuids, stable over the run), which context
    window of a long video, and the token shape. Calls that differ in any of these never share
    a cache."""
    window = options.get("context_window")
    window_indices = tuple(getattr(window, "index_list", ())) if window is not None else ()
    return (tuple(options.get("cond_or_uncond", ())), tuple(options.get("uuids", ())), window_indices,
            tuple(img.shape))


WEIGHTS_CHANGED = ("a hook keyframe changed the model's weights (a scheduled LoRA): the first step under the new "
                   "weights is computed, since the cache holds features of the old ones")


def layout_label(cond_or_uncond: tuple[int, ...]) -> str:
    """"cond+uncond", "cond", "uncond"; "batch" when ComfyUI does not say."""
    return "+".join("uncond" if c == 1 else "cond" for c in cond_or_uncond) or "batch"


@dataclass
class LayoutCache:
    label: str
    stack: ResidualPredictor                 # the blocks' summed residual history
    adapter: ModelAdapter
    blocks: list[BlockSpec]
    probe: FirstBlockProbe | None = None     # with a forecast guard
    has_cache: bool = False
    weights: tuple = ()                      # the model's weight keyframes its cache was computed under
    # the call in flight
    action: StepAction = StepAction.COMPUTE
    step: int = -1
    per_block: bool = False                  # this call adds terms between blocks
    block_letters: list[str] = field(default_factory=list)
    stack_input: dict[str, torch.Tensor] | None = None   # kept at the first block, until the last
    block_input: dict[str, torch.Tensor] | None = None   # per block: this block's input
    # per block: the residuals so far (both streams until the joint blocks begin)
    summed_residual: torch.Tensor | dict[str, torch.Tensor] | None = None
    forecast_scale: float = 1.0              # of the Taylor terms, fitted by an accepted probe
    # Joint blocks (FLUX's single blocks): whether they put the text first, read at the first
    # joint block of this stream's first call from what the block before it returned.
    text_first: bool | None = None
    streams_before_joint: dict[str, torch.Tensor] | None = None
    # Under a per-block schedule: makes a span's predictor; the spans (start, end) that stand in
    # together; per span start, one predictor per hidden-state stream of its last block; the
    # letters of the call in flight (None: every block does `action`).
    new_block_predictor: Callable[[], ResidualPredictor] | None = None
    spans: tuple[tuple[int, int], ...] = ()
    span_predictors: dict[int, dict[str, ResidualPredictor]] = field(default_factory=dict)
    plan: str | None = None
    # per block, with between-block terms: the span's residuals so far, and the block they are laid out as
    span_residual: dict[str, torch.Tensor] | None = None
    span_residual_spec: BlockSpec | None = None

    # the position of the first joint block after two-stream blocks (None: no such join)
    first_joint: int | None = field(init=False, default=None)
    # position -> the span (start, end) it belongs to, under a per-block schedule
    span_at: dict[int, tuple[int, int]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        joint = [position for position, spec in enumerate(self.blocks) if spec.joint]
        self.first_joint = joint[0] if joint and joint[0] > 0 else None
        self.span_at = {position: (start, end) for start, end in self.spans for position in range(start, end)}

    def note_block_result(self, position: int, result: dict) -> None:
        """What a block returned (computed or stood in for): the block before the first joint
        block's two streams are kept, for `read_joint_order`."""
        if self.text_first is None and self.first_joint is not None and position == self.first_joint - 1:
            self.streams_before_joint = {"img": result["img"], "txt": result["txt"]}

    def read_joint_order(self, position: int, args: dict) -> bool:
        """At the first joint block: read the join order from its input, once per stream. False
        when it cannot be read (the input is neither join of the streams before it)."""
        if self.text_first is not None or position != self.first_joint or self.streams_before_joint is None:
            return True
        streams, self.streams_before_joint = self.streams_before_joint, None
        self.text_first = self.adapter.joint_text_first(args["img"], streams)
        return self.text_first is not None

    def in_last_layout(self, parts: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        """A residual or input kept as `stack_parts`, arranged as the last block's `img`."""
        return parts if isinstance(parts, torch.Tensor) else self.adapter.in_last_layout(parts, self.text_first)

    def action_for(self, decided: StepAction, weights: tuple) -> tuple[StepAction, str | None]:
        """What this stream does on a step decided `decided`, and why it computes a step the
        policy would skip (None: no reason worth telling). It computes when it has nothing cached
        yet, or when its cache was computed under other weights (a scheduled LoRA hook)."""
        action, reason = decided, None
        if decided is not StepAction.COMPUTE and self.has_cache and weights != self.weights:
            action, reason = StepAction.COMPUTE, WEIGHTS_CHANGED
        elif decided is not StepAction.COMPUTE and not self.has_cache:
            action = StepAction.COMPUTE
        if action is StepAction.COMPUTE:
            self.weights = weights
        return action, reason

    @property
    def per_block_schedule(self) -> bool:
        return self.new_block_predictor is not None

    def begin_call(self, step: int, action: StepAction, per_block: bool, plan: str | None = None) -> None:
        """A call begins: `action` for the step; under a per-block schedule, `plan` its letter per
        block (None when every block is computed)."""
        self.step, self.action, self.per_block = step, action, per_block
        self.plan = plan if self.per_block_schedule and action is not StepAction.COMPUTE else None
        self.block_letters = []

    def computes_block(self, position: int) -> bool:
        """Whether the block at `position` is computed on this call."""
        return self.action is StepAction.COMPUTE or (self.plan is not None and self.plan[position] == "C")

    def keep_inputs(self, position: int, args: dict) -> None:
        """Before a computed block: what its residual (and the guard's) will be measured from."""
        if position == 0 and self.probe is not None:
            self.probe.keep_input(args["img"])
        if self.per_block_schedule:
            span = self.span_at.get(position)
            if span is not None and (self.per_block or position == span[0]):
                self.block_input = self._copied_outputs(position, args)
        elif self.per_block:
            self.block_input = self._copied_outputs(position, args)
        elif position == 0:
            self.stack_input = self.adapter.stack_input(args, self.blocks)

    def record(self, position: int, out: dict) -> None:
        """A computed block's output: the first block's residual for a guard, the blocks'
        residual at the last block."""
        if position == 0 and self.probe is not None:
            self.probe.record(self.step, out["img"])
        last = position == len(self.blocks) - 1
        if self.per_block_schedule:
            self._record_span_residual(position, out)
        elif self.per_block and self.block_input is not None:
            self.summed_residual = self._sum(self.summed_residual, self._block_residual(position, out))
            if last:
                self.stack.update(self.step, self.in_last_layout(self.summed_residual))
                self.summed_residual = None
        elif last and self.stack_input is not None:
            self.stack.update(self.step, out["img"] - self.in_last_layout(self.stack_input))
            self.stack_input = None

    def probe_accepted(self) -> dict | None:
        """The first block ran as a probe and its forecast is trusted, so the forecast of the
        whole stack will stand in for it too. Per block, the block then passes its kept input on
        (what it returns instead of its output), so that this step's between-block terms are added
        to the stack's input as on any skipped step; otherwise the stack input kept before it
        stands in at the last block."""
        if not self.per_block:
            return None
        passed_on, self.block_input = self.block_input, None
        return passed_on

    def substitute(self, position: int, args: dict) -> dict:
        """Every block but the last passes its input through; the last adds the blocks' residual
        to its `img` (its other outputs, a two-stream block's text, pass through: nothing after
        the stack reads them)."""
        passed_on = {k: args[k] for k in self.blocks[position].outputs}
        if self.per_block_schedule:
            start, end = self.span_at.get(position, (position, position + 1))
            if position < end - 1:
                return passed_on
            own = self.span_predictors.get(start)
            if not own:
                raise RuntimeError(f"blocks {start}-{end - 1} were to stand in, but no residual of theirs was recorded")
            return {**passed_on, **{k: own[k].added_to(self.step, args[k]) for k in own if args.get(k) is not None}}
        if position < len(self.blocks) - 1:
            return passed_on
        base = args["img"]
        if self.stack_input is not None:         # after a probe: the stack input, kept before it
            base, self.stack_input = self.in_last_layout(self.stack_input), None
        scale, self.forecast_scale = self.forecast_scale, 1.0
        return {**passed_on, "img": base + self.stack.predict(self.step, base, scale=scale)}

    def _copied_outputs(self, position: int, args: dict) -> dict[str, torch.Tensor]:
        """A block's inputs of the streams it returns, copied where blocks add into them in place."""
        copy = self.adapter.blocks_modify_inputs
        return {k: args[k].clone() if copy else args[k] for k in self.blocks[position].outputs if args.get(k) is not None}

    def _in_span_layout(self, spec: BlockSpec, tensors: dict[str, torch.Tensor], last: BlockSpec) -> dict[str, torch.Tensor]:
        """Per-stream tensors of block `spec` as the span's last block `last` takes them: both
        streams joined when the span ends on joint blocks and `spec` is a two-stream block."""
        if last.joint and not spec.joint:
            parts = self.adapter.stack_parts(spec, tensors, last)
            return {"img": self.adapter.in_last_layout(parts, self.text_first)}
        return tensors

    def _record_span_residual(self, position: int, out: dict) -> None:
        """Under a per-block schedule, at the last block of a span: the span's residual, stream by
        stream: its output minus the span's input, or, where the call adds terms between blocks,
        the sum of its blocks' own residuals (recorded block by block)."""
        span = self.span_at.get(position)
        if span is None or self.block_input is None:
            return
        start, end = span
        last = self.blocks[end - 1]
        if self.per_block:
            inputs, self.block_input = self.block_input, None
            spec = self.blocks[position]
            residual = {k: out[k] - inputs[k] for k in inputs if out.get(k) is not None}
            total, total_spec = self.span_residual, self.span_residual_spec
            if total is not None and spec.joint and not total_spec.joint:
                total = self._in_span_layout(total_spec, total, spec)
            self.span_residual = residual if total is None else {k: total[k] + residual[k] for k in residual}
            self.span_residual_spec = spec
            if position < end - 1:
                return
            residual, self.span_residual, self.span_residual_spec = self.span_residual, None, None
        else:
            if position < end - 1:
                return
            inputs, self.block_input = self.block_input, None
            before = self._in_span_layout(self.blocks[start], inputs, last)
            residual = {k: out[k] - before[k] for k in before if out.get(k) is not None}   # SD3's last text: None
        own = self.span_predictors.setdefault(start, {})
        for key, value in residual.items():
            own.setdefault(key, self.new_block_predictor()).update(self.step, value)

    def _block_residual(self, position: int, out: dict) -> torch.Tensor | dict[str, torch.Tensor]:
        inputs, self.block_input = self.block_input, None
        residuals = {k: out[k] - inputs[k] for k in inputs if out.get(k) is not None}   # SD3's last text: None
        spec = self.blocks[position]
        return residuals["img"] if spec.joint else self.adapter.stack_parts(spec, residuals, self.blocks[-1])

    def _sum(self, total: torch.Tensor | dict[str, torch.Tensor] | None,
             residual: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor | dict[str, torch.Tensor]:
        """Residuals added up: stream by stream while both streams are kept, joined from the
        first joint block on."""
        if total is None:
            return residual
        if isinstance(total, dict) and isinstance(residual, dict):
            return {k: total[k] + residual[k] for k in total}
        return self.in_last_layout(total) + residual

    def nbytes(self) -> int:
        held = self.stack.nbytes() + sum(p.nbytes() for own in self.span_predictors.values() for p in own.values())
        return held + (self.probe.predictor.nbytes() if self.probe is not None else 0)


def new_layout_cache(identity: tuple, policy: CachePolicy, adapter: ModelAdapter, blocks: list[BlockSpec],
                     cache_device: torch.device | None) -> LayoutCache:
    """An empty cache for a stream first seen in this run (`identity` from `call_identity`, whose
    first part is cond_or_uncond), with the policy's substitutes."""
    guard = policy.guard()
    probe = None if guard is None else guard.new_probe(policy.new_predictor(cache_device), adapter.blocks_modify_inputs)
    own = (lambda: policy.new_predictor(cache_device)) if policy.decides_blocks else None
    spans = policy.stand_in_spans(len(blocks)) if policy.decides_blocks else ()
    return LayoutCache(layout_label(identity[0]), policy.new_predictor(cache_device), adapter, blocks, probe,
                       new_block_predictor=own, spans=spans)
