#!/usr/bin/env bash
# Prepares what a GPU run through the device tool carries (64 MiB limit with the repo):
#   .device/comfyui  the runtime's ComfyUI without its tokenizer data folders (the benchmarks never tokenize)
#   .device/whl      wheels the GPU image lacks: torchsde, trampoline, av (comfy_api imports av)
# Then, on the device: pip install --target /tmp/site .device/whl/*.whl, PYTHONPATH=/tmp/site,
# COMFYUI_PATH=.device/comfyui python3 bench/gpu_speed.py  (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(cat .venv/comfyui-path 2>/dev/null || echo .comfyui)
rm -rf .device/comfyui && mkdir -p .device/comfyui .device/whl
tar -C "$src" --exclude='*_tokenizer' --exclude='custom_nodes' --exclude='tests*' -cf - . | tar -C .device/comfyui -xf -
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .device/whl torchsde==0.2.6 trampoline==0.1.2 av==19.0.2
du -sh .device/comfyui .device/whl
