"""Counting real block computations, whatever skips them (this pack, another one, or nothing):
the tests check schedules with it, the benchmark counts computes with it. The blocks are the ones
the model's family adapter names, so any supported family is counted the same way."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch


def block_modules(patcher) -> list[torch.nn.Module]:
    """The transformer blocks of a MODEL (ComfyUI ModelPatcher), in execution order."""
    from comfyui_dit_cache.cache_core.attachment.attach import adapter_for

    diffusion_model = patcher.model.diffusion_model
    return adapter_for(patcher).block_modules(diffusion_model)


@contextlib.contextmanager
def count_block_calls(patcher) -> Iterator[list[int]]:
    """Real forward calls of every block while the context is open (index = execution order)."""
    modules = block_modules(patcher)
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
