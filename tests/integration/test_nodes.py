"""Each caching node on each family: the schedule it promises, counted on the real blocks."""
from __future__ import annotations

import json
import logging

import pytest
import torch

import node_runner
import tiny_models
from helpers import (CFG, STEPS, WINDOW, block_modules, count_block_calls, fora, reference, run_node, sample_with_report,
                     magnitude, taylorseer, teacache)
from per_block_reference import per_block_cache

from comfyui_dit_cache.cache_core.attachment.attach import attached_engine
from comfyui_dit_cache.cache_core.profiles.profile_io import ProfileError, safe_profile_name
from comfyui_dit_cache.nodes import BlockProfiler, LoadCacheProfile, MagnitudeThreshold, TeaCacheThreshold

def test_fora_computes_on_its_schedule_and_logs_one_line(tiny, caplog):
    patched = fora(tiny.patcher, interval=3, warmup_steps=1)
    with caplog.at_level(logging.INFO), count_block_calls(tiny) as counts:
        out, report = sample_with_report(patched, tiny)
    computed = [s for s, a in enumerate(report.step_actions()) if a == "compute"]
    assert computed == [0, 1, 4, 7]
    assert counts == [4 * tiny.calls_per_step] * len(block_modules(tiny))
    assert out.shape == tiny.sample_shape and torch.isfinite(out).all()
    level = {"model": " (whole model)", "call": " (model call)"}.get(report.level, "")
    assert f"[dit-cache] FORA{level}: 10 steps, 4 full, 6 reused, est. 2.5x" in caplog.text


def test_fora_interval_one_is_bit_identical(tiny, reference_outputs):
    out, report = sample_with_report(fora(tiny.patcher, interval=1, warmup_steps=0), tiny)
    assert torch.equal(out, reference(tiny, reference_outputs, steps=STEPS, cfg=3.0))
    assert report.full_steps == STEPS


def test_fora_window_computes_every_step_outside_it(tiny):
    _, report = sample_with_report(fora(tiny.patcher, interval=2, warmup_steps=0, start_percent=0.5), tiny)
    sigmas = report.sigmas
    actions = report.step_actions()
    assert len(sigmas) == len(actions) == STEPS
    start_sigma = tiny.patcher.model.model_sampling.percent_to_sigma(0.5)
    assert all(a == "compute" for a, s in zip(actions, sigmas) if s > start_sigma)
    assert "reuse" in actions


def test_threshold_zero_is_bit_identical(tiny, reference_outputs):
    out, report = sample_with_report(teacache(tiny.patcher, rel_l1_thresh=0.0), tiny)
    assert torch.equal(out, reference(tiny, reference_outputs, steps=STEPS, cfg=3.0))
    assert report.full_steps == STEPS


def test_threshold_reuses_until_max_consecutive_reuse(tiny):
    """Each step's change is used two steps later (no GPU wait), so steps 1 and 2, which have
    none yet, are computed; the last step is always computed."""
    patched = teacache(tiny.patcher, rel_l1_thresh=10.0, max_consecutive_reuse=2)
    with count_block_calls(tiny) as counts:
        out, report = sample_with_report(patched, tiny)
    expected = ["compute"] * 2 + ["compute", "reuse", "reuse"] * 2 + ["compute", "compute"]
    assert report.step_actions() == expected
    assert counts == [6 * tiny.calls_per_step] * len(counts)
    assert torch.isfinite(out).all()


def test_threshold_never_half_computes_a_cfg_step(tiny):
    _, report = sample_with_report(teacache(tiny.patcher, rel_l1_thresh=0.6), tiny)
    for step in {c.step for c in report.calls}:
        letters = set("".join(c.block_actions for c in report.calls if c.step == step))
        assert len(letters) == 1


def test_taylorseer_forecasts_between_computes(tiny):
    with count_block_calls(tiny) as counts:
        out, report = sample_with_report(taylorseer(tiny.patcher, interval=3, warmup_steps=2), tiny)
    actions = report.step_actions()
    assert [s for s, a in enumerate(actions) if a == "compute"] == [0, 1, 2, 5, 8]
    assert actions.count("forecast") == 5
    assert counts == [5 * tiny.calls_per_step] * len(counts)
    assert out.shape == tiny.sample_shape and torch.isfinite(out).all()


