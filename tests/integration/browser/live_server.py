"""A real ComfyUI server (this runtime, --cpu, on 127.0.0.1, the frontend from PyPI's
comfyui-frontend-package) with this pack and the tiny-model loaders as custom nodes, for the
tests that talk to it as a browser or an HTTP client does (conftest.py makes it a fixture)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "reference"))

import comfy_runtime  # noqa: E402  (booted by tests/conftest.py)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def http_post_json(url: str, body: dict) -> tuple[int, dict]:
    """POST `body` as JSON: the status and the decoded answer (an error status included)."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def running_server(tmp_path_factory):
    """Start the server; yield its URL and its base directory (models, output, custom_nodes)."""
    from tiny_loaders import place_model_files

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
            http_get(url + "/system_stats")
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
