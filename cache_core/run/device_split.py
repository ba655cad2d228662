"""A step whose model calls ComfyUI's MultiGPU CFG Split runs at once, one thread per device
clone (`model_options["multigpu_clones"]`, the main device first): each device caches its own
calls (its streams, on its device) and every device follows the step's one decision, made before
the calls, or, for a policy that reads the first block's features, by the main device's call,
which the others wait for."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..policies.base import CachePolicy, StepAction
from .step_schedule import StepSchedule

SPLIT_READS_FEATURES = ("this run's model calls are split over several devices (ComfyUI's MultiGPU CFG Split) and this "
                        "node probes the model's features on every device (TaylorSeer's guard, the Block Profiler), "
                        "which the devices would not agree on: every step is computed. Every other caching node, "
                        "TaylorSeer without the guard included, follows the split")
# How long a device's call waits for the main device's decision of a split step before it decides
# on its own: far longer than any model's embeddings take to reach the first block.
SPLIT_DECISION_WAIT_S = 120.0


@dataclass
class DeviceSplit:
    # for a policy that reads the first block's features: the device whose call decides each step
    deciding_device: Any = None
    step_decided: threading.Event = field(default_factory=threading.Event)
    deciding: threading.Lock = field(default_factory=threading.Lock)

    def split(self, devices: list, policy: CachePolicy, probes_features: bool) -> str | None:
        """This step's calls run on `devices`. Why the run cannot follow the split (a guard's probe
        or the profiler, `probes_features`, read every device's own features); None when it can."""
        if probes_features:
            return SPLIT_READS_FEATURES
        self.deciding_device = devices[0] if policy.reads_signal else None
        return None

    def before_calls(self, schedule: StepSchedule, cached: bool) -> None:
        """Before a split step's calls: decided from the step alone, never a block's features (a
        stream with nothing cached still computes), unless the main device's call decides it."""
        if self.deciding_device is not None:
            self.step_decided.clear()
        else:
            schedule.decided(cached)

    def decide(self, schedule: StepSchedule, device: Any, cached: bool, signal: Callable[[], torch.Tensor]) -> StepAction:
        """The step's decision at a call's first block. Under a split whose steps the main
        device's features decide, another device's call waits for that decision (and decides on
        its own only if none comes: its own streams stay right either way)."""
        if schedule.decision is not None:
            return schedule.decision
        if self.deciding_device is not None and device is not None and device != self.deciding_device:
            self.step_decided.wait(SPLIT_DECISION_WAIT_S)
        with self.deciding:
            decision = schedule.decided(cached, signal)
        self.step_decided.set()
        return decision
