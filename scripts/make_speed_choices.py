"""Writes cache_core/speeds/speed_choices.json, what the DiT Cache node (nodes/speed.py) runs for each
named speed, from the pack's own measurements in bench/results/quality.md.

    .venv/bin/python scripts/make_speed_choices.py

The choice is made here, from the committed table, and not in the node's code, so that a new
`make bench` changes what the node picks by rerunning this script, and a reader can see which
row each choice came from. Only settings a node runs without a profile are candidates (FORA,
TeaCache-style on the family's preset, Magnitude-Ratio on the preset curve, TaylorSeer without
the guard), with the node inputs bench/quality.py measured them with.

Per reference family and named speed: among the rows whose ideal speedup (1 / computes) is at
least TOLERANCE times the speed's target, the one with the best per-prompt PSNR; if no row gets
there, the fastest. "general" (families without reference measurements): the setting that is
eligible on every reference family and whose worst PSNR rank there is best.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "bench" / "results" / "quality.md"
TARGET = ROOT / "cache_core" / "speeds" / "speed_choices.json"

# The named speeds and their ideal-speedup targets.
SPEEDS = {"Safe (~2x)": 2.0, "Balanced (~2.5x)": 2.5, "Fast (~3.3x)": 3.33}
# A row counts as reaching a target at this fraction of it (20 steps cannot give every ratio).
TOLERANCE = 0.9
REFERENCE_FAMILIES = ("flux", "wan", "hunyuan_video")
EXACT = "exact"


@dataclass(frozen=True)
class Method:
    """A quality.md method the node may run: its node, how the table's setting label maps to the
    node's inputs, the inputs bench/quality.py fixed, and the preset it needs (None: none)."""
    label: str
    node: str
    setting: str            # the one input the label names ("interval 3" -> interval=3)
    fixed: dict[str, Any]
    needs_preset: str | None


# bench/quality.py `settings()`: the same inputs (tests/integration/test_speed_node.py checks it).
METHODS = {m.label: m for m in (
    Method("FORA", "DiTCacheApplyFORA", "interval", {"warmup_steps": 1}, None),
    Method("TeaCache-style", "DiTCacheTeaCacheThreshold", "rel_l1_thresh",
           {"coefficients": "auto", "max_consecutive_reuse": 3}, "teacache"),
    Method("Magnitude (preset curve)", "DiTCacheMagnitudeThreshold", "threshold",
           {"max_skip": 3, "retention_ratio": 0.2, "curve": "auto"}, "magnitude"),
    Method("TaylorSeer", "DiTCacheTaylorSeerForecast", "interval",
           {"warmup_steps": 3, "order": 2, "guard_tolerance": 0.0}, None),
)}


def parse_figure(text: str) -> float:
    """A table cell as a number: "1.82x" -> 1.82, "exact" -> inf."""
    text = text.strip()
    return math.inf if text == EXACT else float(text.rstrip("x"))


