"""Area and mask conditioning (ComfyUI's Conditioning (Set Area) and Conditioning (Set Mask)
nodes) under the step-decided caching nodes: each area's call keeps its own cache, every call of
a step follows the step's one decision, and the output equals an independent per-block cache
(per_block_reference.py) on the same computed steps."""
from __future__ import annotations

import comfy.sample
import nodes as comfy_nodes
import pytest
import torch

import tiny_models
from helpers import CFG, STEPS, computed_steps, fora, taylorseer
from per_block_reference import per_block_cache
from tiny_profiles import calibrated, profile_of, with_plan

from comfyui_dit_cache.cache_core.attachment.attach import attached_engine

PLAN = "CCRRCRRCRR"
# node -> (the cached model, the order of the reference's Taylor forecast)
CACHES = {
    "fora interval 3": (lambda tiny: fora(tiny.patcher, interval=3), 0),
    "taylorseer order 2": (lambda tiny: taylorseer(tiny.patcher, interval=3, warmup_steps=2, order=2), 2),
    "calibrated plan": (lambda tiny: calibrated(tiny.patcher, with_plan(profile_of(tiny), PLAN)), 0),
}


def prompts_with_area(tiny):
    """A prompt on the whole picture combined with a second prompt on its top right quarter
    (the tiny FLUX samples 128 x 128 pixels)."""
    g = torch.Generator().manual_seed(1234)
    whole, other, negative = tiny.make_cond(g), tiny.make_cond(g), tiny.make_cond(g)
    (area,) = comfy_nodes.ConditioningSetArea().append(other, width=64, height=64, x=64, y=0, strength=1.0)
    return whole + area, negative


def prompts_with_mask(tiny, set_cond_area: str):
    """A prompt on the whole picture combined with a second prompt masked to its left half."""
    g = torch.Generator().manual_seed(1234)
    whole, other, negative = tiny.make_cond(g), tiny.make_cond(g), tiny.make_cond(g)
    mask = torch.zeros(1, 128, 128)
    mask[:, :, :64] = 1.0
    (masked,) = comfy_nodes.ConditioningSetMask().append(other, mask, set_cond_area, strength=1.0)
    return whole + masked, negative


def sample_prompts(patcher, tiny, positive, negative) -> torch.Tensor:
    latent = torch.zeros(tiny.latent_shape)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(0))
    return comfy.sample.sample(patcher, noise, STEPS, CFG, "euler", "simple", positive, negative, latent, seed=0,
                               disable_pbar=True)


GRAPHS = {
    "area": prompts_with_area,
    "mask": lambda tiny: prompts_with_mask(tiny, "default"),
    "mask bounds": lambda tiny: prompts_with_mask(tiny, "mask bounds"),
}


@pytest.mark.parametrize("cache", sorted(CACHES))
@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_area_and_mask_prompts_each_keep_a_cache_and_follow_the_step(graph, cache, tiny_cache):
    tiny = tiny_cache.setdefault("flux", tiny_models.BUILDERS["flux"]())
    positive, negative = GRAPHS[graph](tiny)
    make, order = CACHES[cache]
    patched = make(tiny)
    reports = []
    attached_engine(patched).report_listeners.append(reports.append)
    cached = sample_prompts(patched, tiny, positive, negative)
    report = reports[0]
    assert report.steps == STEPS and report.full_steps < STEPS
    if cache != "taylorseer order 2":
        assert computed_steps(report) == [i for i, letter in enumerate(PLAN) if letter == "C"]
    calls = {s: [c.block_actions for c in report.calls if c.step == s] for s in range(STEPS)}
    assert all(len(set(letters)) == 1 for letters in calls.values()), calls   # every call follows the step
    # the area's crop and the mask's bounds run in calls of their own, each with its own cache; a
    # mask over the whole latent is batched with the other prompts (one call a step)
    assert len(calls[0]) == (1 if graph == "mask" else 2), calls[0]
    uncached = sample_prompts(tiny.patcher, tiny, positive, negative)
    g = torch.Generator().manual_seed(1234)
    assert not torch.equal(uncached, sample_prompts(tiny.patcher, tiny, tiny.make_cond(g), tiny.make_cond(g)))
    reference = sample_prompts(per_block_cache(tiny.patcher, set(computed_steps(report)), order), tiny, positive,
                               negative)
    scale = float(reference.abs().max())
    assert float((reference - uncached).abs().max()) > 1e-2 * scale   # the caches did act
    assert torch.allclose(cached, reference, rtol=1e-4, atol=1e-4 * scale)
