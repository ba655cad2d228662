"""Reading numbers the GPU computes without waiting for everything queued after them.

`float(t)` or `.tolist()` on a CUDA tensor waits for the whole queue. A policy that read a
measured value on the step it decides would leave the GPU idle there while Python prepares the
step: on a skipped step that is the whole step, so such a method falls short of the speedup its
schedule promises (TeaCache-style at 0.94 of ideal on FLUX.1-dev, where fixed schedules
reach 0.98-0.99). So TeaCache-style starts the copy of each step's input change when it is
measured and reads it steps later (policies/teacache.py), when the GPU is past it.
"""
from __future__ import annotations

import torch


class DeferredRead:
    """Numbers on their way from the device to the host.

    On CUDA the copy goes into pinned memory behind the kernels that make the values, and an
    event marks its end: `values()` waits for that event only, not for work queued later. On
    the CPU the values are simply there; on other devices `values()` reads them plainly."""

    def __init__(self, values: torch.Tensor) -> None:
        values = values.detach().float().flatten()
        self._ready: torch.cuda.Event | None = None
        if values.is_cuda:
            self._host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
            self._host.copy_(values, non_blocking=True)
            self._ready = torch.cuda.Event()
            self._ready.record()
        else:
            self._host = values

    def values(self) -> list[float]:
        if self._ready is not None:
            self._ready.synchronize()
        return self._host.tolist()
