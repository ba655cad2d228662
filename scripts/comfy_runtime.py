"""Boots the real ComfyUI runtime in-process for the tests, the demo and the benchmarks, and
loads this pack the way ComfyUI loads a custom node folder (as a package, relative imports).

ComfyUI comes from COMFYUI_PATH, or else from the copy `scripts/setup_runtime.sh` extracted for
the running venv (each runtime's venv records its ComfyUI in `comfyui-path`).
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

PACK_ROOT = Path(__file__).resolve().parent.parent
PACK_MODULE = "comfyui_dit_cache"


def comfyui_path() -> Path:
    configured = os.environ.get("COMFYUI_PATH")
    if configured:
        return Path(configured).resolve()
    recorded = Path(sys.prefix) / "comfyui-path"
    if recorded.exists():
        return Path(recorded.read_text().strip())
    return PACK_ROOT / ".comfyui"


def boot(extra_args: tuple[str, ...] = ()) -> Path:
    """Put ComfyUI on sys.path and parse its arguments (CPU unless told otherwise)."""
    root = comfyui_path()
    if not (root / "comfy" / "model_patcher.py").exists():
        raise SystemExit(f"[dit-cache] no ComfyUI at {root}: run `make setup` or set COMFYUI_PATH")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    if "comfy.options" not in sys.modules:
        args = list(extra_args) if extra_args else ["--cpu"]
        sys.argv = [sys.argv[0], *args]
        import comfy.options
        comfy.options.enable_args_parsing()
    # main.py imports ComfyUI's `utils` package first thing; some comfy module later puts
    # comfy/ (holding a utils.py) at the front of sys.path, and then nodes_images fails to import.
    import utils.install_util  # noqa: F401
    return root


def load_pack() -> ModuleType:
    """Import this repo as ComfyUI would import `custom_nodes/<pack>`."""
    if PACK_MODULE in sys.modules:
        return sys.modules[PACK_MODULE]
    spec = importlib.util.spec_from_file_location(
        PACK_MODULE, PACK_ROOT / "__init__.py", submodule_search_locations=[str(PACK_ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_MODULE] = module
    spec.loader.exec_module(module)
    return module
