"""In which order a model's joint blocks join the text and image tokens, read from the call.

ComfyUI has changed this order between releases (HunyuanVideo's single blocks: image first in
0.3.75, text first in 0.26), so it is never assumed: at the first joint block of a stream's first
call, its input is compared with the two streams the block before it returned
(`ModelAdapter.joint_text_first`). The order is kept for the stream (`StreamCache.text_first`).
"""
from __future__ import annotations

from .call_in_flight import CallInFlight
from .run_geometry import RunGeometry

JOINT_ORDER_UNREAD = ("could not tell in which order this model's joint blocks join the image and text tokens (its "
                      "forward joins them in a way the cache has not seen): every step is computed")


def note_block_result(geometry: RunGeometry, call: CallInFlight, position: int, result: dict) -> None:
    """What a block returned (computed or stood in for): the two streams of the block before
    the first joint block are kept until that block reads the order."""
    if call.stream.text_first is None and geometry.first_joint is not None and position == geometry.first_joint - 1:
        call.streams_before_joint = {"img": result["img"], "txt": result["txt"]}


def read_joint_order(geometry: RunGeometry, call: CallInFlight, position: int, args: dict) -> bool:
    """At the first joint block: read the join order from its input, once per stream. False
    when it cannot be read (the input is neither join of the streams before it)."""
    stream = call.stream
    if stream.text_first is not None or position != geometry.first_joint or call.streams_before_joint is None:
        return True
    streams, call.streams_before_joint = call.streams_before_joint, None
    stream.text_first = geometry.adapter.joint_text_first(args["img"], streams)
    return stream.text_first is not None
