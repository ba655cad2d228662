"""What a calibrating Block Profiler is asked for: its inputs, checked before anything runs."""
from __future__ import annotations

from dataclasses import dataclass

from ..policies.planned import MAX_SPEEDUP

CALIBRATION_KEY = "dit_cache_calibration"   # the calibrating wrapper's key on the profiled model


@dataclass(frozen=True)
class CalibrationRequest:
    speedups: tuple[float, ...]
    extra_seeds: int          # calibration cases besides the run's own noise
    evaluations: int          # candidate plans sampled per speedup, the start included

    @property
    def per_block_evaluations(self) -> int:
        """Per-block candidates sampled per speedup and set of kept blocks (none below 6
        evaluations: the whole-stack search needs them)."""
        return self.evaluations // 6

    def __post_init__(self) -> None:
        if not self.speedups or any(not 1.0 < s <= MAX_SPEEDUP for s in self.speedups):
            raise ValueError(f"calibrate_speedups must be numbers above 1 and at most {MAX_SPEEDUP:g}, e.g. '4, 6' "
                             f"(got {list(self.speedups)})")
        if not 0 <= self.extra_seeds <= 8:
            raise ValueError(f"extra_seeds must be 0..8 (got {self.extra_seeds})")
        if not 1 <= self.evaluations <= 200:
            raise ValueError(f"search_evaluations must be 1..200 (got {self.evaluations})")


def parse_speedups(text: str) -> tuple[float, ...]:
    """'4, 6' -> (4.0, 6.0); an empty text means no calibration."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    try:
        return tuple(sorted({float(p) for p in parts}))
    except ValueError as err:
        raise ValueError(f"calibrate_speedups must be numbers separated by commas, e.g. '4, 6' (got {text!r})") from err