def test_taylorseer_order_zero_equals_plain_reuse(tiny):
    forecast, _ = sample_with_report(taylorseer(tiny.patcher, interval=3, warmup_steps=2, order=0), tiny)
    reused, _ = sample_with_report(fora(tiny.patcher, interval=3, warmup_steps=2), tiny)
    assert torch.equal(forecast, reused)


@pytest.mark.parametrize("order", [0, 1, 2])
def test_the_cache_holds_one_stack_residual_per_derivative(tiny, order):
    """Not one per block: reuse keeps one residual of the whole stack (shaped as the last block's
    output), a forecast of order k keeps k + 1 (the residual and k derivatives)."""
    _, reuse = sample_with_report(taylorseer(tiny.patcher, order=0), tiny)
    _, report = sample_with_report(taylorseer(tiny.patcher, order=order), tiny)
    assert report.cache_peak_bytes == (order + 1) * reuse.cache_peak_bytes
    # one residual: the size of the hidden states the last block returns (for a whole-model cache,
    # the model's output; all its streams where the family packs them), for the batched cond and uncond,
    # or for each of them where the model calls them apart
    last_outputs = []
    adapter = attached_engine(fora(tiny.patcher)).adapter
    watched = tiny.patcher.model.diffusion_model if adapter.level == "model" else block_modules(tiny)[-1]
    hook = watched.register_forward_hook(lambda m, i, out: last_outputs.append(out))
    try:
        tiny_models.sample(tiny.patcher, tiny, steps=1, cfg=3.0)
    finally:
        hook.remove()
    sizes = [t.numel() * t.element_size() for t in (last_outputs[0] if isinstance(last_outputs[0], tuple)
                                                  else (last_outputs[0],)) if t is not None]
    # a family with views of its own holds all its streams packed (LTX-2), or the one it renames
    # (SeedVR2's video)
    held = set(sizes) | {sum(sizes)} if adapter.packs_streams else set(sizes)
    assert reuse.cache_peak_bytes in {tiny.calls_per_step * size for size in held}


def test_profiler_saves_a_profile_and_heatmap_that_load_back(tiny, output_dir):
    (patched,) = run_node(BlockProfiler, model=tiny.patcher, profile_name=f"tiny {tiny.family}")
    out, report = sample_with_report(patched, tiny)
    assert report.full_steps == STEPS
    saved = output_dir / "dit_cache" / "profiles" / f"{safe_profile_name('tiny ' + tiny.family)}.json"
    assert saved.is_file() and saved.with_suffix(".png").is_file()
    raw = json.loads(saved.read_text())
    n_blocks = len(block_modules(tiny))
    assert raw["steps"] == STEPS and len(raw["block_rel_l1"]) == STEPS
    assert all(len(row) == n_blocks for row in raw["block_rel_l1"])
    assert raw["block_rel_l1"][0] == [None] * n_blocks and all(v > 0 for v in raw["block_rel_l1"][1])
    assert len(raw["teacache_coefficients"]) >= 2 and 1 <= raw["suggested_fora_interval"] <= 6

    output = node_runner.execute_node(LoadCacheProfile, "1", profile=saved.name)
    profile, heatmap, interval = output.args
    shown = output.ui.as_dict()["images"]   # the heatmap on the node itself
    assert len(shown) == 1 and shown[0]["type"] == "temp" and shown[0]["filename"].endswith(".png")
    assert profile["family"] == tiny.family and interval == raw["suggested_fora_interval"]
    assert heatmap.ndim == 4 and heatmap.shape[0] == 1 and heatmap.shape[-1] == 3
    assert 0.0 <= float(heatmap.min()) and float(heatmap.max()) <= 1.0

    patched = teacache(tiny.patcher, rel_l1_thresh=0.3, profile=profile)
    assert attached_engine(patched).policy.coefficients == tuple(raw["teacache_coefficients"])
    out, _ = sample_with_report(patched, tiny)
    assert torch.isfinite(out).all()


