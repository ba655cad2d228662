"""The calibration's progress on the Block Profiler's node, through ComfyUI's own progress
mechanism: a `comfy.utils.ProgressBar` (0-100) on that node, and its progress text (the server's
`send_progress_text`, where the server has it: none runs in a headless or scripted ComfyUI)."""
from __future__ import annotations

import comfy.utils

from ..support.log import get_logger
from .progress import CalibrationProgress

log = get_logger(__name__)


def node_progress(node_id: str | None, total: float) -> CalibrationProgress:
    bar = comfy.utils.ProgressBar(100, node_id=node_id)
    shown = [-1]

    def show_bar(done: float, whole: float) -> None:
        percent = min(100, int(100 * done / whole))
        if percent != shown[0]:
            shown[0] = percent
            bar.update_absolute(percent, 100)

    def show_text(text: str) -> None:
        log.debug("%s", text)
        try:
            from server import PromptServer
        except ImportError:
            return
        server = getattr(PromptServer, "instance", None)
        if server is not None and node_id is not None and hasattr(server, "send_progress_text"):
            server.send_progress_text(text, node_id)

    return CalibrationProgress(total, show_bar, show_text)
