"""Where a threshold policy's calibration comes from: a connected Block Profiler profile of the
model in use, else a published preset (the family's own for "auto"), else a clear error asking
for a profile. The presets themselves are the adapters' (adapters/<family>.py)."""
from __future__ import annotations

from typing import Any

from .adapters import ModelAdapter, magnitude_presets, teacache_presets
from .profile_io import ProfileError, check_profile_family, magnitude_ratios

AUTO = "auto"


def teacache_coefficients(adapter: ModelAdapter, choice: str, profile: dict[str, Any] | None) -> tuple[float, ...]:
    """The rescale polynomial: a connected profile wins, then the chosen preset, then the
    family's own."""
    if profile is not None:
        check_profile_family(profile, adapter.family)
        coefficients = profile.get("teacache_coefficients") or []
        if not coefficients:
            raise ProfileError(f"profile '{profile.get('name', '?')}' holds no fitted coefficients (too few steps); "
                               "profile again with 10 or more steps")
        return tuple(float(c) for c in coefficients)
    return _preset(adapter.teacache_presets, teacache_presets(), choice, adapter,
                   "TeaCache rescale polynomial").coefficients


def magnitude_curve(adapter: ModelAdapter, choice: str, profile: dict[str, Any] | None) -> tuple[float, ...]:
    """The magnitude-ratio curve: a connected profile wins, then the chosen preset, then the
    family's own."""
    if profile is not None:
        check_profile_family(profile, adapter.family)
        return magnitude_ratios(profile)
    return _preset(adapter.magnitude_presets, magnitude_presets(), choice, adapter, "magnitude-ratio curve").ratios


def _preset(own: tuple, every: list, choice: str, adapter: ModelAdapter, what: str):
    """The preset `choice` names among `every` family's, or for "auto" the family's own first."""
    if choice == AUTO:
        if not own:
            raise ProfileError(f"no published {what} exists for {adapter.display_name} models; profile this model "
                               "once with the Block Profiler node and connect the profile (Load Cache Profile -> "
                               "profile)")
        return own[0]
    for preset in every:
        if preset.name == choice:
            return preset
    raise ValueError(f"no preset named {choice!r}; choose one of: {AUTO}, {', '.join(p.name for p in every)}")
