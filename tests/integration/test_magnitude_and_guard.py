"""Magnitude-Ratio Threshold and TaylorSeer's forecast guard, on every family: the schedules they
promise from a given curve, calibration from a real profile, and what the guard does."""
from __future__ import annotations

import math

import pytest
import torch

import tiny_models
from helpers import STEPS, WINDOW, computed_steps, count_block_calls, magnitude, reference, run_node, sample_with_report, taylorseer

from comfyui_dit_cache.cache_core.attachment.attach import attached_engine
from comfyui_dit_cache.cache_core.adapters import find_adapter
from comfyui_dit_cache.cache_core.profiles.curve_sources import generic_magnitude_curve
from comfyui_dit_cache.cache_core.policies import resample_ratios
from comfyui_dit_cache.cache_core.profiles.profile_io import ProfileError
from comfyui_dit_cache.cache_core.run.report import RunReport
from comfyui_dit_cache.nodes import BlockProfiler, LoadCacheProfile, MagnitudeThreshold


def curve_profile(family: str, ratios: list[float]) -> dict:
    """A profile as Load Cache Profile returns it, holding only a chosen ratio curve."""
    return {"name": "chosen", "family": family, "residual_magnitude_ratio": ratios}


# ---- the curve --------------------------------------------------------------------------------
def test_resampling_keeps_the_total_magnitude_change():
    published = (1.0, 1.21094, 1.11719, 1.07812, 1.0625, 1.03906, 1.03125, 1.03906, 1.02344, 1.03125, 1.02344,
                 0.98047, 1.01562, 1.00781, 1.0, 1.00781, 1.0, 1.00781, 1.0, 1.0, 0.99609, 0.99609, 0.98047,
                 0.98828, 0.96484, 0.95703, 0.93359, 0.89062)   # MagCache's FLUX curve
    assert resample_ratios(published, len(published)) == published
    for steps in (8, 20, 50):
        resampled = resample_ratios(published, steps)
        assert len(resampled) == steps and resampled[0] == 1.0
        assert math.prod(resampled) == pytest.approx(math.prod(published), rel=1e-9)
    doubled = resample_ratios((1.0,) + (1.1,) * 9, 19)   # each step half as long: sqrt of the ratio
    assert doubled[1:] == pytest.approx((math.sqrt(1.1),) * 18)


# ---- the policy on real models -------------------------------------------------------------------
def test_magnitude_threshold_zero_is_bit_identical(tiny, reference_outputs):
    out, report = sample_with_report(magnitude(tiny.patcher, threshold=0.0), tiny)
    assert torch.equal(out, reference(tiny, reference_outputs, steps=STEPS, cfg=3.0))
    assert report.full_steps == STEPS


def test_magnitude_accumulates_the_predicted_error(tiny):
    """Ratio 1.1 per step: one reuse costs |1-1.1| = 0.1, a second adds |1-1.21|: under 0.2 only
    one reuse fits between computes."""
    patched = magnitude(tiny.patcher, threshold=0.2, max_skip=5, profile=curve_profile(tiny.family, [1.1] * STEPS))
    with count_block_calls(tiny) as counts:
        out, report = sample_with_report(patched, tiny)
    assert computed_steps(report) == [0, 2, 4, 6, 8]
    assert counts == [5 * tiny.calls_per_step] * len(counts)
    assert torch.isfinite(out).all()


def test_magnitude_resamples_a_curve_of_another_step_count(tiny):
    """A 20-step curve of 1.1 on a 10-step run is 1.1^(19/9) = 1.22 per step: more than 0.2
    after one reuse, under 0.25."""
    profile = curve_profile(tiny.family, [1.1] * 20)
    _, strict = sample_with_report(magnitude(tiny.patcher, threshold=0.2, max_skip=5, profile=profile), tiny)
    _, loose = sample_with_report(magnitude(tiny.patcher, threshold=0.25, max_skip=5, profile=profile), tiny)
    assert strict.full_steps == STEPS
    assert computed_steps(loose) == [0, 2, 4, 6, 8]


def test_magnitude_max_skip_and_retention_bound_the_reuse(tiny):
    flat = curve_profile(tiny.family, [1.0] * STEPS)
    _, limited = sample_with_report(magnitude(tiny.patcher, threshold=1.0, max_skip=2, profile=flat), tiny)
    assert computed_steps(limited) == [0, 3, 6, 9]
    _, retained = sample_with_report(magnitude(tiny.patcher, threshold=1.0, max_skip=10, retention_ratio=0.5,
                                               profile=flat), tiny)
    assert computed_steps(retained) == [0, 1, 2, 3, 4]


