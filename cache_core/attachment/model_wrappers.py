"""The wrappers around each model call: APPLY_MODEL (what a call carries, where its output
stands in, a whole model cached around the call) and, for a model cached whole inside its
forward, DIFFUSION_MODEL."""
from __future__ import annotations

import torch

from ..adapters.whole_model import CALL_LEVEL, MODEL_LEVEL
from ..run.engine import RUN_KEY
from ..support.containment import own_code
from .between_blocks import call_adds_between_blocks
from .block_hook import call_options
from .call_level import call_as_block, settle_whole_level

HOOKS_NOT_RUN = ("the model ran without the cache's block hooks (a graph compiled before the cache was attached, by a "
                 "compile node other than ComfyUI's TorchCompileModel, or a node that replaces the model's forward): "
                 "nothing can be cached, so every step is computed. Put the caching node after such nodes, or leave "
                 "them out")
AUTOREGRESSIVE_SAMPLER = ("ComfyUI's autoregressive video sampler (Sampler AR Video) runs the model's blocks itself, a "
                          "few frames at a time, with a key-value cache that every model call writes: nothing can be "
                          "cached, so every step is computed. Leave the caching node out of such workflows")


def model_call_wrapper(executor, *args, **kwargs):
    """APPLY_MODEL wrapper: tells the run what this model call carries besides the blocks'
    inputs, and lets the model's output stand in for the whole model where the policy says so
    (args: x, t = sigma, c_concat, c_crossattn, control, transformer_options; extra conds as
    keyword arguments; it returns the denoised latent)."""
    run = args[5].get(RUN_KEY)
    if run is None:
        return executor(*args, **kwargs)
    x, sigma, options = args[0], args[1], args[5]
    with own_code("beginning a model call"):
        run.begin_model_call(call_adds_between_blocks(run.adapter, run.diffusion_model, args[4], options, kwargs))
        stand_in = run.output_stand_in(x, sigma, options)
        calls_before = run.recorder.calls_so_far()
        computing = run.computes_every_step
        cached_whole = run.adapter.level == MODEL_LEVEL and not computing
    if stand_in is not None:
        return stand_in
    scope = call_options.set(options)
    try:
        if cached_whole and run.whole_level == CALL_LEVEL:
            denoised = call_as_block(run, executor, args, kwargs)
        elif cached_whole and run.whole_level is None:
            denoised = settle_whole_level(run, executor, args, kwargs)
        else:
            denoised = executor(*args, **kwargs)
    finally:
        call_options.reset(scope)
    with own_code("recording a model call"):
        if not (computing or run.computes_every_step) and run.recorder.calls_so_far() == calls_before:
            # not one block hook ran in this call; a call carrying the autoregressive sampler's
            # state ran its blocks in the sampler's own loop
            run.compute_every_step(AUTOREGRESSIVE_SAMPLER if options.get("ar_state") is not None else HOOKS_NOT_RUN)
            run.record_step_without_cache("every call")
        run.record_output(x, sigma, options, denoised, calls_before)
    return denoised


def whole_model_wrapper(executor, *args, **kwargs):
    """DIFFUSION_MODEL wrapper of a whole-model cache: the diffusion model's forward is the one
    block the run computes or substitutes (args: x, then the family's own arguments, with
    `transformer_options` among them or in the keyword arguments)."""
    options = kwargs.get("transformer_options")
    if not isinstance(options, dict):
        options = next((a for a in args if isinstance(a, dict) and RUN_KEY in a), {})
    run = options.get(RUN_KEY)
    if run is None or run.whole_level == CALL_LEVEL:
        return executor(*args, **kwargs)
    x = args[0]
    if run.whole_level is None:
        # the run's first call: cached in the forward only if the output can be a residual of
        # the input (a model that takes an image or mask joined to its latent has more input
        # channels than output ones: it is cached around the call instead, call_level.py)
        out = executor(*args, **kwargs)
        run.call.cached_in_forward = isinstance(x, torch.Tensor) and isinstance(out, torch.Tensor) and x.shape == out.shape
        if run.call.cached_in_forward:
            with own_code("recording a model call"):
                run.run_block(0, {"img": x, "transformer_options": options}, lambda _: {"img": out})
        return out
    out = run.run_block(0, {"img": x, "transformer_options": options},
                        lambda block_args: {"img": executor(*args, **kwargs)})
    return out["img"]
