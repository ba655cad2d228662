#!/usr/bin/env bash
# Runs bench/calibrated.py variants side by side, one family per process and one thread each, on
# a many-core machine (the device tool's: carry .device from scripts/device_bundle.sh). Each
# argument is "<name>:<flags>", e.g. "cfg1_flux:--cfg 1 --families flux"; each writes <name>.md
# and <name>.log, packed into $OUT/calibrated.tgz at the end (the device tool brings back few
# files per run). scripts/merge_bench_sections.py joins a variant's families.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp}
work=$(mktemp -d)
if [ -z "${PYTHON:-}" ] && [ -d .device/whl ]; then   # the GPU machine: its python3 lacks these wheels
  python3 -m pip install -q --no-deps --target /tmp/site .device/whl/*.whl
  export PYTHONPATH=/tmp/site COMFYUI_PATH=$PWD/.device/comfyui
fi
python=${PYTHON:-python3}   # PYTHON=.venv/bin/python to run it here
for job in "$@"; do
  name=${job%%:*}
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 $python bench/calibrated.py ${job#*:} --out "$work/$name.md" >"$work/$name.log" 2>&1 &
done
wait
tar -C "$work" -czf "$OUT/calibrated.tgz" .
