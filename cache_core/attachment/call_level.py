"""The whole-model cache around the model call (`APPLY_MODEL`), for a model whose forward runs
neither block hooks nor ComfyUI's `DIFFUSION_MODEL` wrappers, and how a run finds out which of
the two whole-model levels a model takes.

The call is the one block, in the sampler's units: its input is x / sigma, its output
denoised / sigma, so what the engine keeps (output minus input) is minus the sampler's direction
d = (x - denoised) / sigma, and a skipped call returns sigma * (x / sigma - d) = x - sigma * d:
the last computed direction, or a forecast of it, applied from this step's latent (the same
stand-in as a calibrated plan's `V` steps, stand_ins/output_stand_in.py). A computed call returns the model's
own output, untouched. The per-step signal a threshold policy reads is the latent x."""
from __future__ import annotations

from typing import Callable

import torch

from ..adapters.whole_model import CALL_LEVEL, MODEL_LEVEL
from ..support.containment import own_code

# sigma is never 0 where the sampler calls the model; the floor only keeps a custom schedule's
# 0 from dividing by zero (the call is then computed as usual and its direction is worthless).
SIGMA_FLOOR = 1e-6
NOT_ONE_TENSOR = ("this model's latent is not one tensor at the model call (a list of latents), so the whole model "
                  "cannot be cached around the call: every step is computed")


def _call_view(x: torch.Tensor, sigma: torch.Tensor, options: dict) -> tuple[dict, torch.Tensor]:
    """The call as the engine's block sees it, and the per-element sigma that scales it."""
    scale = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x).clamp_min(SIGMA_FLOOR)
    return {"img": x / scale, "signal": x, "transformer_options": options}, scale


def call_as_block(run, executor: Callable, args: tuple, kwargs: dict) -> torch.Tensor:
    """A model call of a call-level cache: computed (and recorded) or stood in for."""
    x, sigma, options = args[0], args[1], args[5]
    computed: list[torch.Tensor] = []

    def compute(_: dict) -> dict:
        denoised = executor(*args, **kwargs)
        computed.append(denoised)
        with own_code("recording a model call"):
            return {"img": denoised / scale}

    with own_code("beginning a model call"):
        view, scale = _call_view(x, sigma, options)
    out = run.run_block(0, view, compute)
    if computed:
        return computed[0]
    with own_code("standing in for a model call"):
        return out["img"] * scale


def settle_whole_level(run, executor: Callable, args: tuple, kwargs: dict) -> torch.Tensor:
    """A whole-model cache's first model call of the run: computed, and what it did settles the
    level. If the model's forward ran the DIFFUSION_MODEL wrapper and its output could be a
    residual of its input, that wrapper cached it inside the forward (the model level); otherwise
    the call is recorded here, as the call level's first computed block."""
    x = args[0]
    run.call.cached_in_forward = False
    view = None
    if isinstance(x, torch.Tensor):
        with own_code("beginning a model call"):
            view, scale = _call_view(x, args[1], args[5])
    denoised = executor(*args, **kwargs)
    if run.call.cached_in_forward:
        run.whole_level = MODEL_LEVEL
        return denoised
    if view is None or not isinstance(denoised, torch.Tensor):
        run.compute_every_step(NOT_ONE_TENSOR)
        return denoised
    run.whole_level = CALL_LEVEL
    run.recorder.level(CALL_LEVEL)
    with own_code("recording a model call"):
        run.run_block(0, view, lambda _: {"img": denoised / scale})
    return denoised
