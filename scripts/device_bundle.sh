#!/usr/bin/env bash
# Prepares what a GPU run through the device tool carries (64 MiB limit with the repo), for the
# runtime RUNTIME names (0.3.75, the default, 0.26.0 or 0.33.0; set it up first with
# make setup RUNTIME=...), in .device/ (carry it: `.device`):
#   0.3.75 / 0.26.0:
#     .device/comfyui  that runtime's ComfyUI without what the benchmarks never read (tokenizer
#                      data, blueprints, API nodes, tests)
#     .device/whl      wheels the GPU image lacks: torchsde, trampoline, av (comfy_api imports av),
#                      and for 0.26 also comfy-kitchen, comfy-aimdo, blake3, simpleeval
#     On the device: pip install --no-deps --target /tmp/site .device/whl/*.whl, PYTHONPATH=/tmp/site,
#     COMFYUI_PATH=.device/comfyui python3 bench/gpu_speed.py  (see bench/README.md).
#   0.33.0 (its comfy-kitchen wheel is 58 MB and av's 36 MB: xz and a stub make them fit):
#     .device/comfyui.tar.xz  the same trimmed ComfyUI tree, xz-compressed (extract to /tmp/comfyui)
#     .device/kitchen.tar.xz  comfy-kitchen 0.2.31's installed files without backends/hip/ (AMD
#                             only), xz-compressed: 21 MB where its wheel is 47 MB without them
#     .device/whl             torchsde, trampoline, comfy-aimdo, blake3, simpleeval
#     av: not carried; scripts/device_stubs/av (in the repo) stands in for it on PYTHONPATH
#     On the device (bench/README.md, "ComfyUI 0.33 at full size"):
#       mkdir -p /tmp/site /tmp/comfyui && tar -C /tmp/comfyui -xJf .device/comfyui.tar.xz &&
#       tar -C /tmp/site -xJf .device/kitchen.tar.xz && pip install -q --no-deps --target /tmp/site .device/whl/*.whl &&
#       PYTHONPATH=/tmp/site:$PWD/scripts/device_stubs COMFYUI_PATH=/tmp/comfyui python3 bench/gpu_speed.py ...
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME=${RUNTIME:-0.3.75}
if [ "$RUNTIME" = "0.3.75" ]; then venv=.venv; else venv=.venv-$RUNTIME; fi
src=$(cat "$venv/comfyui-path" 2>/dev/null || echo .comfyui)
case "$RUNTIME" in
  0.3.75) wheels=(torchsde==0.2.6 trampoline==0.1.2 av==17.0.0) ;;
  0.26.0) wheels=(torchsde==0.2.6 trampoline==0.1.2 av==17.0.0 comfy-kitchen==0.2.14 comfy-aimdo==0.4.10 blake3==1.0.8
                  simpleeval==1.0.3) ;;
  0.33.0) wheels=(torchsde==0.2.6 trampoline==0.1.2 comfy-aimdo==0.4.13 blake3==1.0.8 simpleeval==1.0.3) ;;
  *) echo "RUNTIME is 0.3.75, 0.26.0 or 0.33.0" >&2; exit 1 ;;
esac
download() {   # wheels for the GPU image's Python 3.12 on x86-64 Linux
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform linux_x86_64 --platform any -d "$1" "$2"
}
comfyui_tree() {   # the ComfyUI tree without what the benchmarks never read, as a tar stream
  tar -C "$src" --exclude='./comfy/text_encoders/*_tokenizer' --exclude='custom_nodes' --exclude='tests*' \
    --exclude='blueprints' --exclude='comfy_api_nodes' --exclude='temp' --exclude='__pycache__' -cf - .
}
rm -rf .device && mkdir -p .device/whl
for wheel in "${wheels[@]}"; do download .device/whl "$wheel"; done
if [ "$RUNTIME" = "0.33.0" ]; then
  comfyui_tree | xz -9 -T0 > .device/comfyui.tar.xz
  kitchen=$(mktemp -d)
  download "$kitchen" comfy-kitchen==0.2.31
  (cd "$kitchen" && python3 -m zipfile -e comfy_kitchen-*.whl site && rm -rf site/comfy_kitchen/backends/hip \
    && tar -C site -cf - . | xz -9 -T0) > .device/kitchen.tar.xz
  rm -rf "$kitchen"
else
  mkdir -p .device/comfyui && comfyui_tree | tar -C .device/comfyui -xf -
fi
du -sh .device/* && du -sh .device
