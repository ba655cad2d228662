"""One residual accumulator for a span of blocks, the whole stack being the span (0, n): what a
computed span's residual is measured from, the residual it added, and what stands in for it.

The cached residual is always what the blocks themselves add. Usually that is the span's output
minus its input. When the model adds terms between blocks (ControlNet residuals, VACE hints; the
model call's wrapper says when), that difference would hold them too and a skipped step, which
gets this step's terms anyway, would count them twice: such calls sum each block's own residual
instead (one extra copy of a block's input per block on computed steps).

On a skipped step every block of a span but the last passes its input through and the last adds
the span's residual: since each block only adds its residual to its input, that equals
substituting every block with its own residual, with one tensor held instead of one per block.
"""
from __future__ import annotations

import torch

from .call_in_flight import CallInFlight
from .run_geometry import RunGeometry


class SpanResiduals:
    def __init__(self, geometry: RunGeometry) -> None:
        self.geometry = geometry

    def keep_input(self, call: CallInFlight, position: int, args: dict) -> None:
        """Before a computed block: what its span's residual (and the guard's) will be measured from."""
        stream = call.stream
        if position == 0 and stream.probe is not None:
            stream.probe.keep_input(args["img"])
        span = self.geometry.span_at.get(position)
        if span is not None and (call.per_block or position == span[0]):
            call.kept_input = self.geometry.kept_input(position, args, call.per_block)

    def record(self, call: CallInFlight, position: int, out: dict) -> None:
        """A computed block's output: the first block's residual for a guard; at a span's last
        block, the span's residual."""
        stream = call.stream
        if position == 0 and stream.probe is not None:
            stream.probe.record(call.step, out["img"])
        span = self.geometry.span_at.get(position)
        if span is None or call.kept_input is None:
            return
        residual = self._summed(call, position, out) if call.per_block else self._difference(call, span, position, out)
        if residual is not None:
            stream.update(span[0], call.step, residual)

    def probe_accepted(self, call: CallInFlight) -> dict | None:
        """The first block ran as a probe and its forecast is trusted, so the forecast of the
        whole stack will stand in for it too. Per block, the block then passes its kept input on
        (what it returns instead of its output), so that this step's between-block terms are added
        to the stack's input as on any skipped step; otherwise the stack input kept before it
        stands in at the last block."""
        if not call.per_block:
            return None
        passed_on, call.kept_input = call.kept_input, None
        return passed_on

    def substitute(self, call: CallInFlight, position: int, args: dict) -> dict:
        """Every block of a span but the last passes its input through; the last adds the span's
        residual to what reaches it (of the whole stack, to its `img`: its other outputs, a
        two-stream block's text, pass through, as nothing after the stack reads them)."""
        geometry = self.geometry
        passed_on = {k: args[k] for k in geometry.blocks[position].outputs}
        start, end = geometry.span_at.get(position, (position, position + 1))
        if position < end - 1:
            return passed_on
        own = call.stream.residuals.get(start)
        if not own:
            raise RuntimeError(f"blocks {start}-{end - 1} were to stand in, but no residual of theirs was recorded")
        if not geometry.whole_stack:
            return {**passed_on, **{k: own[k].added_to(call.step, args[k]) for k in own if args.get(k) is not None}}
        base = args["img"]
        if call.kept_input is not None:         # after a probe: the stack input, kept before it
            base, call.kept_input = geometry.in_last_layout(call.kept_input, call.stream.text_first), None
        scale, call.forecast_scale = call.forecast_scale, 1.0
        return {**passed_on, "img": base + own["img"].predict(call.step, base, scale=scale)}

    def _difference(self, call: CallInFlight, span: tuple[int, int], position: int,
                    out: dict) -> dict[str, torch.Tensor] | None:
        """At the span's last block: its output minus its kept input."""
        start, end = span
        if position < end - 1:
            return None
        geometry = self.geometry
        inputs, call.kept_input = call.kept_input, None
        before = geometry.in_layout_of(geometry.blocks[start], inputs, geometry.blocks[end - 1], call.stream.text_first)
        return {k: out[k] - before[k] for k in before if out.get(k) is not None}   # SD3's last text: None

    def _summed(self, call: CallInFlight, position: int, out: dict) -> dict[str, torch.Tensor] | None:
        """Per block: this block's own residual added to the span's so far (both streams joined
        from the first joint block on); the sum at the span's last block."""
        geometry = self.geometry
        inputs, call.kept_input = call.kept_input, None
        spec = geometry.blocks[position]
        residual = geometry.residual_parts(spec, {k: out[k] - inputs[k] for k in inputs if out.get(k) is not None})
        total, total_spec = call.summed, call.summed_spec
        if total is not None and spec.joint and not total_spec.joint:
            total = geometry.in_layout_of(total_spec, total, spec, call.stream.text_first)
        call.summed = residual if total is None else {k: total[k] + residual[k] for k in residual}
        call.summed_spec = spec
        if position < geometry.span_at[position][1] - 1:
            return None
        summed, call.summed, call.summed_spec = call.summed, None, None
        return summed
