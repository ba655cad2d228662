# DiT Cache developer commands. `make test` and `make demo` work on a fresh clone: they build
# the runtime first (.venv + a pinned ComfyUI 0.3.75, or COMFYUI_PATH=/path/to/ComfyUI).
# RUNTIME=0.26.0 or RUNTIME=0.33.0 runs any of them on that ComfyUI instead (.venv-<version> +
# .comfyui-<version>, from ../shared/comfyui/).
RUNTIME ?= 0.3.75
VENV := $(if $(filter 0.3.75,$(RUNTIME)),.venv,.venv-$(RUNTIME))
PY := $(VENV)/bin/python
export RUNTIME

.PHONY: setup test test-unit test-browser demo bench workflows check-pack

setup:
	bash scripts/setup_runtime.sh

# Unit tests (policies, predictors, schedules: no ComfyUI), then integration tests on the real
# ComfyUI runtime with tiny models.
test: setup
	$(PY) -m pytest -q tests/unit tests/integration --ignore=tests/integration/browser

test-unit: setup
	$(PY) -m pytest -q tests/unit

# The web extension in headless Chromium against a real ComfyUI server (installs Debian's
# chromium and playwright-core first; screenshots in tests/output/).
test-browser: setup
	bash scripts/setup_browser.sh
	$(PY) -m pytest -q tests/integration/browser

workflows: setup
	$(PY) scripts/make_workflows.py

demo: setup
	$(PY) scripts/demo.py

# The quality sweep (~15 min), Calibrated Cache against every other setting at CFG 1 and 4
# (~10 min each), how far a plan carries to unseen noise (~8 min), Block Cache against the
# whole-stack settings (~17 min), and the trajectory's own PSNR floor (~3 min); tables in
# bench/results/.
bench: setup
	$(PY) bench/quality.py
	$(PY) bench/calibrated.py --cfg 1
	$(PY) bench/calibrated.py --cfg 4
	$(PY) bench/calibration_transfer.py --cfg 1
	$(PY) bench/block_cache.py --cfg 1
	$(PY) bench/trajectory_floor.py

# The published archive as the publishing tool builds it (`comfy node pack`, comfy-cli in
# .venv-tools): every shipped file, the help pages among them, and the pack loads from it.
check-pack: setup
	test -x .venv-tools/bin/comfy || { python3.11 -m venv .venv-tools && .venv-tools/bin/pip install -q comfy-cli==1.23.0; }
	$(PY) scripts/check_pack.py
