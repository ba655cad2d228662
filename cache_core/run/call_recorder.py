"""The run's writes into its report: each call's block letters, the cache's peak size, notes,
fallbacks. The wrappers ask it how many calls were recorded instead of reading the report."""
from __future__ import annotations

from ..policies.base import StepAction
from .report import CallRecord, RunReport


class CallRecorder:
    def __init__(self, report: RunReport) -> None:
        self.report = report

    def calls_so_far(self) -> int:
        return len(self.report.calls)

    def call(self, step: int, stream: str, letters: str) -> None:
        """One model call of `step` on `stream`: a letter per block."""
        self.report.calls.append(CallRecord(step, stream, letters))

    def fully_computed_since(self, count: int) -> list[CallRecord]:
        """The calls recorded since the first `count` if there are some and every block of each
        was computed; else none."""
        records = self.report.calls[count:]
        return records if all(set(r.block_actions) == {"C"} for r in records) else []

    def step_without_cache(self, step: int, stream: str, block_count: int) -> None:
        """`step` ran with no part of the cache: whatever of it was recorded before is replaced
        by one fully computed call."""
        self.report.calls = [call for call in self.report.calls if call.step != step]
        self.call(step, stream, StepAction.COMPUTE.letter * block_count)

    def cache_size(self, nbytes: int) -> None:
        self.report.cache_peak_bytes = max(self.report.cache_peak_bytes, nbytes)

    def note(self, message: str, warn: bool = True) -> None:
        self.report.note(message, warn=warn)

    def forecast_accepted(self, scale: float) -> None:
        self.report.forecast_scales.append(scale)

    def fallback(self) -> None:
        self.report.fallbacks += 1

    def level(self, level: str) -> None:
        self.report.level = level
