"""An independent guarded forecast to check TaylorSeer's guard against: per block and per stream of
calls, as per_block_reference.py, with none of the engine's code. On a step outside
`computed_steps` the first block runs for real (the probe); the scale s in [0, 1] that brings
`last residual + s * Taylor terms` of that block closest (least squares, in float) to its real
residual is fitted, and every block, the first included, returns its input plus its own last
residual plus s times its own Taylor terms. The scales fitted, one per probed call, are kept in
`clone.fitted_scales` in call order. Tensors only (no tuple-valued hidden states)."""
from __future__ import annotations

import math

import torch

from per_block_reference import step_counter, stream_of


def _terms(derivatives: list, distance: int) -> torch.Tensor | None:
    """What the Taylor series adds to the last residual at `distance` steps (None: nothing)."""
    if len(derivatives) < 2:
        return None
    return sum(d * distance**n / math.factorial(n) for n, d in enumerate(derivatives) if n > 0)


def least_squares_scale(real: torch.Tensor, reused: torch.Tensor, added: torch.Tensor | None) -> float:
    """argmin over s in [0, 1] of |reused + s * added - real|^2 (1 where nothing is added)."""
    if added is None:
        return 1.0
    direction, target = added.double().flatten(), (real - reused).double().flatten()
    norm = float(direction @ direction)
    if norm == 0.0:
        return 1.0
    return min(1.0, max(0.0, float(direction @ target) / norm))


def guarded_per_block_cache(patcher, computed_steps: set[int], order: int):
    import comfy.patcher_extension

    from comfyui_dit_cache.cache_core.attachment.attach import adapter_for

    clone = patcher.clone()
    adapter = adapter_for(patcher)
    specs = {spec.key: spec for spec in adapter.blocks(patcher.model.diffusion_model)}
    first_key = next(iter(specs))
    copy_inputs = adapter.blocks_modify_inputs
    step_of = step_counter(first_key)
    history: dict = {}   # (block, output, stream) -> (last computed step, derivatives)
    scale_of: dict = {}  # (step, stream) -> the scale the probe fitted
    fitted_scales: list[float] = []
    call_options: list[dict] = []

    def record(key, outputs, inputs, out, stream, step):
        for k in outputs:
            if out.get(k) is None:
                continue
            residual = out[k] - inputs[k]
            last = history.get((key, k, stream))
            derivatives = [residual]
            if last is not None:
                for n in range(min(order, len(last[1]))):
                    derivatives.append((derivatives[n] - last[1][n]) / (step - last[0]))
            history[(key, k, stream)] = (step, derivatives)

    def hook_for(key):
        outputs = specs[key].outputs

        def hook(args: dict, extra: dict) -> dict:
            options = args.get("transformer_options") or call_options[-1]
            step = step_of(key, options)
            stream = stream_of(options)
            inputs = {k: args[k].clone() if copy_inputs else args[k] for k in outputs}
            if step in computed_steps:
                out = extra["original_block"](args)
                record(key, outputs, inputs, out, stream, step)
                return out
            if (key, outputs[0], stream) not in history:
                return {k: args[k] for k in outputs}
            if key == first_key:   # the probe
                real = extra["original_block"](args)
                last_step, derivatives = history[(key, "img", stream)]
                scale = least_squares_scale(real["img"] - inputs["img"], derivatives[0],
                                            _terms(derivatives, step - last_step))
                scale_of[(step, stream)] = scale
                fitted_scales.append(scale)
            scale = scale_of[(step, stream)]
            out = {}
            for k in outputs:
                if (key, k, stream) not in history:   # SD3's last block computes no text
                    out[k] = args[k]
                    continue
                last_step, derivatives = history[(key, k, stream)]
                added = _terms(derivatives, step - last_step)
                out[k] = inputs[k] + derivatives[0] + (0.0 if added is None else scale * added)
            return out
        return hook

    def remember_call_options(executor, *args, **kwargs):
        call_options.append(args[5])
        return executor(*args, **kwargs)

    clone.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "guarded_reference",
                               remember_call_options)
    for key in specs:
        clone.set_model_patch_replace(hook_for(key), "dit", key[0], key[1])
    clone.fitted_scales = fitted_scales
    return clone
