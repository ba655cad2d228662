"""ComfyUI's own loader finds the pack and registers the node ids that shared workflows use."""
import asyncio

import nodes as comfy_nodes
import pytest
from helpers import ROOT

EXPECTED = {
    "DiTCacheApplyFORA": "Apply FORA",
    "DiTCacheTeaCacheThreshold": "TeaCache-style Threshold",
    "DiTCacheMagnitudeThreshold": "Magnitude-Ratio Threshold",
    "DiTCacheTaylorSeerForecast": "TaylorSeer Forecast",
    "DiTCacheBlockProfiler": "Block Profiler",
    "DiTCacheLoadProfile": "Load Cache Profile",
}


@pytest.fixture(scope="module")
def registered():
    assert asyncio.run(comfy_nodes.load_custom_node(str(ROOT)))
    return comfy_nodes.NODE_CLASS_MAPPINGS


def test_comfyui_loader_registers_every_node_under_its_fixed_id(registered):
    for node_id, display in EXPECTED.items():
        node = registered[node_id]
        schema = node.GET_SCHEMA()
        assert schema.display_name == display
        assert schema.category == "sampling/dit_cache"


def test_every_input_has_a_tooltip(registered):
    for node_id in EXPECTED:
        schema = registered[node_id].GET_SCHEMA()
        for item in schema.inputs:
            assert item.tooltip, f"{node_id}.{item.id} has no tooltip"


def test_pyproject_is_ready_for_the_comfy_registry():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    comfy = project["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"] == "DiT Cache"
    assert comfy["Icon"].endswith("/docs/icon.png") and (ROOT / "docs" / "icon.png").is_file()
    assert "web" not in comfy  # WEB_DIRECTORY serves web/; both would load the script twice
    assert project["project"]["dependencies"] == [] and project["project"]["urls"]["Repository"]
    # requirements.txt asks for nothing ComfyUI does not already install
    wanted = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert wanted == []