def table_rows(markdown: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every family's table, keyed by the `## family` heading, each row a dict of
    the header's columns plus its source line."""
    tables: dict[str, list[dict[str, Any]]] = {}
    family, header = None, None
    for line in markdown.splitlines():
        if line.startswith("## "):
            family, header = line[3:].strip(), None
        elif family and line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header = cells
            elif not set(line) <= set("|-: "):
                tables.setdefault(family, []).append({**dict(zip(header, cells)), "line": line.strip()})
    return tables


def setting_value(text: str) -> int | float:
    """The number of a setting label ("interval 3", "thresh 0.4")."""
    found = re.fullmatch(r"[a-z]+ ([0-9.]+)", text)
    if not found:
        raise ValueError(f"setting {text!r} is not '<name> <number>'")
    number = float(found[1])
    return int(number) if number.is_integer() and "." not in found[1] else number


def candidate(row: dict[str, Any]) -> dict[str, Any] | None:
    """A row the node could run, with its node inputs and figures; None for any other method."""
    method = METHODS.get(row["method"])
    if method is None:
        return None
    return {"method": method.label, "setting": row["setting"], "node": method.node,
            "inputs": {method.setting: setting_value(row["setting"]), **method.fixed},
            "needs_preset": method.needs_preset, "computes": parse_figure(row["computes"]),
            "ideal_speedup": parse_figure(row["ideal"]), "psnr_per_prompt_db": parse_figure(row["per prompt (dB)"]),
            "psnr_pixels_db": parse_figure(row["PSNR pixels (dB)"]), "ssim_pixels": parse_figure(row["SSIM pixels"]),
            "row": row["line"]}


def eligible(candidates: list[dict[str, Any]], target: float) -> list[dict[str, Any]]:
    """The candidates that reach `target` (within TOLERANCE), best per-prompt PSNR first; if
    none does, the fastest (ties: the better PSNR)."""
    reaching = [c for c in candidates if c["ideal_speedup"] >= TOLERANCE * target]
    if reaching:
        return sorted(reaching, key=lambda c: -c["psnr_per_prompt_db"])
    return sorted(candidates, key=lambda c: (-c["ideal_speedup"], -c["psnr_per_prompt_db"]))[:1]


def family_choice(candidates: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """The best eligible candidate, saying whether it reached the target."""
    best = eligible(candidates, target)[0]
    return {**best, "reached_target": best["ideal_speedup"] >= TOLERANCE * target}


def general_choice(by_family: dict[str, list[dict[str, Any]]], target: float,
                   preset_free: bool = False) -> dict[str, Any]:
    """The setting eligible on every reference family whose worst PSNR rank among that family's
    eligible settings is best (ties: the better mean rank, then the better mean PSNR)."""
    ranks: dict[tuple[str, str], dict[str, int]] = {}
    figures: dict[tuple[str, str], dict[str, dict]] = {}
    for family, candidates in by_family.items():
        pool = [c for c in candidates if not (preset_free and c["needs_preset"])]
        for rank, c in enumerate(eligible(pool, target), start=1):
            ranks.setdefault((c["method"], c["setting"]), {})[family] = rank
            figures.setdefault((c["method"], c["setting"]), {})[family] = c
    everywhere = [key for key, r in ranks.items() if len(r) == len(by_family)]
    if not everywhere:
        raise ValueError(f"no setting reaches {target:g}x on every reference family")

    def order(key: tuple[str, str]) -> tuple[float, float, float]:
        values = ranks[key].values()
        mean_psnr = sum(c["psnr_per_prompt_db"] for c in figures[key].values()) / len(values)
        return max(values), sum(values) / len(values), -mean_psnr

    best = min(everywhere, key=order)
    first = next(iter(figures[best].values()))
    keep = ("method", "setting", "node", "inputs", "needs_preset")
    return {**{k: first[k] for k in keep}, "worst_rank": max(ranks[best].values()), "ranks": ranks[best],
            "per_family": {f: {k: c[k] for k in ("ideal_speedup", "psnr_per_prompt_db", "row")}
                           for f, c in figures[best].items()}}


def choices(markdown: str) -> dict[str, Any]:
    """The whole speed_choices.json content, from quality.md's text."""
    tables = table_rows(markdown)
    by_family = {f: [c for c in map(candidate, tables[f]) if c is not None] for f in REFERENCE_FAMILIES}
    return {
        "made_by": "scripts/make_speed_choices.py from bench/results/quality.md; do not edit by hand",
        "source": "bench/results/quality.md",
        "rule": f"per family and speed: among the settings whose ideal speedup is at least {TOLERANCE} x the "
                "target, the best per-prompt PSNR; if none reaches it, the fastest",
        "general_rule": "families without reference measurements: among the settings that reach the target on "
                        "every reference family, the one whose worst per-prompt PSNR rank there is best (ties: "
                        "the better mean rank, then the better mean PSNR); general_without_preset: the same among "
                        "settings that need no published preset (FORA, TaylorSeer)",
        "tolerance": TOLERANCE,
        "speeds": SPEEDS,
        "families": {f: {s: family_choice(by_family[f], t) for s, t in SPEEDS.items()} for f in REFERENCE_FAMILIES},
        "general": {s: general_choice(by_family, t) for s, t in SPEEDS.items()},
        "general_without_preset": {s: general_choice(by_family, t, preset_free=True) for s, t in SPEEDS.items()},
    }


def render(markdown: str) -> str:
    """The file's text (stable order, so a rerun on the same table changes nothing)."""
    return json.dumps(choices(markdown), indent=1, allow_nan=False) + "\n"


def main() -> None:
    TARGET.write_text(render(SOURCE.read_text()))
    print(f"wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
