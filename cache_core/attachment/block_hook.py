"""The `patches_replace["dit"]` entry of each cached block: hands the block to the run, which
computes or substitutes it."""
from __future__ import annotations

from contextvars import ContextVar
from typing import Callable

from ..run.engine import RUN_KEY
from ..support.containment import own_code

# The `transformer_options` of the model call in progress in this thread (the APPLY_MODEL wrapper
# sets them for the call's duration): the block hooks of a forward that does not pass them to its
# hooks (ComfyUI 0.3.75's Wan2.2 S2V) find the run there.
call_options: ContextVar[dict | None] = ContextVar("dit_cache_call_options", default=None)


class BlockCacheHook:
    """One block's hook. `inner` is a replace patch that was already there (another node
    pack's): it stays in charge of computing the block."""

    def __init__(self, position: int, inner: Callable | None) -> None:
        self.position = position
        self.inner = inner

    def __call__(self, args: dict, extra: dict) -> dict:
        handed_options = "transformer_options" in args

        def compute(block_args: dict) -> dict:
            if not handed_options:   # the block gets what its forward handed over, nothing more
                block_args = {k: v for k, v in block_args.items() if k != "transformer_options"}
            if self.inner is not None:
                return self.inner(block_args, extra)
            return extra["original_block"](block_args)

        if not handed_options:   # a forward that does not hand its hooks the call's options
            args = {**args, "transformer_options": call_options.get() or {}}
        run = args["transformer_options"].get(RUN_KEY)
        if run is None or run.computes_every_step:  # outside a sampler (no OUTER_SAMPLE), or nothing cached
            return compute(args)
        adapter = run.adapter
        if not adapter.packs_streams:
            return run.run_block(self.position, args, compute)

        def compute_packed(view: dict) -> dict:
            out = compute(adapter.model_view(view, args))
            with own_code("packing a block's streams"):
                return adapter.engine_view(out)

        with own_code("packing a block's streams"):
            view = adapter.engine_view(args)
        out = run.run_block(self.position, view, compute_packed)
        with own_code("unpacking a block's streams"):
            return adapter.model_view(out, args)
