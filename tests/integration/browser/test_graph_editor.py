"""The web extension in a real graph editor: a ComfyUI server (this runtime, --cpu, loopback,
the frontend from PyPI's comfyui-frontend-package) with this pack and the tiny-model loaders,
driven by headless Chromium through playwright-core (check_graph_editor.mjs).

Run with `make test-browser` (it installs Debian's chromium and the npm package first).
Screenshots land in tests/output/.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "reference"))

import comfy_runtime  # noqa: E402  (booted by tests/conftest.py)

SCREENSHOTS = ROOT / "tests" / "output"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real ComfyUI server on loopback with this pack and the tiny loaders as custom nodes."""
    from tiny_loaders import place_model_files

    if not Path("/usr/bin/chromium").exists() or not (HERE / "node_modules" / "playwright-core").is_dir():
        pytest.fail("Chromium or playwright-core is missing: run `make test-browser`, which installs both")
    base = tmp_path_factory.mktemp("comfy-server")
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / "comfyui-dit-cache").symlink_to(ROOT)
    (base / "custom_nodes" / "tiny_loaders").symlink_to(ROOT / "tests" / "fixtures" / "tiny_loaders")
    place_model_files(base / "models")
    port = _free_port()
    log = open(base / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--base-directory",
         str(base), "--disable-auto-launch", "--database-url", "sqlite:///:memory:"],
        cwd=comfy_runtime.comfyui_path(), stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while True:
        try:
            _get(url + "/system_stats")
            break
        except OSError:
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                pytest.fail("ComfyUI did not start:\n" + (base / "server.log").read_text()[-4000:])
            time.sleep(1)
    yield url, base
    process.terminate()
    process.wait(timeout=30)
    log.close()


def test_server_serves_the_extension_and_the_workflow_templates(server):
    url, _ = server
    extensions = json.loads(_get(url + "/extensions"))
    assert "/extensions/comfyui-dit-cache/dit_cache.js" in extensions
    templates = json.loads(_get(url + "/workflow_templates"))
    shipped = sorted(p.stem for p in (ROOT / "example_workflows").glob("*.json"))
    assert sorted(templates["comfyui-dit-cache"]) == shipped
    info = json.loads(_get(url + "/object_info/DiTCacheMagnitudeThreshold"))
    assert info["DiTCacheMagnitudeThreshold"]["display_name"] == "Magnitude-Ratio Threshold (MagCache-style)"


def test_nodes_show_their_run_report_and_the_profiler_its_heatmap(server, tmp_path):
    from helpers import register_workflow_nodes
    from tiny_loaders import tiny_ui_workflow

    register_workflow_nodes()  # the swap reads the node definitions
    url, base = server
    workflows = {name: tiny_ui_workflow(json.loads((ROOT / "example_workflows" / f).read_text()))
                 for name, f in (("report", "flux_dev_t2i_teacache.json"),
                                 ("profiler", "flux_dev_block_profiler.json"))}
    (tmp_path / "workflows.json").write_text(json.dumps(workflows))
    SCREENSHOTS.mkdir(exist_ok=True)
    done = subprocess.run(["node", "check_graph_editor.mjs", url, str(tmp_path / "workflows.json"), str(SCREENSHOTS)],
                          cwd=HERE, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:] + (base / "server.log").read_text()[-4000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])

    assert found["extension_registered"] and found["templates_listed"]
    assert found["plain_elements_before"] == 0 and found["plain_elements_after"] == 0
    # 28 steps at rel_l1_thresh 0.4 with at most 3 reuses in a row: a real split, not all full
    full, steps = found["report_text"].split(" full")[0].split("/")
    assert steps == "28" and 0 < int(full) < 28, found["report_text"]
    assert " · est. " in found["report_text"] and found["report_visible"]
    assert found["report_cleared"]
    assert found["first_tab_report_again"] and found["second_tab_report_lines"] == 0
    assert found["subgraph_report"] and "/28 full" in found["subgraph_report"], found["subgraph_report"]
    assert found["profiler_report_text"].startswith("28/28 full")
    # legible on the node: the picture is drawn at 828 px with 18-22 px text and axis labels, and
    # shown on a node widened to at least 500 px (the canvas zoom can shrink it further)
    width, height = found["heatmap_size"]
    assert width >= 800 and height >= 300
    assert found["heatmap_shown_width"] >= 250, found["heatmap_shown_width"]
    saved_heatmap = base / "output" / "dit_cache" / "profiles" / "flux-dev-28steps.png"
    with Image.open(saved_heatmap) as image:
        assert image.size == (width, height)
    assert not found["console_errors"], found["console_errors"]
    for shot in ("graph_editor_report.png", "graph_editor_profiler.png", "graph_editor_templates.png"):
        assert (SCREENSHOTS / shot).stat().st_size > 10_000
