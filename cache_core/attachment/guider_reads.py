"""What the attachment reads from ComfyUI's guider and model options for a run: scheduled weight
hooks, block hooks replaced after the cache, the devices of a split step, and whether a step's
calls must run."""
from __future__ import annotations

from typing import Callable

from comfy.model_patcher import create_model_options_clone

from ..run.engine import RUN_KEY, CacheEngine
from .between_blocks import step_adds_between_blocks
from .block_hook import BlockCacheHook


def weight_keyframes(guider) -> Callable[[], tuple] | None:
    """The current strengths of the hook keyframe groups that change a weight hook's strength
    during the run (ComfyUI's scheduled LoRA hooks on a conditioning), or None when there are
    none. ComfyUI moves each group to its keyframe before the step's model calls."""
    groups = []
    for conds in getattr(guider, "original_conds", {}).values():
        for cond in conds:
            for hook in getattr(cond.get("hooks"), "hooks", ()):
                keyframes = getattr(hook, "hook_keyframe", None)
                if keyframes is not None and len(keyframes.keyframes) > 1 and keyframes not in groups:
                    groups.append(keyframes)
    if not groups:
        return None
    return lambda: tuple(group.strength for group in groups)


def replaced_hooks(engine: CacheEngine, model_options: dict) -> list:
    """The blocks whose cache hook another node replaced after the caching node (a later
    `patches_replace["dit"]` on the same block): the cache does not see those blocks run."""
    if engine.adapter.level == "model":
        return []
    installed = model_options["transformer_options"].get("patches_replace", {}).get("dit", {})
    return [spec.key for spec in engine.blocks if not isinstance(installed.get(spec.key), BlockCacheHook)]


def devices_of(model_options: dict) -> list:
    """The devices on which ComfyUI runs this step's conditionings, in threads on device clones of
    the model (`model_options["multigpu_clones"]`, set for the sampling by the MultiGPU nodes; the
    main device first); none without a split."""
    return list(model_options.get("multigpu_clones") or {})


def without_run(model_options: dict) -> dict:
    """A copy of a step's model options whose model calls do not see the run: every hook computes."""
    options = create_model_options_clone(model_options)
    options["transformer_options"].pop(RUN_KEY, None)
    return options


def calls_must_run(run, guider, model_options: dict) -> bool:
    """Whether this step's model calls must run through ComfyUI's guidance even where the model's
    output stands in: a call may add terms between blocks, or a post-CFG function reads each
    call's output (CFG++ samplers keep the uncond prediction there; a stand-in for the whole step
    would leave them an earlier step's)."""
    if model_options.get("sampler_post_cfg_function"):
        return True
    return step_adds_between_blocks(run.adapter, run.diffusion_model, guider, model_options["transformer_options"])
