"""Counting real block computations, whatever skips them (this pack, another one, or nothing):
the tests check schedules with it, the benchmark counts computes with it."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch


def block_modules(diffusion_model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks in execution order (FLUX-style double then single, or Wan's list)."""
    if hasattr(diffusion_model, "double_blocks"):
        return list(diffusion_model.double_blocks) + list(diffusion_model.single_blocks)
    return list(diffusion_model.blocks)


@contextlib.contextmanager
def count_block_calls(diffusion_model: torch.nn.Module) -> Iterator[list[int]]:
    """Real forward calls of every block while the context is open (index = execution order)."""
    modules = block_modules(diffusion_model)
    counts = [0] * len(modules)
    handles = []
    for i, module in enumerate(modules):
        def hook(_module, _inputs, i=i):
            counts[i] += 1
        handles.append(module.register_forward_pre_hook(hook))
    try:
        yield counts
    finally:
        for handle in handles:
            handle.remove()
