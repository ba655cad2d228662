"""What the DiT Cache node runs for a named speed: read from speed_choices.json, which
scripts/make_speed_choices.py makes from the pack's own measurements (bench/results/quality.md),
so the choice is data a benchmark rerun updates, not a setting picked in code."""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHOICES_FILE = Path(__file__).with_name("speed_choices.json")
SOURCE = "bench/results/quality.md"
# The speed that runs a profile's calibrated plan, and the plan it takes: the one nearest this.
CALIBRATED = "Calibrated"
CALIBRATED_SPEEDUP = 4.0


@dataclass(frozen=True)
class SpeedChoice:
    """One named speed resolved for one family: the node whose setting runs, its inputs, and the
    sentence the run report says of it."""
    speed: str
    method: str
    setting: str
    node: str
    inputs: dict[str, Any]
    reason: str

    def note(self) -> str:
        """The run report's line (its method is "DiT Cache"): what runs and why."""
        return f"{short_name(self.speed)} runs {self.method} {self.setting}: {self.reason}"


@functools.cache
def load_choices(path: Path = CHOICES_FILE) -> dict[str, Any]:
    return json.loads(path.read_text())


def speed_names(choices: dict[str, Any] | None = None) -> list[str]:
    """The named speeds, fastest last, as the JSON lists them."""
    return list((choices or load_choices())["speeds"])


def short_name(speed: str) -> str:
    """"Balanced (~2.5x)" -> "Balanced"."""
    return speed.split(" (")[0]


def target_label(choices: dict[str, Any], speed: str) -> str:
    return f"~{choices['speeds'][speed]:g}x"


def choose(family: str, display_name: str, speed: str, presets: set[str], family_names: dict[str, str],
           choices: dict[str, Any] | None = None) -> SpeedChoice:
    """The setting for `speed` on `family`: its own measured best, or for a family without
    reference measurements the general one; where that needs a preset (`presets`: the kinds
    the family has, "teacache" / "magnitude") the family lacks, the general one among settings
    that need none."""
    choices = choices or load_choices()
    if speed not in choices["speeds"]:
        raise ValueError(f"speed {speed!r} is not one of {', '.join(speed_names(choices))}")
    own = choices["families"].get(family, {}).get(speed)
    if own:
        entry, reason = own, _measured_reason(choices, speed, own, display_name)
    else:
        entry = choices["general"][speed]
        general = _general_reason(choices, speed, entry, family_names)
        reason = f"no reference measurements for {display_name}, so {general}"
    if entry["needs_preset"] and entry["needs_preset"] not in presets:
        missing = (f"{entry['method']} {entry['setting']} needs a published {entry['needs_preset']} preset, which "
                   f"{display_name} lacks")
        entry = choices["general_without_preset"][speed]
        reason = f"{missing}, so {_general_reason(choices, speed, entry, family_names, ' needing no preset')}"
    return SpeedChoice(speed, entry["method"], entry["setting"], entry["node"], dict(entry["inputs"]), reason)


def _measured_reason(choices: dict[str, Any], speed: str, row: dict[str, Any], display_name: str) -> str:
    reached = "" if row["reached_target"] else " (no setting reached it: the fastest measured)"
    return (f"the best per-prompt PSNR at {target_label(choices, speed)}{reached} on the {display_name} reference "
            f"model ({row['psnr_per_prompt_db']:.1f} dB at {row['ideal_speedup']:.2f}x ideal, {SOURCE})")


def _general_reason(choices: dict[str, Any], speed: str, entry: dict[str, Any], family_names: dict[str, str],
                    among: str = "") -> str:
    figures = ", ".join(f"{family_names.get(f, f)} {p['psnr_per_prompt_db']:.1f} dB"
                        for f, p in entry["per_family"].items())
    return (f"the setting{among} at {target_label(choices, speed)} whose worst per-prompt PSNR rank over the "
            f"reference models is best (worst rank {entry['worst_rank']}: {figures}; {SOURCE})")
