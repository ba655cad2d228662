"""The engine's rooms (docs/ARCHITECTURE.md, "The layers"): each sub-package of cache_core
imports only the rooms below it, the run engine and the policies take from the adapters only
their base and never import ComfyUI, nothing in cache_core imports the nodes, and no module
outside the adapters is over 200 lines. Read from the source's import statements, lazy ones
included."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "cache_core"
# A room may import its own modules and those of rooms of a lower rank; rooms of one rank are
# peers that never import each other.
RANKS = {"support": 0, "adapters": 1, "stand_ins": 2, "policies": 3, "run": 4,
         "attachment": 5, "profiles": 5, "speeds": 5, "calibration": 6}
COMFYUI = {"comfy", "comfy_api", "comfy_extras", "folder_paths", "server", "nodes", "node_helpers", "latent_preview"}
NO_COMFYUI = {"support", "stand_ins", "policies", "run"}
LONGEST = 200


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _room(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every module `path` imports, as (absolute dotted name, line): within the pack as
    "cache_core.<room>...", else the top-level package's name."""
    package = ["cache_core", *path.relative_to(PACKAGE).parent.parts]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
                if node.module is None:   # from . import x: x may be a module
                    found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
                    continue
                found.append((target, node.lineno))
            else:
                found.append((node.module, node.lineno))
    return found


def test_every_module_lives_in_a_room():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    rooms = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert loose == [] and rooms == set(RANKS)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_one_way(path):
    room = _room(path)
    wrong = []
    for name, line in _imports(path):
        parts = name.split(".")
        if parts[0] == "cache_core" and len(parts) > 1:
            target = parts[1]
            if target != room and RANKS[target] >= RANKS[room]:
                wrong.append(f"line {line}: {name} ({target} is not below {room})")
            if room in {"run", "policies"} and target == "adapters" and parts[2:3] != ["base"]:
                wrong.append(f"line {line}: {name} (the {room} room takes only adapters.base)")
        elif parts[0] in COMFYUI and room in NO_COMFYUI:
            wrong.append(f"line {line}: {name} (the {room} room does not import ComfyUI)")
        elif parts[0] == "nodes" or name.startswith("comfyui_dit_cache"):
            wrong.append(f"line {line}: {name} (the engine does not import the nodes or the pack by name)")
    assert wrong == []


def test_the_import_walk_sees_a_wrong_import(tmp_path):
    """The check itself: an upward import, relative and lazy, is found."""
    room = PACKAGE / "policies"
    probe = room / "_probe_wrong_import.py"
    probe.write_text("def f():\n    from ..run.engine import CacheEngine\n")
    try:
        assert ("cache_core.run.engine", 2) in _imports(probe)
        with pytest.raises(AssertionError):
            test_imports_point_one_way(probe)
    finally:
        probe.unlink()


@pytest.mark.parametrize("path", [p for p in _modules() if _room(p) != "adapters"],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_outside_the_adapters_is_over_200_lines(path):
    assert len(path.read_text().splitlines()) <= LONGEST
