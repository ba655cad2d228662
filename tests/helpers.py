"""Small test helpers over the real runtime: attach a policy, count real block calls."""
from __future__ import annotations

import contextlib

import torch

from comfyui_dit_cache.cache_core.attach import adapter_for, attach_engine
from comfyui_dit_cache.cache_core.engine import CacheEngine
from comfyui_dit_cache.cache_core.report import RunReport


def attach_policy(tiny, policy, **engine_options) -> tuple[object, list[RunReport]]:
    """A patched clone of the tiny model and the list its run reports land in."""
    adapter = adapter_for(tiny.patcher)
    reports: list[RunReport] = []
    engine = CacheEngine(policy.name, adapter, policy, adapter.blocks(tiny.patcher.model.diffusion_model),
                         report_listeners=[reports.append], **engine_options)
    return attach_engine(tiny.patcher, engine), reports


def block_modules(tiny) -> list[torch.nn.Module]:
    dm = tiny.patcher.model.diffusion_model
    if hasattr(dm, "double_blocks"):
        return list(dm.double_blocks) + list(dm.single_blocks)
    return list(dm.blocks)


@contextlib.contextmanager
def count_block_calls(tiny):
    """Counts real forward calls of every block module (index = execution order)."""
    counts = [0] * len(block_modules(tiny))
    handles = []
    for i, module in enumerate(block_modules(tiny)):
        def hook(_module, _inputs, i=i):
            counts[i] += 1
        handles.append(module.register_forward_pre_hook(hook))
    try:
        yield counts
    finally:
        for h in handles:
            h.remove()


def run_node(node_class, unique_id: str = "1", **inputs):
    """Execute a V3 node as ComfyUI's executor does (a class clone with hidden inputs set)."""
    output = node_class.PREPARE_CLASS_CLONE({"UNIQUE_ID": unique_id}).execute(**inputs)
    return output.args
