"""cache_core/speeds/speed_choices.json is what scripts/make_speed_choices.py makes from the committed
bench/results/quality.md, and the rule it applies picks what it says."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from cache_core.speeds import speed_choices

ROOT = Path(__file__).resolve().parents[2]


def script():
    """scripts/make_speed_choices.py, loaded as a module (it needs no ComfyUI)."""
    if "make_speed_choices" not in sys.modules:
        spec = importlib.util.spec_from_file_location("make_speed_choices", ROOT / "scripts" / "make_speed_choices.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["make_speed_choices"] = module
        spec.loader.exec_module(module)
    return sys.modules["make_speed_choices"]


def test_the_committed_json_is_what_the_script_makes_from_the_committed_table():
    made = script().render((ROOT / "bench" / "results" / "quality.md").read_text())
    assert (ROOT / "cache_core" / "speeds" / "speed_choices.json").read_text() == made


HEADER = ("| method | setting | computes | ideal | speedup | PSNR latent (dB) | PSNR pixels (dB) | per prompt (dB) "
          "| SSIM pixels |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n")


def table(rows: dict[str, list[tuple[str, str, float, float]]]) -> str:
    """A quality.md with (method, setting, computes, per-prompt PSNR) rows per family."""
    text = "# Quality\n\n"
    for family, family_rows in rows.items():
        text += f"## {family}\n\n{HEADER}| uncached |  | 1.00 | 1.00x | 1.00x | exact | exact | exact | 1.000 |\n"
        for method, setting, computes, psnr in family_rows:
            text += (f"| {method} | {setting} | {computes:.2f} | {1 / computes:.2f}x | 1.00x | 40.0 | 30.0 | {psnr} "
                     "| 0.900 |\n")
        text += "\n**a note** that is not a table.\n\n"
    return text


FORA_ONLY = [("FORA", "interval 2", 0.55, 31.0), ("FORA", "interval 3", 0.40, 26.0), ("FORA", "interval 4", 0.30, 20.0)]


def test_each_speed_takes_the_best_psnr_among_settings_that_reach_it():
    rows = [*FORA_ONLY, ("TeaCache-style", "thresh 0.4", 0.47, 33.0), ("TaylorSeer guarded", "interval 6, tol 0.1",
                                                                       0.45, 40.0)]
    made = script().choices(table({"flux": rows, "wan": FORA_ONLY, "hunyuan_video": FORA_ONLY}))
    flux = made["families"]["flux"]
    # 2x within 0.9: TeaCache 2.13x beats FORA 2 at 1.82x; the guarded TaylorSeer is no candidate
    assert (flux["Safe (~2x)"]["method"], flux["Safe (~2x)"]["setting"]) == ("TeaCache-style", "thresh 0.4")
    assert flux["Safe (~2x)"]["inputs"] == {"rel_l1_thresh": 0.4, "coefficients": "auto", "max_consecutive_reuse": 3}
    assert flux["Balanced (~2.5x)"]["setting"] == "interval 3" and flux["Balanced (~2.5x)"]["reached_target"]
    # interval 4 (3.33x) reaches 3.33 x 0.9
    assert flux["Fast (~3.3x)"]["setting"] == "interval 4" and flux["Fast (~3.3x)"]["reached_target"]


def test_the_general_choice_has_the_best_worst_rank_across_families():
    favours_teacache = [*FORA_ONLY, ("TeaCache-style", "thresh 0.4", 0.47, 35.0)]
    hates_teacache = [*FORA_ONLY, ("TeaCache-style", "thresh 0.4", 0.47, 10.0)]
    made = script().choices(table({"flux": favours_teacache, "wan": favours_teacache, "hunyuan_video": hates_teacache}))
    general = made["general"]["Safe (~2x)"]
    assert (general["method"], general["setting"], general["ranks"]) == (
        "FORA", "interval 2", {"flux": 2, "wan": 2, "hunyuan_video": 1})


def test_the_general_choice_without_preset_skips_threshold_methods():
    with_teacache = [*FORA_ONLY, ("TeaCache-style", "thresh 0.4", 0.47, 35.0)]
    made = script().choices(table({"flux": with_teacache, "wan": with_teacache, "hunyuan_video": with_teacache}))
    assert made["general"]["Safe (~2x)"]["method"] == "TeaCache-style"
    assert made["general_without_preset"]["Safe (~2x)"]["setting"] == "interval 2"


CHOICES = json.loads((ROOT / "cache_core" / "speeds" / "speed_choices.json").read_text())
NAMES = {"flux": "FLUX", "wan": "Wan2.1", "hunyuan_video": "HunyuanVideo"}


def test_a_reference_family_gets_its_own_measured_choice():
    choice = speed_choices.choose("wan", "Wan2.1", "Safe (~2x)", {"teacache", "magnitude"}, NAMES, CHOICES)
    entry = CHOICES["families"]["wan"]["Safe (~2x)"]
    assert (choice.method, choice.setting, choice.inputs) == (entry["method"], entry["setting"], entry["inputs"])
    assert "on the Wan2.1 reference model" in choice.note()


def test_an_unknown_speed_is_refused_by_name():
    with pytest.raises(ValueError, match="is not one of Safe"):
        speed_choices.choose("flux", "FLUX", "Ludicrous", set(), NAMES, CHOICES)
