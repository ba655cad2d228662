"""Saving, listing and loading Block Profiler profiles (JSON), with errors that say what is
wrong with a file and how to get a good one."""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ..support.containment import GraphError
from ..policies.base import SchedulePart
from .profile_schema import PROFILE_FORMAT, SchemaError, check_profile

class ProfileError(GraphError):
    """A profile file that cannot be used."""


# A profile is a few hundred KiB at most (a 200-step heatmap of 60 blocks with calibrated plans):
# anything larger is not one, and is never read whole.
MAX_PROFILE_BYTES = 8 * 1024 * 1024
MAX_NAME_LENGTH = 100


def safe_profile_name(name: str) -> str:
    """The file stem a profile_name saves as: checked when the node runs, before any sampling."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip()).strip("._")
    if not cleaned:
        raise ProfileError(f"profile_name {name!r} has no usable characters; use letters, digits, '_', '-' or '.'")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise ProfileError(f"profile_name is {len(cleaned)} characters long; use at most {MAX_NAME_LENGTH}")
    return cleaned


def resolve_profile(directory: Path, choice: str) -> Path:
    """The profile file `choice` names in `directory`: a listed `.json` file name, no path, and
    resolving inside the folder (a symlink out of it is refused). The error says the same for a
    missing file and a path outside the folder, so that nothing can be learnt about other files."""
    refused = ProfileError(f"{choice!r} is not a profile in the profiles folder (output/dit_cache/profiles/); pick "
                           "one from the list, or refresh the page after a profiling run")
    if not isinstance(choice, str) or choice != Path(choice).name or not choice.endswith(".json"):
        raise refused
    path = directory / choice
    try:
        inside = path.resolve(strict=True).parent == directory.resolve(strict=True)
    except (OSError, RuntimeError):
        raise refused from None
    if not inside or not path.is_file():
        raise refused
    return path


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    return value


def save_profile(profile: dict[str, Any], directory: Path, name: str) -> tuple[Path, bool]:
    """Write the profile as `<name>.json` in `directory`; the path and whether it replaced a file."""
    path = directory / f"{safe_profile_name(name)}.json"
    replaced = write_file_in(directory, path.name, json.dumps(_json_ready(profile), indent=1).encode())
    return path, replaced


def write_file_in(directory: Path, file_name: str, data: bytes) -> bool:
    """Write `data` as `directory/file_name` without following a symlink there: a temporary file
    beside it is renamed over the name, which replaces a link itself, never its target. Whether a
    file (or link) of that name was replaced."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / file_name
    replaced = target.is_symlink() or target.exists()
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".saving-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return replaced


def list_profiles(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    listed = []
    for path in sorted(directory.glob("*.json")):
        try:
            resolve_profile(directory, path.name)
        except ProfileError:
            continue
        listed.append(path.name)
    return listed


def load_profile(path: Path) -> dict[str, Any]:
    """A profile read from `path` (resolved by `resolve_profile`): at most MAX_PROFILE_BYTES are read."""
    with path.open("rb") as source:
        raw = source.read(MAX_PROFILE_BYTES + 1)
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileError(f"{path.name} is larger than {MAX_PROFILE_BYTES // (1024 * 1024)} MiB, far more than a "
                           "profile; it is not a DiT Cache profile")
    try:
        profile = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise ProfileError(f"profile file {path.name} is not valid JSON ({err}); delete it and profile again") from err
    if not isinstance(profile, dict) or profile.get("format") != PROFILE_FORMAT:
        raise ProfileError(f"{path.name} is not a DiT Cache profile (expected format {PROFILE_FORMAT!r}); profile again")
    try:
        check_profile(profile)
    except SchemaError as err:
        raise ProfileError(f"profile {path.name} is damaged: {err}; profile again with the Block Profiler") from None
    profile["name"] = path.stem
    return profile


def check_profile_family(profile: dict[str, Any], family: str) -> None:
    """A profile calibrates one model; on another family its numbers mean nothing."""
    if profile.get("family") != family:
        raise ProfileError(
            f"profile '{profile.get('name', '?')}' was made on a {profile.get('family')} model but this model is "
            f"{family}; profile this model with the Block Profiler, or disconnect the profile")


def profiled_part(profile: dict[str, Any]) -> SchedulePart | None:
    """The part of a schedule a profile covers, when it is not a whole schedule (None)."""
    schedule = profile.get("schedule")
    if not schedule:
        return None
    first = schedule["first_step"]
    part = SchedulePart(first, first + profile["steps"], schedule["total_steps"])
    return None if part.is_whole else part


def block_changes(profile: dict[str, Any], adapter: Any, blocks: list) -> tuple[tuple[float, ...], ...]:
    """Per profiled step, per block, the block's relative change from the step before: the
    profile must be of this family and of a model with these blocks."""
    check_profile_family(profile, adapter.family)
    names = [f"{kind}.{index}" for kind, index in (spec.key for spec in blocks)]
    if list(profile.get("blocks") or []) != names:
        raise ProfileError(f"profile '{profile.get('name', '?')}' measured {len(profile.get('blocks') or [])} blocks, "
                           f"but this model has {len(names)} ({names[0]} .. {names[-1]}): it is a profile of another "
                           "model; profile this model with the Block Profiler")
    rows = profile.get("block_rel_l1") or []
    if len(rows) < 2:
        raise ProfileError(f"profile '{profile.get('name', '?')}' covers {len(rows)} step; profile again with 10 or "
                           "more steps")
    return tuple(tuple(math.nan if v is None else float(v) for v in row) for row in rows)


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
    if not math.isfinite(speedup) or speedup < 1.0:
        raise ProfileError(f"speedup must be a number of 1 or more (got {speedup}); choose one the profile was "
                           "calibrated for")
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
    return nearest
