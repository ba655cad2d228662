"""Which sampler step a model evaluation belongs to, from the sampler's own progress reports.

A sampler that evaluates the model twice a step (heun, dpm_2, dpmpp_sde, dpmpp_2s_ancestral, ...)
is counted in steps, not calls: every evaluation from the sampler's report of one step to its
report of the next belongs to one step, and follows that step's one decision (step_schedule.py).
"""
from __future__ import annotations

from dataclasses import dataclass

OWN_STEPS = ("this sampler reports more steps than its schedule has (dpm_adaptive chooses its own): its steps "
             "cannot be placed in the schedule, so every step from there on is computed")


@dataclass
class SamplerSteps:
    """Which sampler step a model evaluation belongs to, from the steps the sampler reports
    (its progress callback, after each step's first evaluation or at its end): an evaluation
    after the report of step i belongs to step i + 1. Before the sampler's first report (and
    for a sampler that never reports) each evaluation begins a step. No sigma is read: reading
    one waits for the GPU. An evaluation after the last step's report (a predictor-corrector
    sampler's last correction) belongs to the last step."""

    steps: int                      # the run's steps (its sigmas less one)
    begun: int = 0                  # sampler steps this run has begun
    reported: int | None = None     # the last step the sampler reported done (its own index)

    def evaluation_begins(self) -> None:
        """A model evaluation begins: in the step after the last one reported, or, before any
        report, in a step of its own (`current` is its index)."""
        index = self.begun if self.reported is None else self.reported + 1
        self.begun = max(self.begun, min(index, self.steps - 1) + 1)

    @property
    def current(self) -> int:
        """The index, in this run, of the step in progress."""
        return self.begun - 1

    def step_done(self, index: int) -> None:
        """The sampler reports step `index` (of this run) done."""
        self.reported = index
