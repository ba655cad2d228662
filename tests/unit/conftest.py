"""Unit tests: the pack's ComfyUI-free parts (policies, predictors, the step schedule, reports)
imported on their own, as the package `cache_core`, without booting ComfyUI."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

if "cache_core" not in sys.modules:
    spec = importlib.util.spec_from_file_location("cache_core", ROOT / "cache_core" / "__init__.py",
                                                  submodule_search_locations=[str(ROOT / "cache_core")])
    module = importlib.util.module_from_spec(spec)
    sys.modules["cache_core"] = module
    spec.loader.exec_module(module)
