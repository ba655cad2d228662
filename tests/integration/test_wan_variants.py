"""Every Wan model of this ComfyUI (each config built on Wan2.1 T2V in `comfy.supported_models`,
found there, so a ComfyUI that adds a variant tests it too) is cached block by block as an
independent per-block cache would cache it; Causal-Wan under ComfyUI's autoregressive sampler,
whose blocks run outside the hooks, computes every step and says why."""
from __future__ import annotations

import pytest
import torch

import tiny_models
from helpers import CFG, STEPS, attached_engine, computed_steps, fora, sample_with_report
from per_block_reference import per_block_cache

from comfyui_dit_cache.cache_core.attachment.attach import adapter_for
from comfyui_dit_cache.cache_core.attachment.model_wrappers import AUTOREGRESSIVE_SAMPLER


@pytest.fixture(scope="module", params=tiny_models.wan_configs())
def wan_variant(request):
    return request.param, tiny_models.tiny_wan_variant(request.param)


def test_every_wan_model_of_this_comfyui_is_cached_as_a_per_block_cache_would(wan_variant):
    config, tiny = wan_variant
    assert adapter_for(tiny.patcher).family == "wan", config
    out, report = sample_with_report(fora(tiny.patcher, interval=3, warmup_steps=1), tiny)
    computed = computed_steps(report)
    assert report.level == "block" and computed == [0, 1, 4, 7] and not report.notes, (config, report.notes)
    reference = tiny_models.sample(per_block_cache(tiny.patcher, set(computed), 0), tiny, steps=STEPS, cfg=CFG)
    uncached = tiny_models.sample(tiny.patcher, tiny, steps=STEPS, cfg=CFG)
    scale = float(reference.abs().max())
    assert torch.allclose(out, reference, rtol=1e-4, atol=1e-4 * scale), config
    assert float((out - uncached).abs().max()) > 1e-3 * scale, config


def _sample_autoregressive(patcher, tiny) -> torch.Tensor:
    """ComfyUI's Sampler AR Video (one frame per block) over four steps, as its node builds it."""
    import comfy.sample
    import comfy.samplers

    g = torch.Generator().manual_seed(1234)
    positive, negative = tiny.make_cond(g), tiny.make_cond(g)
    latent = torch.zeros(tiny.latent_shape)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(0))
    sampler = comfy.samplers.ksampler("ar_video", {"num_frame_per_block": 1})
    sigmas = comfy.samplers.calculate_sigmas(patcher.get_model_object("model_sampling"), "simple", 4)
    return comfy.sample.sample_custom(patcher, noise, 1.0, sampler, sigmas, positive, negative, latent,
                                      disable_pbar=True, seed=0)


def test_causal_wan_under_the_autoregressive_sampler_computes_every_step_and_says_why():
    import comfy.k_diffusion.sampling

    if "WAN21_CausalAR_T2V" not in tiny_models.wan_configs() or not hasattr(comfy.k_diffusion.sampling,
                                                                             "sample_ar_video"):
        pytest.skip("this ComfyUI has no Causal-Wan or no autoregressive video sampler")
    tiny = tiny_models.tiny_wan_variant("WAN21_CausalAR_T2V")
    uncached = _sample_autoregressive(tiny.patcher, tiny)
    patched = fora(tiny.patcher, interval=3)
    reports = []
    attached_engine(patched).report_listeners.append(reports.append)
    out = _sample_autoregressive(patched, tiny)
    assert torch.equal(out, uncached)
    assert reports[0].notes == [AUTOREGRESSIVE_SAMPLER]
    assert set(reports[0].step_actions()) == {"compute"}
