#!/usr/bin/env bash
# Prepares what a GPU run through the device tool carries (64 MiB limit with the repo), for the
# runtime RUNTIME names (0.3.75, the default, or 0.26.0; set it up first with make setup RUNTIME=...):
#   .device/comfyui  that runtime's ComfyUI without what the benchmarks never read (tokenizer data,
#                    blueprints, API nodes, tests)
#   .device/whl      wheels the GPU image lacks: torchsde, trampoline, av (comfy_api imports av),
#                    and for 0.26 also comfy-kitchen, comfy-aimdo, blake3, simpleeval
# Then, on the device: pip install --target /tmp/site .device/whl/*.whl, PYTHONPATH=/tmp/site,
# COMFYUI_PATH=.device/comfyui python3 bench/gpu_speed.py  (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME=${RUNTIME:-0.3.75}
if [ "$RUNTIME" = "0.3.75" ]; then venv=.venv; else venv=.venv-$RUNTIME; fi
src=$(cat "$venv/comfyui-path" 2>/dev/null || echo .comfyui)
wheels=(torchsde==0.2.6 trampoline==0.1.2 av==17.0.0)
if [ "$RUNTIME" != "0.3.75" ]; then
  wheels+=(comfy-kitchen==0.2.14 comfy-aimdo==0.4.10 blake3==1.0.8 simpleeval==1.0.3)
fi
rm -rf .device/comfyui .device/whl && mkdir -p .device/comfyui .device/whl
tar -C "$src" --exclude='./comfy/text_encoders/*_tokenizer' --exclude='custom_nodes' --exclude='tests*' --exclude='blueprints' \
  --exclude='comfy_api_nodes' --exclude='temp' -cf - . | tar -C .device/comfyui -xf -
for wheel in "${wheels[@]}"; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform linux_x86_64 --platform any -d .device/whl "$wheel"
done
du -sh .device/comfyui .device/whl
