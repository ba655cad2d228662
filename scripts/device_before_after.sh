#!/usr/bin/env bash
# Full-size speed of the working tree against an earlier commit, on one device machine in one call
# (timings compare only within one machine and call). Here, before the call:
#   RUNTIME=0.33.0 bash scripts/device_bundle.sh     # .device/: ComfyUI 0.33 and its wheels
#   bash scripts/device_before_after.sh pack COMMIT   # .device/before.tar.xz: that commit's pack
# On the device (carry .device), with the bench's own arguments after the word "run":
#   bash scripts/device_before_after.sh run --models 0 --repeats 2 --dynamic-vram
# writes $OUT/before.md and $OUT/after.md (bench/gpu_speed.py's tables), before first.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  pack)
    git archive "$2" cache_core nodes __init__.py bench scripts pyproject.toml | xz -9 > .device/before.tar.xz
    du -sh .device/before.tar.xz ;;
  run)
    shift
    mkdir -p /tmp/site /tmp/comfyui /tmp/before
    tar -C /tmp/comfyui -xJf .device/comfyui.tar.xz
    tar -C /tmp/site -xJf .device/kitchen.tar.xz
    pip install -q --no-deps --target /tmp/site .device/whl/*.whl
    tar -C /tmp/before -xf .device/before.tar.xz
    ln -sfn "$PWD/reference" /tmp/before/reference   # fixtures the bench reads, unchanged by the pack
    ln -sfn "$PWD/tests" /tmp/before/tests
    export PYTHONPATH=/tmp/site:$PWD/scripts/device_stubs COMFYUI_PATH=/tmp/comfyui
    (cd /tmp/before && python3 bench/gpu_speed.py "$@" --out "$OUT/before.md")
    python3 bench/gpu_speed.py "$@" --out "$OUT/after.md" ;;
  *) echo "usage: $0 pack COMMIT | run BENCH_ARGS..." >&2; exit 1 ;;
esac