def test_magnitude_with_the_family_preset_samples(tiny):
    adapter = find_adapter(tiny.patcher.model.diffusion_model)
    if not adapter.magnitude_presets:
        (patched,) = run_node(MagnitudeThreshold, model=tiny.patcher, threshold=0.3, max_skip=3, retention_ratio=0.0,
                              curve="auto", **WINDOW)
        assert attached_engine(patched).policy.ratios == generic_magnitude_curve()
    else:
        patched = magnitude(tiny.patcher, threshold=0.3, max_skip=3)
        assert attached_engine(patched).policy.ratios == adapter.magnitude_presets[0].ratios
    out, report = sample_with_report(patched, tiny)
    assert "reuse" in report.step_actions() and torch.isfinite(out).all()
    said = [n for n in report.notes if "a Block Profiler profile of this model" in n]
    assert len(said) == (0 if adapter.magnitude_presets else 1)


# ---- calibration from a profile ------------------------------------------------------------------
def test_magnitude_calibrated_from_a_profile_of_the_model(tiny, output_dir):
    (profiled,) = run_node(BlockProfiler, model=tiny.patcher, profile_name="mag")
    sample_with_report(profiled, tiny)
    profile, _, _ = run_node(LoadCacheProfile, profile="mag.json")
    measured = profile["residual_magnitude_ratio"]
    assert len(measured) == STEPS and measured[0] == 1.0
    assert all(r > 0 and math.isfinite(r) for r in measured) and any(abs(r - 1.0) > 1e-3 for r in measured)
    patched = magnitude(tiny.patcher, threshold=0.3, profile=profile)
    assert attached_engine(patched).policy.ratios == tuple(measured)
    out, _ = sample_with_report(patched, tiny)
    assert torch.isfinite(out).all()


def test_profiled_ratio_is_the_stack_residuals_magnitude_ratio(output_dir):
    """Checked against forward hooks on Wan's first and last block (batched CFG: one call a step)."""
    wan = tiny_models.tiny_wan()
    blocks = wan.patcher.model.diffusion_model.blocks
    inputs, magnitudes = [], []
    first = blocks[0].register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach().clone()))
    last = blocks[-1].register_forward_hook(
        lambda module, args, out: magnitudes.append(float((out - inputs[-1]).abs().mean())))
    try:
        (profiled,) = run_node(BlockProfiler, model=wan.patcher, profile_name="wan")
        sample_with_report(profiled, wan)
    finally:
        first.remove()
        last.remove()
    profile, _, _ = run_node(LoadCacheProfile, profile="wan.json")
    expected = [1.0] + [b / a for a, b in zip(magnitudes, magnitudes[1:])]
    assert profile["residual_magnitude_ratio"] == pytest.approx(expected, rel=1e-5)


def test_a_profile_without_ratios_asks_for_a_new_profile():
    flux = tiny_models.tiny_flux()
    with pytest.raises(ProfileError, match="no residual magnitude ratios .* profile the model again"):
        magnitude(flux.patcher, profile={"name": "old", "family": "flux"})
    with pytest.raises(ProfileError, match="made on a wan model but this model is flux"):
        magnitude(flux.patcher, profile=curve_profile("wan", [1.0] * STEPS))


@pytest.mark.parametrize("settings, message", [
    (dict(threshold=-0.1), "threshold must be between 0 and 2"),
    (dict(retention_ratio=1.0), r"retention_ratio must be in \[0, 1\)"),
])
def test_magnitude_settings_out_of_range_are_named(settings, message):
    flux = tiny_models.tiny_flux()
    with pytest.raises(ValueError, match=message):
        magnitude(flux.patcher, **settings)


# ---- the forecast guard ---------------------------------------------------------------------------
FORECAST_STEPS = [3, 4, 6, 7, 9]   # interval 3 after 2 warm-up steps, 10 steps


def test_a_guard_over_plain_reuse_changes_nothing_but_the_first_block(block_tiny):
    """Order 0 forecasts are the last residual, so a probe has nothing to rescale: accepted
    probes leave the output bit-identical to the unguarded run, with the first block alone
    computed on every step."""
    tiny = block_tiny
    plain, plain_report = sample_with_report(taylorseer(tiny.patcher, order=0), tiny)
    with count_block_calls(tiny) as counts:
        guarded, report = sample_with_report(taylorseer(tiny.patcher, order=0, guard_tolerance=10.0), tiny)
    assert torch.equal(guarded, plain)
    assert report.step_actions() == plain_report.step_actions() and report.fallbacks == 0
    calls = tiny.calls_per_step
    assert counts[0] == STEPS * calls and counts[1:] == [(STEPS - len(FORECAST_STEPS)) * calls] * (len(counts) - 1)
    assert "fallbacks" not in report.summary_line()


