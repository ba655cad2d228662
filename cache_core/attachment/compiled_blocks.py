"""ComfyUI's TorchCompileModel under a block cache.

TorchCompileModel compiles the whole diffusion model (an `APPLY_MODEL` wrapper under ComfyUI's
key "torch.compile" swaps in the compiled module for each call) and, from ComfyUI 0.26 on, tells
dynamo not to check `transformer_options` when it decides whether a compiled graph still fits.
The cache's block hooks live in `transformer_options`, so a graph traced without them (the same
model sampled uncached before, in either node order) is reused with the hooks silently missing,
and a graph traced with them would freeze the cache's per-step decisions into the graph.

So for a cached run the whole-model compile is swapped, in the run's own copy of the model
options, for one that compiles each transformer block with the same settings: the blocks, where
the time goes, run compiled; the forward that calls the hooks runs as Python, as it does
uncompiled. The model patcher and its compile wrapper are left as they are.
"""
from __future__ import annotations

from typing import Callable

import comfy.patcher_extension
import comfy.utils
import torch

from ..adapters import ModelAdapter

COMPILE_WRAPPER_KEY = "torch.compile"       # the key ComfyUI's set_torch_compile_wrapper uses
COMPILE_KWARGS_KEY = "torch_compile_kwargs"  # where it keeps the torch.compile settings
WHOLE_MODEL_KEY = "diffusion_model"

WHOLE_MODEL_LEVEL_COMPILED = (
    "TorchCompileModel compiles the whole diffusion model, and a model cached whole cannot keep the cache's "
    "decisions out of that graph: every step is computed. Leave out TorchCompileModel with this model to cache it")


def skip_transformer_options_guards(guard_entries) -> list[bool]:
    """The guard filter ComfyUI's TorchCompileModel gives dynamo: no guard on `transformer_options`
    (block index, sigmas, patches), which would otherwise recompile a block per call."""
    return ["transformer_options" not in entry.name for entry in guard_entries]


def compiled_keys(wrapper: Callable) -> list[str] | None:
    """The model attributes a ComfyUI compile wrapper swaps in (its `compiled_module_dict`), or
    None when the wrapper does not show them."""
    names = getattr(getattr(wrapper, "__code__", None), "co_freevars", ())
    cells = getattr(wrapper, "__closure__", None) or ()
    for name, cell in zip(names, cells):
        if name == "compiled_module_dict" and isinstance(cell.cell_contents, dict):
            return list(cell.cell_contents)
    return None


def apply_model_wrappers(model_options: dict) -> dict:
    """The run's APPLY_MODEL wrappers by key (empty when there are none)."""
    return (model_options.get("transformer_options", {}).get("wrappers", {})
            .get(comfy.patcher_extension.WrappersMP.APPLY_MODEL, {}))


def compiles_whole_model(wrappers: dict) -> bool:
    """Whether ComfyUI's compile wrappers among `wrappers` compile the whole diffusion model (a
    compile of chosen sub-modules leaves the hooks' forward alone)."""
    compiled = wrappers.get(COMPILE_WRAPPER_KEY) or []
    return any(WHOLE_MODEL_KEY in (compiled_keys(wrapper) or [WHOLE_MODEL_KEY]) for wrapper in compiled)


def block_paths(adapter: ModelAdapter, diffusion_model: torch.nn.Module) -> list[str]:
    """Each block module's attribute path from the base model ("diffusion_model.double_blocks.0")."""
    names = {id(module): name for name, module in diffusion_model.named_modules()}
    return [f"{WHOLE_MODEL_KEY}.{names[id(block)]}" for block in adapter.block_modules(diffusion_model)]


def block_compile_wrapper(paths: list[str], base_model: torch.nn.Module, compile_kwargs: dict) -> Callable:
    """An APPLY_MODEL wrapper that runs each block at `paths` compiled with `compile_kwargs`
    (ComfyUI's stored settings; its guard filter is not kept there, so the same rule is given
    again). Dynamo keeps compiled graphs with the block's code, so later runs reuse them."""
    kwargs = dict(compile_kwargs)
    kwargs["options"] = {**(kwargs.get("options") or {}), "guard_filter_fn": skip_transformer_options_guards}
    compiled = {path: torch.compile(comfy.utils.get_attr(base_model, path), **kwargs) for path in paths}

    def run_blocks_compiled(executor, *args, **kwargs):
        originals = {}
        try:
            for path, module in compiled.items():
                originals[path] = comfy.utils.get_attr(executor.class_obj, path)
                comfy.utils.set_attr(executor.class_obj, path, module)
            return executor(*args, **kwargs)
        finally:
            for path, module in originals.items():
                comfy.utils.set_attr(executor.class_obj, path, module)
    return run_blocks_compiled


def compile_blocks_for_run(adapter: ModelAdapter, base_model: torch.nn.Module, run_options: dict) -> str | None:
    """Swap a whole-model TorchCompileModel for block compiles in the run's copy of the model
    options. Returns the note for the run's report (None: nothing compiled whole);
    `WHOLE_MODEL_LEVEL_COMPILED` when the model is cached whole and every step must compute."""
    wrappers = apply_model_wrappers(run_options)
    if not compiles_whole_model(wrappers):
        return None
    if adapter.level == "model":
        return WHOLE_MODEL_LEVEL_COMPILED
    paths = block_paths(adapter, base_model.diffusion_model)
    compile_kwargs = run_options.get(COMPILE_KWARGS_KEY) or {}
    wrappers[COMPILE_WRAPPER_KEY] = [block_compile_wrapper(paths, base_model, compile_kwargs)]
    backend = compile_kwargs.get("backend", "inductor")
    return (f"TorchCompileModel compiles the whole diffusion model, whose graph would not see the cache's hooks: "
            f"for cached runs the cache compiles the model's {len(paths)} blocks instead ({backend})")
