"""Batch sizes 1-4 under every caching node. The engine decides a step for the whole batch (one
decision per step, shared by every row and every call). The nodes whose decisions read nothing
of the batch (FORA, TaylorSeer, Calibrated Cache: the step; Magnitude-Ratio: its curve; Block
Cache: its profile) decide the same steps at any batch size, so a batch of N equals N runs of
batch 1, row by row, a calibrated plan included at batch sizes other than its calibration's.
TeaCache-style reads the first block's modulated input of the whole call (every row, cond and
uncond together): its decision is one for the batch, which every row follows."""
from __future__ import annotations

import comfy.sample
import pytest
import torch

import tiny_models
from helpers import CFG, STEPS, WINDOW, computed_steps, fora, magnitude, run_node, taylorseer, teacache
from per_block_reference import per_block_cache
from tiny_profiles import calibrated, profile_of, with_plan

from comfyui_dit_cache.cache_core.attachment.attach import attached_engine
from comfyui_dit_cache.nodes import BlockCache

BATCHES = (1, 2, 3, 4)
PLAN = "CCRRCRRCRR"


@pytest.fixture(scope="module")
def flux(tiny_cache):
    return tiny_cache.setdefault("flux", tiny_models.BUILDERS["flux"]())


@pytest.fixture(scope="module")
def profile(flux):
    return profile_of(flux)


def block_cache(patcher, profile: dict):
    changes = sorted(v for row in profile["block_rel_l1"][1:] for v in row if v is not None and v == v)
    threshold = 2 * changes[len(changes) // 2]   # some blocks reuse, others compute
    return run_node(BlockCache, model=patcher, profile=profile, threshold=threshold, max_skip=3, **WINDOW)[0]


STEP_DECIDED = {
    "fora": lambda flux, profile: fora(flux.patcher, interval=3),
    "taylorseer": lambda flux, profile: taylorseer(flux.patcher, interval=3, warmup_steps=2, order=2),
    "calibrated (plan calibrated at batch 1)": lambda flux, profile: calibrated(flux.patcher, with_plan(profile, PLAN)),
    "magnitude": lambda flux, profile: magnitude(flux.patcher, threshold=0.12, max_skip=3),
    "block cache": lambda flux, profile: block_cache(flux.patcher, profile),
}


def sample_batch(patcher, tiny, noise: torch.Tensor):
    """One sampling run of the batch `noise` (the tiny model's prompts, repeated by ComfyUI to the
    batch) and its run report, if `patcher` is cached."""
    g = torch.Generator().manual_seed(1234)
    positive, negative = tiny.make_cond(g), tiny.make_cond(g)
    reports = []
    engine = attached_engine(patcher) if hasattr(patcher, "model_options") else None
    if engine is not None:
        engine.report_listeners.append(reports.append)
    out = comfy.sample.sample(patcher, noise, STEPS, CFG, "euler", "simple", positive, negative,
                              torch.zeros_like(noise), seed=0, disable_pbar=True)
    if engine is not None:
        engine.report_listeners.remove(reports.append)
    return out, (reports[0] if reports else None)


def every_call_follows_its_step(report) -> bool:
    calls: dict[int, set[str]] = {}
    for c in report.calls:
        calls.setdefault(c.step, set()).add(c.block_actions)
    return all(len(letters) == 1 for letters in calls.values())


@pytest.mark.parametrize("node", sorted(STEP_DECIDED))
def test_a_batch_of_n_equals_n_runs_of_batch_one(node, flux, profile):
    noise = torch.randn((max(BATCHES), *flux.latent_shape[1:]), generator=torch.Generator().manual_seed(7))
    patched = STEP_DECIDED[node](flux, profile)
    singles = [sample_batch(patched, flux, noise[i:i + 1]) for i in range(max(BATCHES))]
    decided = singles[0][1].step_actions()
    assert decided.count("compute") < STEPS and all(r.step_actions() == decided for _, r in singles)
    uncached = torch.cat([sample_batch(flux.patcher, flux, noise[i:i + 1])[0] for i in range(max(BATCHES))])
    one_by_one = torch.cat([out for out, _ in singles])
    scale = float(uncached.abs().max())
    assert float((one_by_one - uncached).abs().max()) > 1e-2 * scale   # the cache did act
    for n in BATCHES:
        out, report = sample_batch(patched, flux, noise[:n])
        assert report.step_actions() == decided and every_call_follows_its_step(report)
        assert torch.allclose(out, one_by_one[:n], rtol=1e-4, atol=1e-4 * scale), (node, n)


@pytest.mark.parametrize("n", BATCHES)
def test_teacache_decides_once_for_the_whole_batch_and_every_row_follows(n, flux):
    """The decision reads the whole call's input change: one per step, every call and row follow
    it, so each row equals an independent per-block reuse on the batch's computed steps."""
    noise = torch.randn((n, *flux.latent_shape[1:]), generator=torch.Generator().manual_seed(7))
    out, report = sample_batch(teacache(flux.patcher, rel_l1_thresh=0.4), flux, noise)
    assert report.full_steps < STEPS and every_call_follows_its_step(report)
    reference, _ = sample_batch(per_block_cache(flux.patcher, set(computed_steps(report)), 0), flux, noise)
    uncached, _ = sample_batch(flux.patcher, flux, noise)
    scale = float(uncached.abs().max())
    assert float((reference - uncached).abs().max()) > 1e-2 * scale
    assert torch.allclose(out, reference, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("n", BATCHES)
def test_a_guarded_forecast_fits_one_scale_per_call_over_every_row(n, flux):
    """TaylorSeer's guard probes the first block of the whole call (every row, cond and uncond
    together): one scale per call, every row forecast at it, as an independent guard fitted on
    the whole call (guarded_reference.py) does."""
    from guarded_reference import guarded_per_block_cache

    noise = torch.randn((n, *flux.latent_shape[1:]), generator=torch.Generator().manual_seed(7))
    out, report = sample_batch(taylorseer(flux.patcher, interval=3, warmup_steps=2, order=2, guard_tolerance=10.0),
                               flux, noise)
    assert report.full_steps < STEPS and report.fallbacks == 0 and every_call_follows_its_step(report)
    reference_model = guarded_per_block_cache(flux.patcher, set(computed_steps(report)), order=2)
    reference, _ = sample_batch(reference_model, flux, noise)
    assert report.forecast_scales == pytest.approx(reference_model.fitted_scales, abs=1e-4)
    scale = float(reference.abs().max())
    assert torch.allclose(out, reference, rtol=1e-4, atol=1e-4 * scale)
