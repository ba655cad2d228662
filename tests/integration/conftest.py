"""Boots the real ComfyUI runtime (CPU) and loads this pack as ComfyUI loads a custom node;
the tiny real models every integration test runs on."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for folder in ("scripts", "reference", "tests/fixtures", "tests/integration"):
    sys.path.insert(0, str(ROOT / folder))

import comfy_runtime  # noqa: E402

comfy_runtime.boot()
PACK = comfy_runtime.load_pack()

import tiny_models  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def todays_plans():
    """Calibrations in the tests search today's plans (reuse, Taylor 1 and 2, the model's output;
    nothing fitted besides) whatever a family's measured choice of solvers is
    (calibration/solver_choices.json), so that a benchmark rerun that changes a family's choice
    changes no test; test_calibrated_solvers.py sets its own choices and tests the families'."""
    from comfyui_dit_cache.cache_core.calibration import solver_choices

    solver_choices.OVERRIDE = solver_choices.SolverChoice()
    yield
    solver_choices.OVERRIDE = None


@pytest.fixture(scope="session")
def tiny_cache():
    return {}


def _built(name: str, tiny_cache: dict):
    if name not in tiny_cache:
        tiny_cache[name] = tiny_models.BUILDERS[name]()
    return tiny_cache[name]


@pytest.fixture(params=sorted(tiny_models.BUILDERS))
def tiny(request, tiny_cache):
    """One tiny real model per supported model case (built once per session; tests only clone it)."""
    return _built(request.param, tiny_cache)


@pytest.fixture(params=sorted(tiny_models.BLOCK_LEVEL))
def block_tiny(request, tiny_cache):
    """The tiny models cached block by block (every case but the whole-model level)."""
    return _built(request.param, tiny_cache)


@pytest.fixture(scope="session")
def reference_outputs():
    """Uncached outputs, keyed by (model, sampling settings): see helpers.reference."""
    return {}


@pytest.fixture
def output_dir(tmp_path):
    """ComfyUI's output folder pointed at a fresh temporary folder for one test."""
    import folder_paths

    previous = folder_paths.get_output_directory()
    folder_paths.set_output_directory(str(tmp_path))
    yield tmp_path
    folder_paths.set_output_directory(previous)
