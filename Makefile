# DiT Cache developer commands. `make test` and `make demo` work on a fresh clone: they build
# the runtime first (.venv + a pinned ComfyUI, or COMFYUI_PATH=/path/to/ComfyUI).
PY := .venv/bin/python

.PHONY: setup test test-browser demo bench workflows

setup:
	bash tools/setup_runtime.sh

test: setup
	$(PY) -m pytest -q tests --ignore=tests/browser

# The web extension in headless Chromium against a real ComfyUI server (installs Debian's
# chromium and playwright-core first; screenshots in tests/output/).
test-browser: setup
	bash tools/setup_browser.sh
	$(PY) -m pytest -q tests/browser

workflows: setup
	$(PY) tools/make_workflows.py

demo: setup
	$(PY) tools/demo.py

bench: setup
	$(PY) bench/quality.py
