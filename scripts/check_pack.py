"""Builds the archive users get with the publishing tool itself (`comfy node pack`, PyPI
comfy-cli), checks what it holds, and loads the pack from the archive alone on this venv's ComfyUI.

It packs a clean clone of HEAD (the tool zips the git-tracked files less `.comfyignore`), so
what it checks is what `comfy node publish` would upload from this commit. Exit 0 when the
archive holds every shipped file and nothing else, and ComfyUI registers the pack's nodes and
web extension from it; else 1, naming what is wrong.

    python scripts/check_pack.py [--comfy .venv-tools/bin/comfy]
"""
from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What users need: every tracked file under these is shipped, and nothing outside them.
SHIPPED_FOLDERS = ("nodes/", "cache_core/", "web/", "example_workflows/")
SHIPPED_FILES = ("__init__.py", "README.md", "LICENSE", "pyproject.toml", "requirements.txt", ".comfyignore")
NODE_IDS = ("DiTCacheApplyFORA", "DiTCacheBlockCache", "DiTCacheBlockProfiler", "DiTCacheCalibrated",
            "DiTCacheLoadProfile", "DiTCacheMagnitudeThreshold", "DiTCacheQualityCheck", "DiTCacheSpeed",
            "DiTCacheTaylorSeerForecast", "DiTCacheTeaCacheThreshold")


def tracked_files(repo: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def pack(comfy: Path, work: Path) -> tuple[Path, list[str]]:
    """`comfy node pack` in a fresh clone of HEAD; the archive and the clone's tracked files."""
    clone = work / "clone"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    result = subprocess.run([str(comfy), "--skip-prompt", "node", "pack"], cwd=clone, capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=300)
    archive = clone / "node.zip"
    if result.returncode != 0 or not archive.exists():
        raise SystemExit(f"[dit-cache] `comfy node pack` failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return archive, tracked_files(clone)


def archive_problems(names: set[str], tracked: list[str]) -> list[str]:
    """What the archive lacks of the shipped files, and what it holds that users do not need."""
    wanted = {path for path in tracked if path.startswith(SHIPPED_FOLDERS) or path in SHIPPED_FILES}
    problems = [f"missing: {path}" for path in sorted(wanted - names)]
    problems += [f"not for users: {path}" for path in sorted(names - wanted)]
    docs = [n for n in names if n.startswith("web/docs/") and n.endswith(".md")]
    if sorted(Path(d).stem for d in docs) != sorted(NODE_IDS):
        problems.append(f"help pages: {sorted(docs)} (one web/docs/<node id>.md per node wanted)")
    if not any(n.startswith("example_workflows/") and n.endswith(".json") for n in names):
        problems.append("no example workflow")
    return problems


def load_check(pack_folder: Path) -> list[str]:
    """Load the extracted pack into this venv's ComfyUI as its startup does; what it failed to register."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import comfy_runtime

    comfy_runtime.boot()
    import nodes

    if not asyncio.run(nodes.load_custom_node(str(pack_folder))):
        return [f"ComfyUI did not load the pack from {pack_folder}"]
    problems = [f"node not registered: {node_id}" for node_id in NODE_IDS if node_id not in nodes.NODE_CLASS_MAPPINGS]
    web = nodes.EXTENSION_WEB_DIRS.get(pack_folder.name)
    if web is None or not (Path(web) / "dit_cache.js").exists() or not (Path(web) / "docs").is_dir():
        problems.append(f"web extension not registered with its help pages (EXTENSION_WEB_DIRS: {web})")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfy", type=Path, default=ROOT / ".venv-tools" / "bin" / "comfy")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dit-cache-pack-") as tmp:
        work = Path(tmp)
        archive, tracked = pack(args.comfy, work)
        with zipfile.ZipFile(archive) as zf:
            names = {n for n in zf.namelist() if not n.endswith("/")}
            problems = archive_problems(names, tracked)
            folder = work / "custom_nodes" / "comfyui-dit-cache"
            zf.extractall(folder)
        if not problems:
            problems = load_check(folder)
        size = archive.stat().st_size
    if problems:
        print("[dit-cache] the packed archive is not what users need:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"[dit-cache] `comfy node pack`: {len(names)} files, {size / 1024:.0f} KiB, help pages included; "
          f"the pack loads from it ({len(NODE_IDS)} nodes and the web extension registered)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
