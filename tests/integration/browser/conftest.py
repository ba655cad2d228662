"""The live ComfyUI server the tests in this folder talk to (live_server.py), one per module."""
from __future__ import annotations

import pytest

from live_server import running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from running_server(tmp_path_factory)
