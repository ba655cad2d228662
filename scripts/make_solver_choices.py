"""Writes cache_core/calibration/solver_choices.json from the pack's own measurements of the
papers' solvers (bench/results/calibrated_solvers_cfg{1,4}.md, calibrated_hyca_cfg{1,4}.md): per
reference family, which of the measured solver variants its calibrations use.

The rule (RULE below): a variant is eligible on a family where, against today's plans (`R12V`)
at every speedup (3x-6x) and both CFGs, it loses no more than LOSS_TOLERANCE_DB on the mean or the
worst prompt; among the eligible ones the family gets the one with the largest gain on the worst
prompt at 5x and 6x summed over both CFGs (the issue's target cells), if that gain is positive;
else `R12V`.

    .venv/bin/python scripts/make_solver_choices.py
"""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SOURCES = ("calibrated_solvers_cfg1.md", "calibrated_solvers_cfg4.md", "calibrated_hyca_cfg1.md",
           "calibrated_hyca_cfg4.md")
OUT = ROOT / "cache_core" / "calibration" / "solver_choices.json"
BASE = "R12V"
SPEEDUPS = ("3x", "4x", "5x", "6x")
TARGET_SPEEDUPS = ("5x", "6x")
CFGS = ("1", "4")
LOSS_TOLERANCE_DB = 0.5
RULE = (f"per family: among the variants that lose at most {LOSS_TOLERANCE_DB} dB against {BASE} on the mean and the "
        "worst prompt at every speedup 3x-6x at CFG 1 and 4, the one with the largest gain on the worst prompt at 5x "
        f"and 6x summed over both CFGs, if positive; else {BASE}")
ROW = re.compile(r"^\| Calibrated, stand-ins (?P<method>[^|]+?) \| (?P<speedup>\d+x) \| [\d.]+x \| "
                 r"(?P<mean>-?[\d.]+) \| (?P<worst>-?[\d.]+) \|$")


def variant_of(method: str) -> str:
    """"R12V, V steps rescaled" -> "R12V+rescaled", "R12V, residual gains" -> "R12V+gains"."""
    letters, *rest = [part.strip() for part in method.split(",")]
    return letters + ("+rescaled" if "V steps rescaled" in rest else "") + ("+gains" if "residual gains" in rest else "")


def measurements(tables: dict[str, str]) -> dict[tuple[str, str], dict[tuple[str, str], tuple[float, float]]]:
    """(family, variant) -> (CFG, speedup) -> (mean, worst), from every source table (its file
    name, whose `cfg<N>` says the CFG -> its text)."""
    found: dict = {}
    for name, text in tables.items():
        cfg = re.search(r"cfg(\d+)", name).group(1)
        family = None
        for line in text.splitlines():
            if line.startswith("## "):
                family = line[3:].strip()
            match = ROW.match(line)
            if match and family:
                cells = found.setdefault((family, variant_of(match["method"])), {})
                cells[(cfg, match["speedup"])] = (float(match["mean"]), float(match["worst"]))
    return found


def choose(found: dict) -> dict[str, dict]:
    families = sorted({family for family, _ in found})
    choices = {}
    for family in families:
        base = found.get((family, BASE), {})
        cells = [(cfg, speedup) for cfg in CFGS for speedup in SPEEDUPS]
        best, best_gain, considered = BASE, 0.0, {}
        for (other_family, variant), measured in sorted(found.items()):
            if other_family != family or variant == BASE or any(c not in measured or c not in base for c in cells):
                continue
            losses = [min(measured[c][k] - base[c][k] for k in (0, 1)) for c in cells]
            gain = sum(measured[(cfg, s)][1] - base[(cfg, s)][1] for cfg in CFGS for s in TARGET_SPEEDUPS)
            eligible = min(losses) >= -LOSS_TOLERANCE_DB
            considered[variant] = {"target_worst_gain_db": round(gain, 2), "largest_loss_db": round(max(0.0, -min(losses)), 2),
                                   "eligible": eligible}
            if eligible and gain > best_gain:
                best, best_gain = variant, gain
        choices[family] = {"variant": best, "target_worst_gain_db": round(best_gain, 2), "considered": considered}
    return choices


def render(tables: dict[str, str]) -> str:
    """The JSON the pack reads, from the source tables (file name -> text)."""
    return json.dumps({"made_by": "scripts/make_solver_choices.py; do not edit by hand",
                       "sources": [f"bench/results/{name}" for name in tables], "rule": RULE,
                       "families": choose(measurements(tables))}, indent=1) + "\n"


def main() -> None:
    made = render({name: (RESULTS / name).read_text() for name in SOURCES})
    OUT.write_text(made)
    for family, chosen in json.loads(made)["families"].items():
        print(f"{family}: {chosen['variant']} (worst prompt at 5x and 6x, both CFGs: "
              f"{chosen['target_worst_gain_db']:+.1f} dB summed)")
        for variant, seen in chosen["considered"].items():
            print(f"    {variant}: {seen}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
