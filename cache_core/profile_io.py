"""Saving, listing and loading Block Profiler profiles (JSON), with errors that say what is
wrong with a file and how to get a good one."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from .containment import GraphError
from .profiler import PROFILE_FORMAT

REQUIRED_KEYS = ("format", "family", "blocks", "steps", "output_rel_l1", "teacache_coefficients")


class ProfileError(GraphError):
    """A profile file that cannot be used."""


def safe_profile_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip()).strip("._")
    if not cleaned:
        raise ProfileError(f"profile_name {name!r} has no usable characters; use letters, digits, '_', '-' or '.'")
    return cleaned


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    return value


def save_profile(profile: dict[str, Any], directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{safe_profile_name(name)}.json"
    path.write_text(json.dumps(_json_ready(profile), indent=1))
    return path


def list_profiles(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.glob("*.json"))


def load_profile(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ProfileError(f"profile file {path} does not exist; run a workflow with the Block Profiler node first")
    try:
        profile = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ProfileError(f"profile file {path.name} is not valid JSON ({err}); delete it and profile again") from err
    if not isinstance(profile, dict) or profile.get("format") != PROFILE_FORMAT:
        raise ProfileError(f"{path.name} is not a DiT Cache profile (expected format {PROFILE_FORMAT!r}); profile again")
    missing = [k for k in REQUIRED_KEYS if k not in profile]
    if missing:
        raise ProfileError(f"profile {path.name} lacks {', '.join(missing)}; profile again with the Block Profiler")
    profile["name"] = path.stem
    return profile


def check_profile_family(profile: dict[str, Any], family: str) -> None:
    """A profile calibrates one model; on another family its numbers mean nothing."""
    if profile.get("family") != family:
        raise ProfileError(
            f"profile '{profile.get('name', '?')}' was made on a {profile.get('family')} model but this model is "
            f"{family}; profile this model with the Block Profiler, or disconnect the profile")


def magnitude_ratios(profile: dict[str, Any]) -> tuple[float, ...]:
    """The per-step residual magnitude ratios of a profile (the first step, which has no
    previous one, counts as 1)."""
    values = profile.get("residual_magnitude_ratio")
    if not values:
        raise ProfileError(f"profile '{profile.get('name', '?')}' has no residual magnitude ratios (made by an older "
                           "version of DiT Cache); profile the model again with the Block Profiler")
    ratios = tuple(float(v) if v is not None and math.isfinite(v) and v > 0 else 1.0 for v in values)
    if len(ratios) < 2:
        raise ProfileError(f"profile '{profile.get('name', '?')}' covers {len(ratios)} step; profile again with 10 or "
                           "more steps")
    return ratios


def calibrated_plan(profile: dict[str, Any], speedup: float, family: str) -> dict[str, Any]:
    """The profile's calibrated plan for `speedup` (within 0.25x of a calibrated one), or a
    ProfileError naming the speedups the profile was calibrated for and how to add one."""
    check_profile_family(profile, family)
    name = profile.get("name", "?")
    plans = (profile.get("calibration") or {}).get("plans") or []
    if not plans:
        raise ProfileError(f"profile '{name}' has no calibrated plans; profile the model again with the Block "
                           "Profiler's calibrate_speedups set (e.g. '4, 6'), then load that profile")
    nearest = min(plans, key=lambda p: abs(p["speedup"] - speedup))
    if abs(nearest["speedup"] - speedup) > 0.25:
        calibrated = ", ".join(f"{p['speedup']:g}" for p in plans)
        raise ProfileError(f"profile '{name}' is calibrated for speedup {calibrated}, not {speedup:g}; pick one of "
                           f"those, or profile again with {speedup:g} in the Block Profiler's calibrate_speedups")
    if len(nearest["plan"]) != profile.get("steps"):
        raise ProfileError(f"profile '{name}' holds a damaged plan ({len(nearest['plan'])} letters for "
                           f"{profile.get('steps')} steps); profile again")
    return nearest
