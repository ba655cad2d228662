"""What one stream of model calls keeps across the steps of a run, and the registry of a run's
streams.

A stream is one identity of the model calls of a step (`call_identity`): cond and uncond batched
together, or each alone when ComfyUI splits them, each context window, each area. Each stream
has its own residuals (per span of blocks, run_geometry.py) and, for a guard, the first block's
history; the step's decision is shared by all of them, so a step is never half computed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..stand_ins.forecast_guard import FirstBlockProbe
from ..stand_ins.predictors import ResidualPredictor

WEIGHTS_CHANGED = ("a hook keyframe changed the model's weights (a scheduled LoRA): the first step under the new "
                   "weights is computed, since the cache holds features of the old ones")


def call_identity(options: dict, img: torch.Tensor) -> tuple:
    """What makes two model calls of a step the same stream of features: which conditionings
    are batched, in which order (ComfyUI's per-cond uuids, stable over the run), which context
    window of a long video, and the token shape. Calls that differ in any of these never share
    a cache."""
    window = options.get("context_window")
    window_indices = tuple(getattr(window, "index_list", ())) if window is not None else ()
    return (tuple(options.get("cond_or_uncond", ())), tuple(options.get("uuids", ())), window_indices,
            tuple(img.shape))


def stream_label(cond_or_uncond: tuple[int, ...]) -> str:
    """"cond+uncond", "cond", "uncond"; "batch" when ComfyUI does not say."""
    return "+".join("uncond" if c == 1 else "cond" for c in cond_or_uncond) or "batch"


@dataclass
class StreamCache:
    label: str
    new_predictor: Callable[[], ResidualPredictor]
    probe: FirstBlockProbe | None = None     # with a forecast guard
    # per span start, one predictor per hidden-state stream of the span's last block
    residuals: dict[int, dict[str, ResidualPredictor]] = field(default_factory=dict)
    has_cache: bool = False
    weights: tuple = ()                      # the model's weight keyframes its cache was computed under
    # Joint blocks (FLUX's single blocks): whether they put the text first, read at the first
    # joint block of this stream's first call from what the block before it returned.
    text_first: bool | None = None

    def update(self, start: int, step: int, residual: dict[str, torch.Tensor]) -> None:
        """The residual a computed span (starting at block `start`) added at `step`."""
        own = self.residuals.setdefault(start, {})
        for key, value in residual.items():
            own.setdefault(key, self.new_predictor()).update(step, value)

    def nbytes(self) -> int:
        held = sum(p.nbytes() for own in self.residuals.values() for p in own.values())
        return held + (self.probe.predictor.nbytes() if self.probe is not None else 0)


class StreamCaches:
    """The run's streams, each made empty on first sight with the policy's stand-ins."""

    def __init__(self, new_predictor: Callable[[], ResidualPredictor],
                 new_probe: Callable[[], FirstBlockProbe | None]) -> None:
        self._new_predictor = new_predictor
        self._new_probe = new_probe
        self._streams: dict[tuple, StreamCache] = {}

    def stream_for(self, identity: tuple) -> StreamCache:
        """The stream of `identity` (from `call_identity`, whose first part is cond_or_uncond)."""
        if identity not in self._streams:
            self._streams[identity] = StreamCache(stream_label(identity[0]), self._new_predictor, self._new_probe())
        return self._streams[identity]

    def __bool__(self) -> bool:
        return bool(self._streams)

    def all_cached(self) -> bool:
        return all(stream.has_cache for stream in self._streams.values())

    def nbytes(self) -> int:
        return sum(stream.nbytes() for stream in self._streams.values())

    def clear(self) -> None:
        self._streams.clear()
