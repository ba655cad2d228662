"""Edit models with reference latents kept at timestep zero (`reference_latents_method`
"index_timestep_zero": FLUX.2 / Klein multi-reference, Qwen-Image-Edit 2511): the model
modulates the generated image by the step's timestep and the reference tokens by timestep zero,
so the first block's modulation carries two rows per image. TeaCache-style's signal and the
Block Profiler read the generated image's row."""
from __future__ import annotations

import json

import pytest
import torch

import tiny_models
from helpers import STEPS, run_node, teacache

from comfyui_dit_cache.cache_core.attachment.attach import adapter_for, attached_engine
from comfyui_dit_cache.nodes import BlockProfiler


def _with_reference(tiny: tiny_models.TinyModel, method: str) -> tiny_models.TinyModel:
    reference = torch.randn(tiny.latent_shape, generator=torch.Generator().manual_seed(7))

    def cond(g: torch.Generator) -> list:
        [[text, extra]] = tiny.make_cond(g)
        return [[text, {**extra, "reference_latents": [reference], "reference_latents_method": method}]]
    return tiny_models.TinyModel(tiny.family, tiny.patcher, tiny.latent_shape, cond)


# ComfyUI keeps references at timestep zero on FLUX.2 (global modulation) and Qwen-Image; FLUX.1's
# blocks do not take the second row. The CFG each samples at: FLUX.2 dev embeds its guidance and
# runs at CFG 1 (ComfyUI's FLUX.2 cannot batch a negative prompt with references at timestep zero).
EDIT_MODELS = {"flux2": (tiny_models.tiny_flux2, 1.0), "qwen_image_edit": (tiny_models.tiny_qwen_image, 3.0)}


def _first_block_signal(tiny: tiny_models.TinyModel) -> torch.Tensor:
    """The adapter's signal of the first model call's first block, read through a plain block hook."""
    first_key = adapter_for(tiny.patcher).blocks(tiny.patcher.model.diffusion_model)[0].key
    signals = []

    def hook(args: dict, extra: dict) -> dict:
        if not signals:
            signals.append(adapter_for(tiny.patcher).modulated_input(tiny.patcher.model.diffusion_model, args))
        return extra["original_block"](args)
    hooked = tiny.patcher.clone()
    hooked.set_model_patch_replace(hook, "dit", *first_key)
    tiny_models.sample(hooked, tiny, steps=1, cfg=1.0)
    return signals[0]


@pytest.mark.parametrize("name", sorted(EDIT_MODELS))
def test_the_signal_at_timestep_zero_is_the_generated_images_modulation(name):
    """On the first step both methods feed the first block the same tokens and the generated
    image the same timestep; reading the generated image's row, the signal is the same."""
    model = EDIT_MODELS[name][0]()
    at_zero = _first_block_signal(_with_reference(model, "index_timestep_zero"))
    plain = _first_block_signal(_with_reference(model, "index"))
    assert at_zero.shape == plain.shape
    assert torch.allclose(at_zero, plain, rtol=1e-5, atol=1e-6)


def _sample_with_report(patched, tiny, cfg: float):
    reports = []
    attached_engine(patched).report_listeners.append(reports.append)
    return tiny_models.sample(patched, tiny, steps=STEPS, cfg=cfg), reports[0]


@pytest.mark.parametrize("name", sorted(EDIT_MODELS))
def test_threshold_and_profiler_run_on_references_at_timestep_zero(name, output_dir):
    build, cfg = EDIT_MODELS[name]
    tiny = _with_reference(build(), "index_timestep_zero")
    uncached = tiny_models.sample(tiny.patcher, tiny, steps=STEPS, cfg=cfg)

    exact, exact_report = _sample_with_report(teacache(tiny.patcher, rel_l1_thresh=0.0), tiny, cfg)
    assert torch.equal(exact, uncached) and exact_report.full_steps == STEPS
    cached, report = _sample_with_report(teacache(tiny.patcher, rel_l1_thresh=0.6), tiny, cfg)
    assert torch.isfinite(cached).all() and report.full_steps < STEPS

    (profiling,) = run_node(BlockProfiler, model=tiny.patcher, profile_name=name)
    tiny_models.sample(profiling, tiny, steps=STEPS, cfg=cfg)
    saved = json.loads((output_dir / "dit_cache" / "profiles" / f"{name}.json").read_text())
    assert all(v is not None and v > 0 for v in saved["block_rel_l1"][1])
