# DiT Cache developer commands. `make test` and `make demo` work on a fresh clone: they build
# the runtime first (.venv + a pinned ComfyUI, or COMFYUI_PATH=/path/to/ComfyUI).
PY := .venv/bin/python

.PHONY: setup test demo bench

setup:
	bash tools/setup_runtime.sh

test: setup
	$(PY) -m pytest -q tests

demo: setup
	$(PY) tools/demo.py

bench: setup
	$(PY) bench/quality.py
