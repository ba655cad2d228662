"""DiT Cache (the one node for people who do not want to tune): each named speed runs what the
pack's benchmarks measured best (cache_core/speeds/speed_choices.json), exactly as the chosen node
would, and says so; 'Calibrated' runs a profile's plan nearest 4x, and without a profile stops
with the fix."""
from __future__ import annotations

import sys

import pytest
import torch

import tiny_models
from helpers import ROOT, WINDOW, run_node, sample_with_report
from tiny_profiles import profile_of

from comfyui_dit_cache.cache_core.speeds import speed_choices
from comfyui_dit_cache.cache_core.profiles.profile_io import ProfileError
from comfyui_dit_cache.nodes import NODE_LIST, CalibratedCache, DiTCacheSpeed
from comfyui_dit_cache.nodes import speed as speed_node

CHOICES = speed_choices.load_choices()
SPEEDS = speed_choices.speed_names()
NODES = {cls.GET_SCHEMA().node_id: cls for cls in NODE_LIST}


@pytest.fixture(scope="module")
def flux():
    return tiny_models.tiny_flux()


@pytest.fixture(scope="module")
def sd3():
    """A family without reference measurements (and without published presets)."""
    return tiny_models.tiny_sd3()


def dit_cache(tiny, speed: str, **inputs):
    return run_node(DiTCacheSpeed, model=tiny.patcher, speed=speed, cache_device="model device", **inputs)[0]


def chosen_node_output(tiny, entry: dict) -> torch.Tensor:
    """What the node the JSON names samples with the JSON's inputs."""
    (patched,) = run_node(NODES[entry["node"]], model=tiny.patcher, **entry["inputs"], **WINDOW)
    return sample_with_report(patched, tiny)[0]


def test_the_speeds_are_the_jsons_plus_calibrated():
    options = DiTCacheSpeed.GET_SCHEMA().inputs[1].options
    assert options == ["Safe (~2x)", "Balanced (~2.5x)", "Fast (~3.3x)", "Calibrated"]
    assert CHOICES["speeds"] == {"Safe (~2x)": 2.0, "Balanced (~2.5x)": 2.5, "Fast (~3.3x)": 3.33}


@pytest.mark.parametrize("speed", SPEEDS)
def test_on_flux_each_speed_runs_the_measured_best_as_its_node_would(flux, speed):
    entry = CHOICES["families"]["flux"][speed]
    out, report = sample_with_report(dit_cache(flux, speed), flux)
    assert torch.equal(out, chosen_node_output(flux, entry))
    assert report.method == "DiT Cache"
    short = speed.split(" (")[0]
    assert report.notes == [f"{short} runs {entry['method']} {entry['setting']}: the best per-prompt PSNR at "
                            f"~{CHOICES['speeds'][speed]:g}x on the FLUX reference model "
                            f"({entry['psnr_per_prompt_db']:.1f} dB at {entry['ideal_speedup']:.2f}x ideal, "
                            "bench/results/quality.md)"]


def test_flux_balanced_is_fora_interval_3_from_the_committed_table(flux):
    """The choice the committed quality.md makes: FORA interval 3 (2.50x ideal, 25.9 dB per prompt)."""
    _, report = sample_with_report(dit_cache(flux, "Balanced (~2.5x)"), flux)
    assert report.settings == "FORA interval=3 warmup=1"
    assert "Balanced runs FORA interval 3: the best per-prompt PSNR at ~2.5x on the FLUX reference model (25.9 dB" in \
        report.notes[0]


@pytest.mark.parametrize("speed", SPEEDS)
def test_a_family_without_measurements_runs_the_general_choice(sd3, speed):
    """SD3 has no reference measurements and no published preset: the general choice, or, where
    that needs a preset, the general choice among settings needing none."""
    entry = CHOICES["general"][speed]
    lacks_preset = entry["needs_preset"] is not None
    if lacks_preset:
        entry = CHOICES["general_without_preset"][speed]
    out, report = sample_with_report(dit_cache(sd3, speed), sd3)
    assert torch.equal(out, chosen_node_output(sd3, entry))
    note = report.notes[0]
    assert note.startswith(f"{speed.split(' (')[0]} runs {entry['method']} {entry['setting']}: ")
    assert ("which SD3 / SD3.5 lacks" in note) == lacks_preset
    assert "worst per-prompt PSNR rank over the reference models is best" in note and "FLUX" in note


