"""Where a threshold policy's calibration comes from: a connected Block Profiler profile of the
model in use, else a published preset (the family's own for "auto"), else, for a family nobody
has published one for, an uncalibrated default that works out of the box (as ComfyUI's EasyCache
needs no preset), with a note that a profile would tune it. The presets themselves are the
adapters' (adapters/<family>.py)."""
from __future__ import annotations

import functools
import math
from typing import Any

from ..adapters import ModelAdapter, magnitude_presets, teacache_presets
from ..policies.magnitude import resample_ratios
from .profile_io import ProfileError, check_profile_family, magnitude_ratios

AUTO = "auto"
# TeaCache-style without a polynomial: the raw relative L1 change of the first block's modulated
# input, the signal itself (the identity polynomial).
RAW_SIGNAL = (1.0, 0.0)
GENERIC_CURVE_STEPS = 50


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
    preset = _preset(adapter.teacache_presets, teacache_presets(), choice)
    return RAW_SIGNAL if preset is None else preset.coefficients


def magnitude_curve(adapter: ModelAdapter, choice: str, profile: dict[str, Any] | None) -> tuple[float, ...]:
    """The magnitude-ratio curve: a connected profile wins, then the chosen preset, then the
    family's own."""
    if profile is not None:
        check_profile_family(profile, adapter.family)
        return magnitude_ratios(profile)
    preset = _preset(adapter.magnitude_presets, magnitude_presets(), choice)
    return generic_magnitude_curve() if preset is None else preset.ratios


@functools.cache
def generic_magnitude_curve() -> tuple[float, ...]:
    """The published curves of every family, resampled to one length and averaged step by step
    (geometric mean): their shared shape (near 1, falling over the last steps) stands in for a
    family whose own curve nobody has measured."""
    curves = [resample_ratios(p.ratios, GENERIC_CURVE_STEPS) for p in magnitude_presets()]
    return tuple(math.exp(sum(math.log(c[i]) for c in curves) / len(curves)) for i in range(GENERIC_CURVE_STEPS))


def uncalibrated_note(adapter: ModelAdapter, method: str, choice: str, profile: dict[str, Any] | None) -> str | None:
    """What a threshold node says once per run when it runs on its uncalibrated default (no
    profile, "auto", and no published preset for the family); None otherwise."""
    own = adapter.teacache_presets if method == "TeaCache" else adapter.magnitude_presets
    if profile is not None or choice != AUTO or own:
        return None
    used = ("the raw change of the first block's modulated input (no rescale polynomial)" if method == "TeaCache"
            else "a magnitude-ratio curve averaged over the published families")
    return (f"nothing is published for {adapter.display_name} models, so this run decides on {used}; a Block "
            "Profiler profile of this model (Load Cache Profile -> profile) would tune the threshold to it")


def _preset(own: tuple, every: list, choice: str):
    """The preset `choice` names among `every` family's, or for "auto" the family's own first
    (None: the family has none)."""
    if choice == AUTO:
        return own[0] if own else None
    for preset in every:
        if preset.name == choice:
            return preset
    raise ValueError(f"no preset named {choice!r}; choose one of: {AUTO}, {', '.join(p.name for p in every)}")
