"""Small test helpers over the real runtime: attach a policy, count real block calls."""
from __future__ import annotations

import torch

import block_counter

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
    return block_counter.block_modules(tiny.patcher.model.diffusion_model)


def count_block_calls(tiny):
    """Counts real forward calls of every block module (index = execution order)."""
    return block_counter.count_block_calls(tiny.patcher.model.diffusion_model)


def run_node(node_class, unique_id: str = "1", **inputs):
    """Execute a V3 node as ComfyUI's executor does (a class clone with hidden inputs set)."""
    output = node_class.PREPARE_CLASS_CLONE({"UNIQUE_ID": unique_id}).execute(**inputs)
    return output.args


def register_workflow_nodes() -> None:
    """Register what the example workflows use, as a ComfyUI server would at start-up:
    ComfyUI's extra nodes, this pack, and the test-only tiny-model loaders."""
    import asyncio

    import nodes

    from conftest import ROOT

    if "DiTCacheTestTinyDiffusionModel" in nodes.NODE_CLASS_MAPPINGS:
        return
    asyncio.run(nodes.init_builtin_extra_nodes())
    assert asyncio.run(nodes.load_custom_node(str(ROOT)))
    assert asyncio.run(nodes.load_custom_node(str(ROOT / "tests" / "custom_nodes" / "tiny_loaders")))
