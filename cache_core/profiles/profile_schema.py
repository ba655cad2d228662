"""The one check of a profile's content when it is read: every field a consumer uses has the
type, range and length it needs, so that a damaged or hand-edited file gives one ProfileError
naming the field, never an exception deep in a node or the sampler."""
from __future__ import annotations

import math
from typing import Any

from ..policies.planned import MAX_SPEEDUP, PLAN_LETTERS
from ..stand_ins.hybrid import CHANNEL_SOLVERS

PROFILE_FORMAT = "dit-cache-profile/1"

MAX_COEFFICIENT = 1e8     # TeaCache's published polynomials stay within 1e4


class SchemaError(ValueError):
    """What is wrong with one field (the caller names the file)."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: Any, field: str, low: float = -math.inf, high: float = math.inf) -> float:
    if not _is_number(value) or not math.isfinite(value) or not low <= value <= high:
        raise SchemaError(f"{field} must be a number between {low:g} and {high:g} (got {_shown(value)})")
    return float(value)


def _integer(value: Any, field: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"from {low}" + (f" to {high}" if high is not None else "")
        raise SchemaError(f"{field} must be a whole number {bound} (got {_shown(value)})")
    return value


def _measurements(value: Any, field: str, length: int) -> None:
    """A list of `length` measurements: numbers, or null where none was made (NaN reads as null)."""
    if not isinstance(value, list) or len(value) != length:
        raise SchemaError(f"{field} must be a list of {length} numbers (got {_shown(value)})")
    for index, item in enumerate(value):
        if item is not None and not (_is_number(item) and (math.isfinite(item) or math.isnan(item))):
            raise SchemaError(f"{field}[{index}] must be a number or null (got {_shown(item)})")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"a {type(value).__name__}"


def check_profile(profile: dict[str, Any]) -> None:
    """Raise SchemaError on the first field that a consumer could not use."""
    if not isinstance(profile.get("family"), str) or not profile["family"]:
        raise SchemaError(f"family must be a model family's name (got {_shown(profile.get('family'))})")
    blocks = profile.get("blocks")
    if not isinstance(blocks, list) or not blocks or not all(isinstance(b, str) for b in blocks):
        raise SchemaError(f"blocks must be a list of block names (got {_shown(blocks)})")
    steps = _integer(profile.get("steps"), "steps", 1, 10000)
    sigmas = profile.get("sigmas")
    if not isinstance(sigmas, list) or len(sigmas) != steps:
        raise SchemaError(f"sigmas must be a list of {steps} numbers (got {_shown(sigmas)})")
    for index, sigma in enumerate(sigmas):   # each step's noise level: a calibrated plan checks runs against them
        _finite(sigma, f"sigmas[{index}]", 0.0)
    for field in ("modulated_input_rel_l1", "output_rel_l1"):
        _measurements(profile.get(field), field, steps)
    if "residual_magnitude_ratio" in profile:
        _measurements(profile["residual_magnitude_ratio"], "residual_magnitude_ratio", steps)
    for field in ("block_rel_l1", "block_cosine"):
        rows = profile.get(field)
        if not isinstance(rows, list) or len(rows) != steps:
            raise SchemaError(f"{field} must hold one row per step ({steps}) (got {_shown(rows)})")
        for index, row in enumerate(rows):
            _measurements(row, f"{field}[{index}]", len(blocks))
    coefficients = profile.get("teacache_coefficients")
    if not isinstance(coefficients, list):
        raise SchemaError(f"teacache_coefficients must be a list of numbers (got {_shown(coefficients)})")
    for index, value in enumerate(coefficients):
        _finite(value, f"teacache_coefficients[{index}]", -MAX_COEFFICIENT, MAX_COEFFICIENT)
    _integer(profile.get("suggested_fora_interval"), "suggested_fora_interval", 1, steps)
    intervals = profile.get("suggested_block_intervals", [])
    if not isinstance(intervals, list) or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in intervals):
        raise SchemaError(f"suggested_block_intervals must be a list of whole numbers (got {_shown(intervals)})")
    first, total = _check_schedule(profile.get("schedule"), steps)
    if profile.get("calibration") is not None:
        _check_calibration(profile["calibration"], steps, first, total, len(blocks))


def _check_schedule(schedule: Any, steps: int) -> tuple[int, int]:
    """The profiled part's first step and the whole schedule's length (a profile without one
    covers a whole schedule of its own steps)."""
    if schedule is None:
        return 0, steps
    if not isinstance(schedule, dict):
        raise SchemaError(f"schedule must be an object (got {_shown(schedule)})")
    total = _integer(schedule.get("total_steps"), "schedule.total_steps", steps, 10000)
    first = _integer(schedule.get("first_step"), "schedule.first_step", 0, total - steps)
    return first, total


def _check_calibration(calibration: Any, steps: int, first: int, total: int, blocks: int) -> None:
    if not isinstance(calibration, dict):
        raise SchemaError(f"calibration must be an object (got {_shown(calibration)})")
    plans = calibration.get("plans", [])
    if not isinstance(plans, list):
        raise SchemaError(f"calibration.plans must be a list (got {_shown(plans)})")
    channels = calibration.get("channel_solvers")
    solvers = channels.get("solvers") if isinstance(channels, dict) else None
    if channels is not None and (not isinstance(solvers, str) or not solvers or set(solvers) - set(CHANNEL_SOLVERS)):
        raise SchemaError("calibration.channel_solvers.solvers must be one letter per hidden channel out of "
                          f"{', '.join(CHANNEL_SOLVERS)} (got {_shown(solvers)})")
    for index, plan in enumerate(plans):
        field = f"calibration.plans[{index}]"
        if not isinstance(plan, dict):
            raise SchemaError(f"{field} must be an object (got {_shown(plan)})")
        _finite(plan.get("speedup"), f"{field}.speedup", 1.0, MAX_SPEEDUP)
        letters = plan.get("plan")
        if (not isinstance(letters, str) or len(letters) != total or not set(letters) <= set(PLAN_LETTERS)
                or not letters.startswith("C") or letters[first] != "C"):
            raise SchemaError(f"{field}.plan must be {total} letters of {', '.join(PLAN_LETTERS)}, the first C "
                              f"(got {_shown(letters)})")
        if "H" in letters and channels is None:
            raise SchemaError(f"{field}.plan has H steps, but the profile has no calibration.channel_solvers for them")
        computes = _integer(plan.get("computes"), f"{field}.computes", 1, steps)
        profiled = letters[first:first + steps].count("C")
        if computes != profiled:
            raise SchemaError(f"{field}.computes ({computes}) does not match its plan's {profiled} C steps")
        kept = plan.get("kept_blocks", [])
        if (not isinstance(kept, list) or any(isinstance(b, bool) or not isinstance(b, int) or b < 0 for b in kept)
                or len(set(kept)) != len(kept) or len(kept) >= blocks):
            raise SchemaError(f"{field}.kept_blocks must be a list of distinct block numbers, fewer than the "
                              f"{blocks} blocks (got {_shown(kept)})")
        _finite(plan.get("psnr_worst"), f"{field}.psnr_worst")   # said whenever the plan is chosen
        if plan.get("psnr_mean") is not None:
            _finite(plan["psnr_mean"], f"{field}.psnr_mean")
        for name, high in (("output_scales", 4.0), ("residual_gains", 2.0)):
            scales = plan.get(name)
            if scales is None:
                continue
            if not isinstance(scales, list) or len(scales) != total:
                raise SchemaError(f"{field}.{name} must be a list of {total} numbers (got {_shown(scales)})")
            for step, scale in enumerate(scales):
                _finite(scale, f"{field}.{name}[{step}]", 0.0, high)
