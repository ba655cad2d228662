"""The run-wide fallback: when the cache cannot be sure of any skipped step in a run, or its own
code failed, every step from there on is computed, said once."""
from __future__ import annotations

from ..support.log import get_logger
from .call_recorder import CallRecorder

log = get_logger(__name__)


class RunFallback:
    def __init__(self, recorder: CallRecorder) -> None:
        self.recorder = recorder
        self.computes_every_step = False
        self.failed: str | None = None     # the note of an unexpected error of the cache's own code

    def compute_every_step(self, reason: str) -> None:
        """Compute every step from here on and say why, once."""
        self.computes_every_step = True
        self.recorder.note(reason)

    def fail(self, note: str, error: BaseException) -> None:
        """An unexpected error of the cache's own code: the rest of the run is computed without
        the cache, said once in the report and the log (with the traceback)."""
        report = self.recorder.report
        if self.failed is None:
            log.error("%s: %s", report.method, note, exc_info=error)
        self.failed = note
        self.computes_every_step = True
        if note not in report.notes:
            report.notes.append(note)
