"""What the integration tests share: the sampling settings, the nodes run as ComfyUI's executor
runs them, run reports, uncached references and real block-call counts."""
from __future__ import annotations

from pathlib import Path

import torch

import block_counter
import node_runner
import tiny_models

from comfyui_dit_cache.cache_core.adapters import find_adapter
from comfyui_dit_cache.cache_core.attachment.attach import adapter_for, attach_engine, attached_engine
from comfyui_dit_cache.cache_core.run.engine import CacheEngine
from comfyui_dit_cache.cache_core.run.report import RunReport
from comfyui_dit_cache.nodes import (ApplyFORA, MagnitudeThreshold, TaylorSeerForecast, TeaCacheThreshold)

ROOT = Path(__file__).resolve().parents[2]
STEPS = 10
CFG = 3.0
# Every caching node acting on the whole schedule, its cache on the model's device.
WINDOW = dict(start_percent=0.0, end_percent=1.0, cache_device="model device")


# ---- the nodes ------------------------------------------------------------------------------------
def run_node(node_class, unique_id: str = "1", **inputs):
    """Execute a node as ComfyUI's executor does (`node_runner`): its outputs."""
    return node_runner.run_node(node_class, unique_id, **inputs)


def fora(model, interval=3, warmup_steps=1, **window):
    return run_node(ApplyFORA, model=model, interval=interval, warmup_steps=warmup_steps, **{**WINDOW, **window})[0]


def chosen_profile(model, **numbers) -> dict:
    """A profile as Load Cache Profile returns it, for `model`'s family, holding chosen numbers."""
    return {"name": "chosen", "family": adapter_for(model).family, **numbers}


def teacache(model, rel_l1_thresh=0.4, coefficients="auto", max_consecutive_reuse=0, profile=None):
    """TeaCache-style Threshold; a family with no published polynomial gets a profile holding the
    identity polynomial (the raw input change), as a profiled one would stand in."""
    adapter = find_adapter(model.model.diffusion_model)
    if profile is None and coefficients == "auto" and adapter is not None and not adapter.teacache_presets:
        profile = chosen_profile(model, teacache_coefficients=[1.0, 0.0])
    return run_node(TeaCacheThreshold, model=model, rel_l1_thresh=rel_l1_thresh, coefficients=coefficients,
                    max_consecutive_reuse=max_consecutive_reuse, profile=profile, **WINDOW)[0]


def taylorseer(model, interval=3, warmup_steps=2, order=2, guard_tolerance=0.0):
    return run_node(TaylorSeerForecast, model=model, interval=interval, warmup_steps=warmup_steps, order=order,
                    guard_tolerance=guard_tolerance, **WINDOW)[0]


def magnitude(model, threshold=0.12, max_skip=3, retention_ratio=0.0, curve="auto", profile=None):
    """Magnitude-Ratio Threshold; a family with no published curve gets a flat profiled one."""
    adapter = find_adapter(model.model.diffusion_model)
    if profile is None and curve == "auto" and adapter is not None and not adapter.magnitude_presets:
        profile = chosen_profile(model, residual_magnitude_ratio=[1.0] * STEPS)
    return run_node(MagnitudeThreshold, model=model, threshold=threshold, max_skip=max_skip,
                    retention_ratio=retention_ratio, curve=curve, profile=profile, **WINDOW)[0]


def attach_policy(tiny, policy, **engine_options) -> tuple[object, list[RunReport]]:
    """A patched clone of the tiny model (any policy, no node) and the list its run reports land in."""
    adapter = adapter_for(tiny.patcher)
    reports: list[RunReport] = []
    engine = CacheEngine(policy.name, adapter, policy, adapter.blocks(tiny.patcher.model.diffusion_model),
                         report_listeners=[reports.append], **engine_options)
    return attach_engine(tiny.patcher, engine), reports


def guided_direction_reuse(plan: str, scales: tuple[float, ...] = ()):
    """An independent stand-in for a plan's V steps through ComfyUI's post-CFG hook: the guided
    output replaced by x - sigma * d of the last computed step (the model still runs there),
    times the step's scale where `scales` are given."""
    held = {}

    def stand_in(args: dict) -> torch.Tensor:
        x, denoised, sigma = args["input"], args["denoised"], args["sigma"]
        sigmas = args["model_options"]["transformer_options"]["sample_sigmas"]
        step = int(torch.argmin((sigmas - sigma.flatten()[0]).abs()))
        s = sigma.reshape(-1, *([1] * (x.ndim - 1)))
        if plan[step] == "C":
            held["d"] = (x - denoised) / s
            return denoised
        if plan[step] != "V":
            return denoised
        return x - s * (held["d"] * scales[step]) if scales else x - s * held["d"]
    return stand_in


# ---- sampling -------------------------------------------------------------------------------------
def sample_with_report(patched, tiny, **settings) -> tuple[torch.Tensor, RunReport]:
    """One run of STEPS steps at CFG through a cached model, and its run report."""
    reports = []
    attached_engine(patched).report_listeners.append(reports.append)
    out = tiny_models.sample(patched, tiny, steps=STEPS, cfg=CFG, **settings)
    return out, reports[0]


def reference(tiny, reference_outputs: dict, **settings) -> torch.Tensor:
    """The uncached output of `tiny` for these settings (cached in the session's dict)."""
    key = (tiny.family, id(tiny), tuple(sorted(settings.items())))
    if key not in reference_outputs:
        reference_outputs[key] = tiny_models.sample(tiny.patcher, tiny, **settings)
    return reference_outputs[key]


def computed_steps(report: RunReport) -> list[int]:
    return [s for s, a in enumerate(report.step_actions()) if a == "compute"]


# ---- the real blocks -------------------------------------------------------------------------------
def block_modules(tiny) -> list[torch.nn.Module]:
    return block_counter.block_modules(tiny.patcher)


def count_block_calls(tiny):
    """Counts real forward calls of every block module (index = execution order)."""
    return block_counter.count_block_calls(tiny.patcher)


def register_workflow_nodes() -> None:
    """Register what the example workflows use, as a ComfyUI server would at start-up:
    ComfyUI's extra nodes, this pack, and the test-only tiny-model loaders."""
    import asyncio

    import nodes

    if "DiTCacheTestTinyDiffusionModel" in nodes.NODE_CLASS_MAPPINGS:
        return
    asyncio.run(nodes.init_builtin_extra_nodes())
    assert asyncio.run(nodes.load_custom_node(str(ROOT)))
    assert asyncio.run(nodes.load_custom_node(str(ROOT / "tests" / "fixtures" / "tiny_loaders")))
