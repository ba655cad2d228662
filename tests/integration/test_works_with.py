"""The README's "Works with" table is what the code makes: every model class of the running
ComfyUI has its row, and on the ComfyUI the table was made on, every row is what
`scripts/works_with.py` makes now (levels, tiny models, presets). A tiny model cached whole
(the suite's, and each FORA check of `tiny_models.ACCELERATION_CHECKS`) is sped up by Apply FORA
and reports the level its name says."""
from __future__ import annotations

import re

import pytest
import torch

import comfyui_version
import tiny_models
import works_with
from helpers import ROOT, fora, sample_with_report

README = (ROOT / "README.md").read_text()
TABLE = works_with.readme_table(README)
MADE_ON = re.search(r"on ComfyUI ([0-9.]+) -->", TABLE)


def test_every_model_class_of_this_comfyui_has_a_row():
    rows = {line.split("|")[1].strip().strip("`") for line in TABLE.splitlines() if line.startswith("| `")}
    missing = sorted(set(works_with.config_classes()) - rows)
    assert not missing, f"no Works-with row for {missing}: run scripts/works_with.py --write on the newest ComfyUI"


@pytest.mark.skipif(MADE_ON is None or MADE_ON.group(1) != comfyui_version.__version__,
                    reason="the table is compared on the ComfyUI it was made on")
def test_the_table_is_what_the_code_makes(tiny_cache):
    assert TABLE == works_with.table(works_with.tiny_levels(tiny_cache))


WHOLE = [name for name in sorted(tiny_models.BUILDERS) if name not in tiny_models.BLOCK_LEVEL]
CHECKS = sorted(tiny_models.acceleration_checks())


def _built(name: str, tiny_cache: dict):
    if name not in tiny_cache:
        build = tiny_models.BUILDERS[name] if name in tiny_models.BUILDERS else tiny_models.ACCELERATION_CHECKS[name][1]
        tiny_cache[name] = build()
    return tiny_cache[name]


@pytest.mark.parametrize("name", WHOLE + CHECKS)
def test_a_whole_model_reports_the_level_its_name_says_and_skips_model_computes(name, tiny_cache):
    """Apply FORA (interval 3) samples each tiny model cached whole (the suite's, and the FORA
    checks of the other model classes ComfyUI samples) with fewer full steps than steps, a finite
    output, at the level its name says."""
    tiny = _built(name, tiny_cache)
    out, report = sample_with_report(fora(tiny.patcher, interval=3), tiny)
    assert report.level == tiny_models.REPORT_LEVELS[tiny_models.tested_level(name)]
    assert report.full_steps < report.steps and torch.isfinite(out).all()
