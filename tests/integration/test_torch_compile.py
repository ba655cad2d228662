"""Caching nodes with ComfyUI's TorchCompileModel, in either order, on a model that was sampled
compiled without a cache before: ComfyUI 0.26's compile skips dynamo's guards on
`transformer_options`, so a graph traced without the block hooks was reused with them missing.

The tiny models attend with ComfyUI's PyTorch attention, as ComfyUI does on a GPU: on a CPU it
picks sub-quadratic attention, whose free-memory query breaks the graph at every block, which
hides what a whole-model graph does on a GPU."""
from __future__ import annotations

import math

import pytest
import torch
import torch._dynamo.utils

import node_runner
import tiny_models
from helpers import WINDOW, run_node

from comfyui_dit_cache.cache_core.attachment.attach import attached_engine
from comfyui_dit_cache.cache_core.attachment.compiled_blocks import WHOLE_MODEL_LEVEL_COMPILED, skip_transformer_options_guards
from comfyui_dit_cache.cache_core.attachment.model_wrappers import HOOKS_NOT_RUN
from comfyui_dit_cache.nodes import ApplyFORA, BlockProfiler, TaylorSeerForecast, TeaCacheThreshold

STEPS = 6
CACHING_NODES = {
    "FORA": (ApplyFORA, dict(interval=2, warmup_steps=1)),
    "TeaCache-style": (TeaCacheThreshold, dict(rel_l1_thresh=10.0, coefficients="auto", max_consecutive_reuse=2)),
    "TaylorSeer": (TaylorSeerForecast, dict(interval=3, warmup_steps=2, order=2, guard_tolerance=0.0)),
}


@pytest.fixture
def pytorch_attention(monkeypatch):
    import comfy.ldm.flux.math
    import comfy.ldm.modules.attention
    monkeypatch.setattr(comfy.ldm.flux.math, "optimized_attention", comfy.ldm.modules.attention.attention_pytorch)


@pytest.fixture(scope="module")
def flux():
    return tiny_models.tiny_flux(seed=3)


def compiled(model, backend: str = "inductor"):
    from comfy_extras.nodes_torch_compile import TorchCompileModel
    return node_runner.run_node(TorchCompileModel, "compile", model=model, backend=backend)[0]


def cached(node_name: str, model):
    node, settings = CACHING_NODES[node_name]
    return run_node(node, model=model, **settings, **WINDOW)[0]


def sample_reported(model, tiny):
    reports = []
    attached_engine(model).report_listeners.append(reports.append)
    out = tiny_models.sample(model, tiny, steps=STEPS)
    return out, reports[-1]


def graphs_compiled() -> int:
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


@pytest.mark.parametrize("order", ["cache after TorchCompileModel", "cache before TorchCompileModel"])
@pytest.mark.parametrize("node_name", sorted(CACHING_NODES))
def test_a_caching_node_caches_a_compiled_model_that_was_sampled_uncached_before(node_name, order, flux,
                                                                                   pytorch_attention):
    """The uncached compiled run comes first (its graph has no hooks); the cached compiled run
    then skips the steps the eager cached run skips, with its output; a second cached run
    compiles nothing new; the uncached compiled model is unchanged afterwards."""
    whole = compiled(flux.patcher)
    uncached = tiny_models.sample(whole, flux, steps=STEPS)
    eager_out, eager_report = sample_reported(cached(node_name, flux.patcher), flux)
    model = cached(node_name, whole) if order.startswith("cache after") else compiled(cached(node_name, flux.patcher))

    out, report = sample_reported(model, flux)
    assert report.step_actions() == eager_report.step_actions()
    assert "compute" in report.step_actions() and set(report.step_actions()) != {"compute"}
    assert torch.allclose(out, eager_out, atol=1e-3 * float(eager_out.abs().max()))
    assert any("compiles the model's 6 blocks instead" in note for note in report.notes)

    before = graphs_compiled()
    again, _ = sample_reported(model, flux)
    assert graphs_compiled() == before, "the second cached compiled run recompiled"
    assert torch.equal(again, out)
    assert torch.equal(tiny_models.sample(whole, flux, steps=STEPS), uncached)


def test_the_profiler_measures_a_compiled_model(flux, pytorch_attention, tmp_path):
    """The Block Profiler on a compiled model sampled uncached before sees every block."""
    import folder_paths
    folder_paths.set_output_directory(str(tmp_path))
    whole = compiled(flux.patcher)
    tiny_models.sample(whole, flux, steps=STEPS)
    _, report = sample_reported(run_node(BlockProfiler, model=whole, profile_name="compiled")[0], flux)
    assert [call.block_actions for call in report.calls] == ["C" * 6] * STEPS   # every block seen, every step
    profile = report.extras["profile"]
    changes = profile["block_rel_l1"][1:]   # per step after the first, per block
    assert len(changes) == STEPS - 1 and all(len(row) == 6 and all(map(math.isfinite, row)) for row in changes)


def test_a_graph_traced_without_the_hooks_elsewhere_computes_every_step_and_says_so(flux, pytorch_attention):
    """A compile this pack does not know (an object patch, with ComfyUI's guard filter, as other
    compile nodes make it), sampled uncached first: the cached run's model calls run no hook.
    The run says so and computes every step: the compiled uncached output."""
    model = flux.patcher.clone()
    model.add_object_patch("diffusion_model", torch.compile(
        model.get_model_object("diffusion_model"), backend="eager",
        options={"guard_filter_fn": skip_transformer_options_guards}))
    uncached = tiny_models.sample(model, flux, steps=STEPS)

    out, report = sample_reported(cached("FORA", model), flux)
    assert HOOKS_NOT_RUN in report.notes
    assert torch.equal(out, uncached)


def test_a_model_cached_whole_under_torch_compile_computes_every_step_and_says_so(tiny_cache):
    sd15 = tiny_cache.setdefault("sd15_whole_model", tiny_models.BUILDERS["sd15_whole_model"]())
    model = compiled(cached("FORA", sd15.patcher), backend="eager")
    out, report = sample_reported(model, sd15)
    assert WHOLE_MODEL_LEVEL_COMPILED in report.notes
    assert report.step_actions() == ["compute"] * STEPS
    assert torch.allclose(out, tiny_models.sample(sd15.patcher, sd15, steps=STEPS), atol=1e-4)