def test_a_general_choice_needing_a_preset_the_family_lacks_falls_back_and_says_so(sd3, monkeypatch):
    """SD3 has no TeaCache polynomial: were the general choice TeaCache-style, the node would run
    the general choice among settings needing no preset."""
    teacache = {"method": "TeaCache-style", "setting": "thresh 0.4", "node": "DiTCacheTeaCacheThreshold",
                "inputs": {"rel_l1_thresh": 0.4, "coefficients": "auto", "max_consecutive_reuse": 3},
                "needs_preset": "teacache", "worst_rank": 1, "per_family": {}}
    choices = {**CHOICES, "general": {**CHOICES["general"], "Safe (~2x)": teacache}}
    monkeypatch.setattr(speed_node, "choose", lambda *args, **kw: speed_choices.choose(*args, choices=choices, **kw))
    fallback = CHOICES["general_without_preset"]["Safe (~2x)"]
    out, report = sample_with_report(dit_cache(sd3, "Safe (~2x)"), sd3)
    assert torch.equal(out, chosen_node_output(sd3, fallback))
    assert report.notes[0].startswith(f"Safe runs {fallback['method']} {fallback['setting']}: TeaCache-style thresh "
                                      "0.4 needs a published teacache preset, which SD3 / SD3.5 lacks, so the "
                                      "setting needing no preset at ~2x")


def test_calibrated_without_a_profile_stops_with_the_fix(flux):
    with pytest.raises(ProfileError, match=r"'Calibrated' needs a calibrated profile of this model: run the Block "
                                           r"Profiler with calibrate_speedups"):
        dit_cache(flux, "Calibrated")


def test_calibrated_runs_the_profiles_plan_nearest_4x_as_calibrated_cache_would(flux):
    plans = [{"speedup": 2.5, "computes": 4, "plan": "CCRRCRRCRR", "psnr_worst": 30.0},
             {"speedup": 5.0, "computes": 2, "plan": "CCRRRRRRRR", "psnr_worst": 25.0}]
    profile = {**profile_of(flux), "calibration": {"cases": 1, "batch": 1, "plans": plans}}
    out, report = sample_with_report(dit_cache(flux, "Calibrated", profile=profile), flux)
    (calibrated,) = run_node(CalibratedCache, model=flux.patcher, profile=profile, speedup=5.0,
                             cache_device="model device")
    assert torch.equal(out, sample_with_report(calibrated, flux)[0])
    assert [i for i, a in enumerate(report.step_actions()) if a == "compute"] == [0, 1]
    assert report.notes == ["Calibrated runs the plan profile 'tiny' calibrated for 5x (its nearest to 4x), as "
                            "Calibrated Cache would"]


def test_calibrated_with_a_profile_without_plans_names_the_fix(flux):
    with pytest.raises(ProfileError, match="no calibrated plans; profile the model again with the Block Profiler's "
                                           "calibrate_speedups set"):
        dit_cache(flux, "Calibrated", profile=profile_of(flux))


def test_a_named_speed_says_it_does_not_use_a_connected_profile(flux):
    _, report = sample_with_report(dit_cache(flux, "Safe (~2x)", profile=profile_of(flux)), flux)
    assert report.notes[0].endswith("; the connected profile is used only by 'Calibrated'")


def test_the_choices_run_the_inputs_the_benchmark_measured():
    """Each candidate method's node inputs in make_speed_choices.py are bench/quality.py's."""
    sys.path.insert(0, str(ROOT / "bench"))
    import make_speed_choices
    import quality

    measured = {(method, label): inputs for method, label, _, inputs in quality.settings("flux", profile=None)}
    for method in make_speed_choices.METHODS.values():
        rows = [(label, inputs) for (m, label), inputs in measured.items() if m == method.label]
        assert rows, method.label
        for label, inputs in rows:
            expected = {k: v for k, v in inputs.items() if k not in WINDOW and k != "profile"}
            assert expected == {method.setting: make_speed_choices.setting_value(label), **method.fixed}, label
