"""FORA and TaylorSeer are defined per block: every block's residual is cached (or forecast) and
added to that block's input. The engine keeps one residual of the whole stack instead. This
checks that the two give the same picture, against a per-block implementation written here,
independently of the engine, through ComfyUI's own `patches_replace["dit"]` block hooks."""
from __future__ import annotations

import math

import pytest
import torch

import tiny_models
from helpers import block_modules, run_node

from comfyui_dit_cache.cache_core.attach import attached_engine
from comfyui_dit_cache.nodes import ApplyFORA, TaylorSeerForecast

STEPS = 10
WINDOW = dict(start_percent=0.0, end_percent=1.0, cache_device="model device")


def block_keys(tiny) -> list[tuple[str, int]]:
    model = tiny.patcher.model.diffusion_model
    if hasattr(model, "double_blocks"):
        return [("double_block", i) for i in range(len(model.double_blocks))] + \
               [("single_block", i) for i in range(len(model.single_blocks))]
    return [("double_block", i) for i in range(len(model.blocks))]


def per_block_cache(tiny, computed_steps: set[int], order: int):
    """A clone whose every block, on steps outside `computed_steps`, returns its input plus its own
    residual forecast by a Taylor series of `order` (0: the last computed residual)."""
    patcher = tiny.patcher.clone()
    two_streams = hasattr(tiny.patcher.model.diffusion_model, "double_blocks")   # FLUX-style: img and txt
    sigmas: list[float] = []
    history: dict = {}   # (block, stream, batch layout) -> (last computed step, derivatives)

    def hook_for(key):
        def hook(args: dict, extra: dict) -> dict:
            options = args["transformer_options"]
            sigma = float(options["sigmas"].flatten()[0])
            if key == ("double_block", 0) and (not sigmas or sigmas[-1] != sigma):
                sigmas.append(sigma)
            step = len(sigmas) - 1
            layout = tuple(options.get("cond_or_uncond", ()))
            streams = ("img", "txt") if two_streams and key[0] == "double_block" else ("img",)
            if step in computed_steps:
                inputs = {k: args[k].clone() for k in streams}   # FLUX's blocks add in place
                out = extra["original_block"](args)
                for k in streams:
                    residual = out[k] - inputs[k]
                    last = history.get((key, k, layout))
                    derivatives = [residual]
                    if last is not None:
                        for n in range(min(order, len(last[1]))):
                            derivatives.append((derivatives[n] - last[1][n]) / (step - last[0]))
                    history[(key, k, layout)] = (step, derivatives)
                return out
            out = {}
            for k in streams:
                last_step, derivatives = history[(key, k, layout)]
                distance = step - last_step
                forecast = sum(d * distance**n / math.factorial(n) for n, d in enumerate(derivatives))
                out[k] = args[k] + forecast
            return out
        return hook

    for key in block_keys(tiny):
        patcher.set_model_patch_replace(hook_for(key), "dit", key[0], key[1])
    return patcher


def engine_run(patched, tiny) -> tuple[torch.Tensor, list[int]]:
    reports = []
    attached_engine(patched).report_listeners.append(reports.append)
    out = tiny_models.sample(patched, tiny, steps=STEPS, cfg=3.0)
    computed = [s for s, a in enumerate(reports[0].step_actions()) if a == "compute"]
    return out, computed


@pytest.mark.parametrize("method", ["fora", "taylorseer order 1", "taylorseer order 2"])
def test_one_stack_residual_gives_the_per_block_result(tiny, method):
    if method == "fora":
        node, inputs, order = ApplyFORA, dict(interval=3, warmup_steps=1), 0
    else:
        order = int(method[-1])
        node, inputs = TaylorSeerForecast, dict(interval=3, warmup_steps=2, order=order, guard_tolerance=0.0)
    stack_out, computed = engine_run(run_node(node, model=tiny.patcher, **inputs, **WINDOW)[0], tiny)
    assert len(computed) < STEPS

    calls = [0] * len(block_modules(tiny))
    hooks = [m.register_forward_pre_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
             for i, m in enumerate(block_modules(tiny))]
    try:
        per_block_out = tiny_models.sample(per_block_cache(tiny, set(computed), order), tiny, steps=STEPS, cfg=3.0)
    finally:
        for h in hooks:
            h.remove()
    assert calls == [len(computed)] * len(calls)   # the reference really skipped the other steps

    uncached = tiny_models.sample(tiny.patcher, tiny, steps=STEPS, cfg=3.0)
    scale = float(uncached.abs().max())
    assert float((per_block_out - uncached).abs().max()) > 1e-2 * scale   # the caches did act
    assert torch.allclose(stack_out, per_block_out, rtol=1e-4, atol=1e-4 * scale)