def test_an_accepted_probe_rescales_the_forecast(block_tiny):
    """Order 2: every forecast step is probed and accepted (tolerance 10) and its Taylor terms
    are scaled by what the first block followed, a number in [0, 1]; the schedule is the
    unguarded one, and the picture differs from it only where a scale is below 1."""
    tiny = block_tiny
    plain, plain_report = sample_with_report(taylorseer(tiny.patcher), tiny)
    guarded, report = sample_with_report(taylorseer(tiny.patcher, guard_tolerance=10.0), tiny)
    assert report.step_actions() == plain_report.step_actions() and report.fallbacks == 0
    assert len(report.forecast_scales) == len(FORECAST_STEPS) * tiny.calls_per_step
    assert all(0.0 <= s <= 1.0 for s in report.forecast_scales)
    assert torch.equal(guarded, plain) == all(s == 1.0 for s in report.forecast_scales)
    mean = sum(report.forecast_scales) / len(report.forecast_scales)
    assert f"forecast scale {mean:.2f}" in report.summary_line()


@pytest.mark.parametrize("family", ["flux", "wan", "hunyuan_video", "qwen_image", "sd3", "ltxv"])
def test_an_accepted_probe_scales_the_forecast_as_an_independent_guard_fits_it(family, tiny_cache):
    """The scales the guard fitted and the picture it made equal an independent guard's
    (guarded_reference.py: per block, the first block's least-squares scale of its own Taylor
    terms, every block forecast at that scale) on the same computed steps."""
    from guarded_reference import guarded_per_block_cache

    tiny = tiny_cache.setdefault(family, tiny_models.BUILDERS[family]())
    guarded, report = sample_with_report(taylorseer(tiny.patcher, guard_tolerance=10.0), tiny)
    reference_model = guarded_per_block_cache(tiny.patcher, set(computed_steps(report)), order=2)
    expected = tiny_models.sample(reference_model, tiny, steps=STEPS, cfg=3.0)
    scales = reference_model.fitted_scales
    assert len(scales) == len(report.forecast_scales) == len(FORECAST_STEPS) * tiny.calls_per_step
    assert report.forecast_scales == pytest.approx(scales, abs=1e-4)
    assert any(s < 0.999 for s in scales), scales   # a scale below 1: the guard acted
    unscaled, _ = sample_with_report(taylorseer(tiny.patcher), tiny)
    scale = float(expected.abs().max())
    assert float((unscaled - expected).abs().max()) > 1e-3 * scale   # the scales changed the picture
    assert torch.allclose(guarded, expected, rtol=1e-4, atol=1e-4 * scale)


def test_the_report_counts_forecasts_fitted_to_plain_reuse():
    """The mean scale alone hides runs of reuse; the summary says how many were fitted to 0."""
    report = RunReport("TaylorSeer", "flux", "guarded", total_steps=4, forecast_scales=[0.0, 0.004, 0.5, 1.0])
    assert "forecast scale 0.38 (2 of 4 at plain reuse)" in report.summary_line()
    report.forecast_scales = [0.5, 1.0]
    assert report.summary_line().endswith("forecast scale 0.75, est. 1.0x")


def test_a_guard_that_never_accepts_computes_everything_exactly(block_tiny, reference_outputs):
    """A fallback counts as a full compute, so the next step is a forecast again, and falls back:
    every step after the warm-up (0, 1, 2) is one fallback."""
    tiny = block_tiny
    fallbacks = STEPS - 3
    with count_block_calls(tiny) as counts:
        out, report = sample_with_report(
            taylorseer(tiny.patcher, guard_tolerance=1e-9), tiny)
    assert torch.equal(out, reference(tiny, reference_outputs, steps=STEPS, cfg=3.0))
    assert report.fallbacks == fallbacks and report.full_steps == STEPS
    assert counts == [STEPS * tiny.calls_per_step] * len(counts)
    assert f"{fallbacks} fallbacks" in report.summary_line()
    assert report.to_dict()["fallbacks"] == fallbacks


def test_guard_tolerance_out_of_range_is_named():
    flux = tiny_models.tiny_flux()
    with pytest.raises(ValueError, match="guard_tolerance must be between 0"):
        taylorseer(flux.patcher, guard_tolerance=-1.0)


def test_a_guard_cannot_probe_a_whole_model_cache_so_the_model_passes_through(caplog):
    """A whole-model cache has no first block to probe: the node says so and caches nothing."""
    import logging

    lumina = tiny_models.tiny_lumina2()
    with caplog.at_level(logging.WARNING):
        assert taylorseer(lumina.patcher, guard_tolerance=0.1) is lumina.patcher
    assert "cached as a whole model, which has no first block for the forecast guard to probe" in caplog.text
    assert taylorseer(lumina.patcher) is not lumina.patcher
