"""Counting real block computations, whatever method (ours or another pack's) skips them."""
from __future__ import annotations

import contextlib

import torch


class BlockCounter:
    calls = 0


@contextlib.contextmanager
def count_blocks(diffusion_model: torch.nn.Module):
    blocks = list(getattr(diffusion_model, "double_blocks", [])) + list(getattr(diffusion_model, "single_blocks", []))
    blocks += list(getattr(diffusion_model, "blocks", []))
    counter = BlockCounter()

    def hook(_module, _inputs):
        counter.calls += 1

    handles = [b.register_forward_pre_hook(hook) for b in blocks]
    try:
        yield counter
    finally:
        for h in handles:
            h.remove()
