"""cache_core/calibration/solver_choices.json is what scripts/make_solver_choices.py makes from the
committed solver benchmarks, its rule picks what it says, and a calibration reads its family's."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from cache_core.calibration import solver_choices
from cache_core.calibration.solver_choices import SolverChoice

ROOT = Path(__file__).resolve().parents[2]


def script():
    """scripts/make_solver_choices.py, loaded as a module (it needs no ComfyUI)."""
    if "make_solver_choices" not in sys.modules:
        spec = importlib.util.spec_from_file_location("make_solver_choices",
                                                      ROOT / "scripts" / "make_solver_choices.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["make_solver_choices"] = module
        spec.loader.exec_module(module)
    return sys.modules["make_solver_choices"]


def test_the_committed_json_is_what_the_script_makes_from_the_committed_tables():
    made = script().render({name: (ROOT / "bench" / "results" / name).read_text() for name in script().SOURCES})
    assert (ROOT / "cache_core" / "calibration" / "solver_choices.json").read_text() == made


def _table(rows: dict[str, dict[str, list[tuple[float, float]]]]) -> str:
    """A bench table: per family, per variant (bench's method name), (mean, worst) at 3x-6x."""
    text = "# solvers\n\n"
    for family, variants in rows.items():
        text += f"## {family}\n\n| method | setting | speedup | mean (dB) | worst prompt (dB) |\n|---|---|---:|---:|---:|\n"
        for method, cells in variants.items():
            for speedup, (mean, worst) in zip(("3x", "4x", "5x", "6x"), cells):
                text += f"| Calibrated, stand-ins {method} | {speedup} | 3.00x | {mean} | {worst} |\n"
    return text


BASE = [(30.0, 25.0)] * 4


def _chosen(variants: dict[str, list[tuple[float, float]]]) -> dict:
    table = _table({"flux": {"R12V": BASE, **variants}})
    return json.loads(script().render({"a_cfg1.md": table, "a_cfg4.md": table}))["families"]["flux"]


def test_the_variant_with_the_largest_target_gain_that_loses_nowhere_is_chosen():
    chosen = _chosen({"R12VH": BASE[:2] + [(30.0, 25.5)] * 2,
                      "R12V, residual gains": BASE[:2] + [(30.0, 25.8), (30.0, 25.0)],
                      "R12V, V steps rescaled": [(29.0, 25.0)] + BASE[:1] + [(31.0, 30.0)] * 2})
    assert chosen["variant"] == "R12VH"          # +0.5 x 2 speedups x 2 CFGs = +2.0
    assert chosen["considered"]["R12V+gains"]["target_worst_gain_db"] == 1.6
    assert not chosen["considered"]["R12V+rescaled"]["eligible"]      # -1.0 dB on the mean at 3x


def test_without_a_positive_gain_today_s_plans_stay():
    assert _chosen({"R12VP": [(30.0, 24.0)] * 4})["variant"] == "R12V"


def test_variants_parse_and_print_back():
    choice = SolverChoice.parse("R12VH+gains")
    assert choice == SolverChoice("R12VH", fit_residual_gains=True) and choice.variant == "R12VH+gains"
    assert choice.records_residuals and not SolverChoice.parse("R12V+rescaled").records_residuals
    with pytest.raises(ValueError, match="stand-in letters out of R12VPH"):
        SolverChoice.parse("R12X")
    with pytest.raises(ValueError, match=r"\+rescaled or \+gains"):
        SolverChoice.parse("R12V+faster")


def test_a_family_gets_its_measured_choice_and_an_unmeasured_one_today_s_plans():
    measured = json.loads((ROOT / "cache_core" / "calibration" / "solver_choices.json").read_text())["families"]
    previous = solver_choices.OVERRIDE
    try:
        solver_choices.OVERRIDE = None
        for family, chosen in measured.items():
            assert solver_choices.solver_choice(family).variant == chosen["variant"]
        assert solver_choices.solver_choice("sd3") == SolverChoice()
        solver_choices.OVERRIDE = SolverChoice("R12VP")
        assert solver_choices.solver_choice("flux") == SolverChoice("R12VP")
    finally:
        solver_choices.OVERRIDE = previous
