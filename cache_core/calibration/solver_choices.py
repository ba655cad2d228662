"""Which of the papers' solvers a calibration uses on a model family: the plan search's stand-ins
(FoCa `P`, HyCa `H` beside reuse, Taylor 1 and 2 and the model's output), ERTACache's rescaled `V`
steps and its residual gains. Read from solver_choices.json, which scripts/make_solver_choices.py
makes from the pack's own measurements on the reference models (bench/results/
calibrated_solvers_cfg*.md, calibrated_hyca_cfg*.md), so a family gets a solver only where it won
there; a family without measurements gets today's plans (`R12V`, nothing fitted)."""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..policies.planned import PLAN_LETTERS
from .plan_search import SUBSTITUTES

CHOICES_FILE = Path(__file__).with_name("solver_choices.json")
STAND_INS = "".join(letter for letter in PLAN_LETTERS if letter != "C")   # what a plan search may use


@dataclass(frozen=True)
class SolverChoice:
    stand_ins: str = SUBSTITUTES         # letters the plan search may use
    fit_output_scales: bool = False      # ERTACache's rescaled V steps (output_scales.py)
    fit_residual_gains: bool = False     # ERTACache's residual gains (residual_gains.py)

    @classmethod
    def parse(cls, variant: str) -> "SolverChoice":
        """"R12VH", "R12V+rescaled", "R12V+gains" (the benches' names) -> a choice."""
        stand_ins, *fitted = variant.split("+")
        unknown = set(fitted) - {"rescaled", "gains"}
        if not stand_ins or set(stand_ins) - set(STAND_INS) or unknown:
            raise ValueError(f"a solver variant is stand-in letters out of {STAND_INS}, then +rescaled or +gains "
                             f"(got {variant!r})")
        return cls(stand_ins, "rescaled" in fitted, "gains" in fitted)

    @property
    def variant(self) -> str:
        return (self.stand_ins + ("+rescaled" if self.fit_output_scales else "")
                + ("+gains" if self.fit_residual_gains else ""))

    @property
    def records_residuals(self) -> bool:
        """Whether the reference runs record the stack's residual (HyCa and the gains fit on it)."""
        return "H" in self.stand_ins or self.fit_residual_gains


# Set by the benchmarks and tests: every family's calibration then uses this choice.
OVERRIDE: SolverChoice | None = None


@functools.cache
def load_choices(path: Path = CHOICES_FILE) -> dict[str, Any]:
    return json.loads(path.read_text())


def solver_choice(family: str) -> SolverChoice:
    """The solvers a calibration on `family` uses: OVERRIDE if set, else the measured choice."""
    if OVERRIDE is not None:
        return OVERRIDE
    chosen = load_choices()["families"].get(family)
    return SolverChoice.parse(chosen["variant"]) if chosen else SolverChoice()