def test_profile_from_another_family_is_refused_with_the_reason(output_dir):
    flux, wan = tiny_models.tiny_flux(), tiny_models.tiny_wan()
    (patched,) = run_node(BlockProfiler, model=flux.patcher, profile_name="flux")
    tiny_models.sample(patched, flux, steps=STEPS)
    profile, _, _ = run_node(LoadCacheProfile, profile="flux.json")
    with pytest.raises(ProfileError, match="made on a flux model but this model is wan"):
        teacache(wan.patcher, profile=profile)


def test_missing_and_corrupt_profiles_say_what_to_do(output_dir):
    with pytest.raises(ProfileError, match="is not a profile in the profiles folder"):
        run_node(LoadCacheProfile, profile="nope.json")
    folder = output_dir / "dit_cache" / "profiles"
    folder.mkdir(parents=True)
    (folder / "broken.json").write_text("{not json")
    with pytest.raises(ProfileError, match="not valid JSON"):
        run_node(LoadCacheProfile, profile="broken.json")


def test_a_model_socket_without_a_diffusion_model_passes_through_unchanged_with_a_warning(caplog):
    import comfy.model_patcher

    foreign = comfy.model_patcher.ModelPatcher(torch.nn.Linear(2, 2), torch.device("cpu"), torch.device("cpu"))
    with caplog.at_level(logging.WARNING):
        for make in (fora, taylorseer):
            assert make(foreign) is foreign
        assert run_node(TeaCacheThreshold, model=foreign, rel_l1_thresh=0.4, coefficients="auto",
                        max_consecutive_reuse=0, profile=None, **WINDOW)[0] is foreign
        assert run_node(BlockProfiler, model=foreign, profile_name="x")[0] is foreign
        assert run_node(MagnitudeThreshold, model=foreign, threshold=0.1, max_skip=2, retention_ratio=0.2,
                        curve="auto", **WINDOW)[0] is foreign
    assert caplog.text.count("ModelPatcher without a diffusion model") == 5


def test_ltx2_caches_its_video_and_its_audio_block_by_block():
    """LTX-2's blocks pass (video, audio) pairs: both streams stand in on skipped steps, each as a
    per-block cache of that stream would give it, and the audio is cached, not passed through."""
    import comfy.utils

    ltx2 = tiny_models.tiny_ltx2()
    if ltx2 is None:
        pytest.skip("this ComfyUI has no LTX-2")
    out, report = sample_with_report(fora(ltx2.patcher, interval=3, warmup_steps=1), ltx2)
    computed = [s for s, a in enumerate(report.step_actions()) if a == "compute"]
    assert report.level == "block" and computed == [0, 1, 4, 7]
    reference = tiny_models.sample(per_block_cache(ltx2.patcher, set(computed), 0), ltx2, steps=STEPS, cfg=CFG)
    uncached = tiny_models.sample(ltx2.patcher, ltx2, steps=STEPS, cfg=CFG)
    shapes = [ltx2.latent_shape, ltx2.audio_shape]
    streams = zip(*(comfy.utils.unpack_latents(t, shapes) for t in (out, reference, uncached)))
    for cached_stream, reference_stream, uncached_stream in streams:   # video, then audio
        scale = float(reference_stream.abs().max())
        assert torch.allclose(cached_stream, reference_stream, rtol=1e-4, atol=1e-4 * scale)
        assert float((cached_stream - uncached_stream).abs().max()) > 1e-3 * scale


def test_a_second_cache_node_replaces_the_first_with_a_warning(caplog):
    flux = tiny_models.tiny_flux()
    with caplog.at_level(logging.WARNING):
        patched = teacache(fora(flux.patcher), rel_l1_thresh=0.0)
    assert "TeaCache replaces FORA attached earlier" in caplog.text
    reports = []
    attached_engine(patched).report_listeners.append(reports.append)
    with count_block_calls(flux) as counts:
        tiny_models.sample(patched, flux, steps=STEPS, cfg=3.0)
    assert [r.method for r in reports] == ["TeaCache"]
    assert counts == [STEPS] * len(counts)


def test_window_the_wrong_way_round_names_both_inputs():
    flux = tiny_models.tiny_flux()
    with pytest.raises(ValueError, match=r"start_percent \(0.8\) must not be after end_percent \(0.2\)"):
        fora(flux.patcher, start_percent=0.8, end_percent=0.2)


