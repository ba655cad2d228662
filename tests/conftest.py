"""Boots the real ComfyUI runtime (CPU) and loads this pack as ComfyUI loads a custom node."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests" / "custom_nodes"))  # tiny_loaders, the test-only loader stand-ins

import comfy_runtime  # noqa: E402

comfy_runtime.boot()
PACK = comfy_runtime.load_pack()

import tiny_models  # noqa: E402

FAMILIES = ["flux", "wan", "wan_i2v", "hunyuan_video"]


@pytest.fixture(scope="session")
def tiny_cache():
    return {}


@pytest.fixture(params=FAMILIES)
def tiny(request, tiny_cache):
    """One tiny real model per family (built once per session; tests only ever clone it)."""
    name = request.param
    if name not in tiny_cache:
        tiny_cache[name] = tiny_models.BUILDERS[name]()
    return tiny_cache[name]


@pytest.fixture(scope="session")
def reference_outputs():
    """Uncached outputs, keyed by (family, sampling settings)."""
    return {}


def reference(tiny, reference_outputs, **settings):
    key = (tiny.family, id(tiny), tuple(sorted(settings.items())))
    if key not in reference_outputs:
        reference_outputs[key] = tiny_models.sample(tiny.patcher, tiny, **settings)
    return reference_outputs[key]
