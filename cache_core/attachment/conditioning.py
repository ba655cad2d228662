"""Conditioning moved to the model's device once per sampling run.

ComfyUI keeps the encoded prompt in CPU memory and copies it to the GPU on every model call.
That copy comes from pageable memory, so the host waits until the GPU has finished everything
queued before it. Uncached, the wait hides behind the next step's work; with a cache it makes
every skipped step cost its full host time (ComfyUI's and the model's Python outside the
blocks), because nothing is queued to run meanwhile. On FLUX.1-dev at 1024x1024 (H100,
bench/gpu_trace.py) the GPU idled in 42 gaps over 0.5 ms per FORA run with the copy, 3 without.

The move is run-local: only the run's own encoded copy of the conditioning (`model_conds`,
which ComfyUI builds anew for each run) points at device tensors; the user's conditioning stays
where it was.
"""
from __future__ import annotations

from typing import Any

import torch

from ..support.log import get_logger

log = get_logger(__name__)


def _on_device(value: Any, device: torch.device) -> Any:
    """`value` (a tensor, or a list of tensors) on `device`; anything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list) and value and all(isinstance(v, torch.Tensor) for v in value):
        if all(v.device == torch.device(device) for v in value):
            return value
        return [v.to(device) for v in value]
    return value


def move_conditioning(conds: dict[str, list[dict]], device: torch.device) -> int:
    """Point every encoded condition of this run at a copy on `device`; returns how many moved."""
    moved = 0
    for entries in conds.values():
        for entry in entries:
            model_conds = entry.get("model_conds")
            if not model_conds:
                continue
            for key, cond in list(model_conds.items()):
                value = getattr(cond, "cond", None)
                placed = _on_device(value, device)
                if placed is not value and hasattr(cond, "_copy_with"):
                    model_conds[key] = cond._copy_with(placed)
                    moved += 1
    return moved


def conditioning_on_device_wrapper(executor, *args, **kwargs):
    """SAMPLER_SAMPLE wrapper (runs after ComfyUI has encoded this run's conditioning): moves it
    to the model's device before the first step."""
    guider = args[0]
    device = guider.model_patcher.load_device
    if torch.device(device).type != "cpu":
        moved = move_conditioning(guider.conds, device)
        log.debug("moved %d conditioning tensors to %s for this run", moved, device)
    return executor(*args, **kwargs)
