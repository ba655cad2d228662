"""Block Profiler profiles of the tiny models, as Load Cache Profile gives them, and the same
profile holding a calibrated plan chosen by a test (for Calibrated Cache)."""
from __future__ import annotations

import tiny_models
from helpers import CFG, STEPS, run_node

from comfyui_dit_cache.cache_core.attachment.attach import attached_engine
from comfyui_dit_cache.nodes import BlockProfiler, CalibratedCache


def profile_of(tiny) -> dict:
    """The Block Profiler's profile of `tiny` at the tests' step count (batch 1)."""
    reports = []
    (profiler,) = run_node(BlockProfiler, model=tiny.patcher, profile_name="unused")
    attached_engine(profiler).report_listeners = [reports.append]   # the profile itself, not its file
    tiny_models.sample(profiler, tiny, steps=STEPS, cfg=CFG)
    return {**reports[0].extras["profile"], "name": "tiny"}


def with_plan(profile: dict, plan: str) -> dict:
    """`profile` holding one calibrated plan, calibrated at batch 1."""
    return {**profile, "calibration": {"cases": 1, "batch": 1, "plans": [
        {"speedup": len(plan) / plan.count("C"), "computes": plan.count("C"), "plan": plan, "psnr_worst": 30.0}]}}


def calibrated(patcher, profile: dict):
    plan = profile["calibration"]["plans"][0]
    return run_node(CalibratedCache, model=patcher, profile=profile, speedup=plan["speedup"],
                    cache_device="model device")[0]
