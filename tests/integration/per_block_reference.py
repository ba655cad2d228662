"""An independent cache to check the engine against: every block, on steps outside
`computed_steps`, returns its input plus its own residual forecast by a Taylor series of
`order` (0: the last computed residual). Written here with plain `patches_replace["dit"]`
hooks and none of the engine's code (only the adapter's list of blocks, and its views of a hook
that names its hidden states otherwise: SeedVR2's): per block and per
stream of calls (conditionings, context window), so it is right by construction where terms are
added between blocks (ControlNet, VACE) and where a step makes several model calls. A hidden
state passed as a tuple of tensors (LTX-2's (video, audio)) is cached tensor by tensor."""
from __future__ import annotations

import math


def _each(fn, *values):
    """`fn` applied to tensors, or part by part to tuples of them (LTX-2's (video, audio))."""
    if isinstance(values[0], tuple):
        return tuple(fn(*parts) for parts in zip(*values))
    return fn(*values)


def stream_of(options: dict) -> tuple:
    """Which stream of calls a hook's call is: its conditionings and its context window."""
    window = options.get("context_window")
    return (tuple(options.get("cond_or_uncond", ())), tuple(options.get("uuids", ())),
            tuple(window.index_list) if window is not None else ())


def step_counter(first_key):
    """A hook's step, counted from the sigmas its first block sees (a new sigma there: a new step)."""
    sigmas: list[float] = []

    def step_of(key, options: dict) -> int:
        sigma = float(options["sigmas"].flatten()[0])
        if key == first_key and (not sigmas or sigmas[-1] != sigma):
            sigmas.append(sigma)
        return len(sigmas) - 1
    return step_of


def _forecast(hidden, derivatives: list, gaps: tuple, distance: int, solver: str):
    """`hidden` plus the residual forecast by `solver`: R reuse, 1 / 2 the Taylor series of that
    order, P FoCa: with three computed steps, r + d1 h + D2 h (g + h/2), D2 the second divided
    difference over the last three computed steps and g the last gap (the quadratic through them,
    calibrated by a trapezoidal step), else the series of the derivatives held."""
    if solver == "P" and len(derivatives) == 3 and len(gaps) == 2:
        g, g1 = gaps
        return _each(lambda a, r, d1, d2: a + r + d1 * distance + d2 * g / (g + g1) * distance * (g + distance / 2),
                     hidden, *derivatives)
    order = {"R": 0, "1": 1, "2": 2, "P": 2}[solver]
    return _each(lambda a, *ds: a + sum(d * distance**n / math.factorial(n) for n, d in enumerate(ds)),
                 hidden, *derivatives[:order + 1])


def _per_channel(hidden, derivatives: list, gaps: tuple, distance: int, solvers: str):
    """Each channel (last dimension) forecast by its own solver; a tensor of another width by the
    solver most channels use."""
    import torch

    def select(a, *ds):
        if a.shape[-1] != len(solvers):
            common = max("R12P", key=lambda s: (solvers.count(s), -"R12P".index(s)))
            return _forecast(a, list(ds), gaps, distance, common)
        out = torch.empty_like(a)
        for letter in set(solvers):
            mask = torch.tensor([s == letter for s in solvers], device=a.device)
            out = torch.where(mask, _forecast(a, list(ds), gaps, distance, letter), out)
        return out
    if isinstance(hidden, tuple):
        return tuple(select(a, *ds) for a, *ds in zip(hidden, *derivatives))
    return select(hidden, *derivatives)


def per_block_cache(patcher, computed_steps: set[int] | dict[tuple, set[int]], order: int, foca: bool = False,
                    channel_solvers: str = ""):
    """A clone of `patcher` whose blocks are cached per block on the steps not in `computed_steps`
    (one set for every block, or a set per block key: a per-block schedule), forecast by a Taylor
    series of `order`, by FoCa (`foca`; `order` 2), or each hidden channel by its own solver out of
    `channel_solvers` (one of R, 1, 2, P per channel; `order` 2)."""
    import comfy.patcher_extension

    from comfyui_dit_cache.cache_core.attachment.attach import adapter_for

    clone = patcher.clone()
    adapter = adapter_for(patcher)
    specs = {spec.key: spec for spec in adapter.blocks(patcher.model.diffusion_model)}
    first_key = next(iter(specs))
    copy_inputs = adapter.blocks_modify_inputs
    step_of = step_counter(first_key)
    history: dict = {}   # (block, output, stream) -> (last computed step, derivatives, the last gaps)

    def hook_for(key):
        outputs = specs[key].outputs

        def hook(args: dict, extra: dict) -> dict:
            options = args.get("transformer_options") or call_options[-1]
            step = step_of(key, options)
            stream = stream_of(options)
            computed = computed_steps[key] if isinstance(computed_steps, dict) else computed_steps
            # a hook that names its hidden states otherwise (SeedVR2's `vid`): they are read and
            # returned through the adapter's views
            renamed = any(k not in args for k in outputs)
            hidden = adapter.engine_view(args) if renamed else args
            if step in computed:
                inputs = {k: _each(lambda t: t.clone(), hidden[k]) if copy_inputs else hidden[k] for k in outputs}
                out = extra["original_block"](args)
                out_hidden = adapter.engine_view(out) if renamed else out
                for k in outputs:
                    if out_hidden.get(k) is None:   # SD3's last block computes no text
                        continue
                    residual = _each(lambda o, i: o - i, out_hidden[k], inputs[k])
                    last = history.get((key, k, stream))
                    derivatives, gaps = [residual], ()
                    if last is not None:
                        for n in range(min(order, len(last[1]))):
                            derivatives.append(_each(lambda d, e: (d - e) / (step - last[0]), derivatives[n], last[1][n]))
                        gaps = (step - last[0], *last[2][:1])
                    history[(key, k, stream)] = (step, derivatives, gaps)
                return out
            out = {}
            for k in outputs:
                if (key, k, stream) not in history:
                    out[k] = hidden[k]
                    continue
                last_step, derivatives, gaps = history[(key, k, stream)]
                distance = step - last_step
                if channel_solvers:
                    out[k] = _per_channel(hidden[k], derivatives, gaps, distance, channel_solvers)
                else:
                    out[k] = _forecast(hidden[k], derivatives, gaps, distance, "P" if foca else str(order or "R"))
            return adapter.model_view(out, args) if renamed else out
        return hook

    def remember_call_options(executor, *args, **kwargs):
        """APPLY_MODEL: the call's options, for a forward that does not pass them to its hooks."""
        call_options.append(args[5])
        return executor(*args, **kwargs)

    call_options: list[dict] = []
    clone.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "per_block_reference",
                               remember_call_options)
    for key in specs:
        clone.set_model_patch_replace(hook_for(key), "dit", key[0], key[1])
    return clone
