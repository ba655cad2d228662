"""The example workflows in example_workflows/: each checked against the real node definitions of
ComfyUI plus this pack, validated by ComfyUI's own prompt validation, and executed by ComfyUI's
own executor with the model loaders swapped for tiny models (tests/fixtures/tiny_loaders)."""
from __future__ import annotations

import asyncio
import json
import logging
import numbers
import re
from pathlib import Path

import pytest
import torch
from PIL import Image

import workflow_format as wf
from helpers import ROOT, register_workflow_nodes

WORKFLOW_DIR = ROOT / "example_workflows"
WORKFLOWS = sorted(p.name for p in WORKFLOW_DIR.glob("*.json"))
PROFILER_WORKFLOW = "flux_dev_block_profiler.json"
METHOD_OF = {"DiTCacheTeaCacheThreshold": "TeaCache", "DiTCacheTaylorSeerForecast": "TaylorSeer",
             "DiTCacheApplyFORA": "FORA", "DiTCacheMagnitudeThreshold": "MagnitudeRatio",
             "DiTCacheBlockProfiler": "Profiler", "DiTCacheCalibrated": "Calibrated", "DiTCacheBlockCache": "BlockCache",
             "DiTCacheSpeed": "DiT Cache"}


class Transport:
    """Where ComfyUI's executor sends its progress messages (a server's websocket in the app)."""

    def __init__(self) -> None:
        self.client_id = None
        self.last_node_id = None
        self.messages: list[tuple[str, dict]] = []

    def send_sync(self, event, data, sid=None) -> None:
        self.messages.append((event, data))


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """ComfyUI's built-in and extra nodes, this pack and the tiny loaders registered; the model
    files the workflows name present (empty: only their names are checked); an input image."""
    import folder_paths
    from tiny_loaders import place_model_files

    register_workflow_nodes()
    base = tmp_path_factory.mktemp("comfy")
    for folder, path in place_model_files(base / "models").items():
        folder_paths.add_model_folder_path(folder, str(path), is_default=True)
    (base / "input").mkdir()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(base / "input" / "example.png")
    previous = folder_paths.get_input_directory(), folder_paths.get_output_directory()
    folder_paths.set_input_directory(str(base / "input"))
    folder_paths.set_output_directory(str(base / "output"))
    yield base
    folder_paths.set_input_directory(previous[0])
    folder_paths.set_output_directory(previous[1])


def load(name: str) -> dict:
    return json.loads((WORKFLOW_DIR / name).read_text())


def on_tiny_models(name: str) -> dict:
    """The workflow's API prompt with the loaders swapped for tiny models, the picture small
    (the same swap the browser test loads into the graph editor)."""
    from tiny_loaders import tiny_ui_workflow

    return wf.ui_to_api(tiny_ui_workflow(load(name)))


def execute(prompt: dict) -> tuple[object, Transport]:
    import execution

    valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt("test", prompt, None))
    assert valid, f"{error} {node_errors}"
    transport = Transport()
    executor = execution.PromptExecutor(transport, cache_args={"lru": 0, "ram": 0, "ram_inactive": 0})
    executor.execute(prompt, "test", {}, outputs)
    errors = [data for event, data in transport.messages if event == "execution_error"]
    assert executor.success, errors
    return executor, transport


@pytest.fixture(scope="module")
def flux_profile(runtime) -> Path:
    """The profile the profiler workflow saves, which the profiled workflow loads."""
    execute(on_tiny_models(PROFILER_WORKFLOW))
    path = runtime / "output" / "dit_cache" / "profiles" / "flux-dev-28steps.json"
    assert path.is_file() and path.with_suffix(".png").is_file()
    return path


def test_every_workflow_asked_for_is_there():
    assert {"flux_dev_t2i_teacache.json", "flux_dev_t2i_taylorseer.json", "wan21_t2v_1.3b_teacache.json",
            "wan21_i2v_480p_fora.json", "hunyuan_video_t2v_taylorseer.json", PROFILER_WORKFLOW,
            "qwen_image_t2i_magnitude.json", "flux2_dev_t2i_taylorseer.json",
            "wan22_t2v_a14b_two_experts_magnitude.json", "hunyuan_video_15_t2v_magnitude.json",
            "flux_dev_t2i_calibrated.json", "flux_dev_t2i_block_cache.json", "flux_dev_t2i_quality_check.json"} <= set(
                WORKFLOWS)


def _value_fits(spec: wf.InputSpec, value) -> bool:
    options = spec.options
    if spec.type == "COMBO":
        return value in spec.choices
    if spec.type == "BOOLEAN":
        return isinstance(value, bool)
    if spec.type == "STRING":
        return isinstance(value, str)
    if spec.type == "INT" and (isinstance(value, bool) or not isinstance(value, int)):
        return False
    if spec.type == "FLOAT" and not isinstance(value, numbers.Real):
        return False
    return options.get("min", -float("inf")) <= value <= options.get("max", float("inf"))


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_matches_the_node_definitions(name, runtime, flux_profile):
    import nodes

    workflow = load(name)
    by_id = {n["id"]: n for n in workflow["nodes"]}
    for node in workflow["nodes"]:
        if node["type"] in wf.EDITOR_ONLY_TYPES:
            continue
        assert node["type"] in nodes.NODE_CLASS_MAPPINGS, f"node #{node['id']}: {node['type']} is not installed"
        slots = wf.widget_slots(node["type"])
        values = node.get("widgets_values", [])
        assert len(values) == len(slots), f"node #{node['id']} {node['type']}: {len(values)} widget values"
        for (slot, spec), value in zip(slots, values):
            if spec is None:
                assert value in (wf.CONTROL_VALUES if slot == wf.CONTROL_AFTER_GENERATE else ("image",))
            else:
                assert _value_fits(spec, value), f"node #{node['id']} {node['type']}.{slot} = {value!r}"
        specs = {s.name: s for s in wf.input_specs(node["type"])}
        for slot in node["inputs"]:
            if not specs[slot["name"]].optional:
                assert slot["link"] is not None, f"node #{node['id']}: required input {slot['name']} unconnected"
    for link_id, source, source_slot, target, target_slot, link_type in workflow["links"]:
        produced = wf.output_types(by_id[source]["type"])[source_slot]
        target_input = by_id[target]["inputs"][target_slot]
        expected = {s.name: s for s in wf.input_specs(by_id[target]["type"])}[target_input["name"]].type
        assert produced == link_type == expected, f"link {link_id}: {produced} -> {expected}"
        assert target_input["link"] == link_id and link_id in by_id[source]["outputs"][source_slot]["links"]

    import execution
    valid, error, _, node_errors = asyncio.run(execution.validate_prompt("check", wf.ui_to_api(workflow), None))
    assert valid, f"{error} {node_errors}"


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_tells_the_manager_what_to_install_and_shows_its_note(name, runtime):
    """As ComfyUI's own templates: every node names its pack (this pack's registry id, or
    comfy-core) so the Manager can install a missing one; every model file a loader names comes
    with its download address and folder for the missing-models dialog; the explanation is a
    note on the canvas."""
    import tomllib

    from comfyui_dit_cache.nodes import NODE_LIST

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pack_nodes = {cls.GET_SCHEMA().node_id for cls in NODE_LIST}
    workflow = load(name)
    notes = [n for n in workflow["nodes"] if n["type"] == "MarkdownNote"]
    assert len(notes) == 1 and len(notes[0]["widgets_values"][0]) > 40
    for node in workflow["nodes"]:
        if node["type"] in wf.EDITOR_ONLY_TYPES:
            continue
        properties = node["properties"]
        expected = (project["name"], project["version"]) if node["type"] in pack_nodes else ("comfy-core", "0.3.75")
        assert (properties["cnr_id"], properties["ver"]) == expected, node["type"]
        if node["type"] in ("UNETLoader", "DualCLIPLoader", "CLIPLoader", "VAELoader", "CLIPVisionLoader"):
            files = [v for v in node["widgets_values"] if isinstance(v, str) and v.endswith(".safetensors")]
            models = properties["models"]
            assert sorted(m["name"] for m in models) == sorted(files)
            assert all(m["url"].startswith("https://huggingface.co/") and m["url"].endswith("/" + m["name"]) and
                       m["directory"] in ("diffusion_models", "text_encoders", "vae", "clip_vision") for m in models)


def steps_sampled_through(workflow: dict, cache_node: dict) -> int:
    """How many steps the sampler fed by `cache_node` runs: a KSampler's steps, or the slice
    start..end of a KSamplerAdvanced (capped at its steps)."""
    by_id = {n["id"]: n for n in workflow["nodes"]}
    targets = [by_id[target] for _, source, _, target, _, _ in workflow["links"] if source == cache_node["id"]]
    sampler = next(n for n in targets if n["type"] in ("KSampler", "KSamplerAdvanced"))
    values = dict(zip((name for name, _ in wf.widget_slots(sampler["type"])), sampler["widgets_values"]))
    if sampler["type"] == "KSampler":
        return values["steps"]
    return min(values["end_at_step"], values["steps"]) - values["start_at_step"]


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_runs_end_to_end_on_tiny_models(name, runtime, flux_profile, caplog):
    """Each cache node in the workflow reports the steps its sampler ran (for two experts, each
    its own slice of the schedule), and the workflow saves its picture or video."""
    workflow = load(name)
    prompt = on_tiny_models(name)
    cache_nodes = [n for n in workflow["nodes"] if n["type"] in METHOD_OF]
    assert cache_nodes
    with caplog.at_level(logging.INFO):
        executor, _ = execute(prompt)
    for node in cache_nodes:
        method = METHOD_OF[node["type"]]
        expected = f"[dit-cache] {method}: {steps_sampled_through(workflow, node)} steps"
        assert caplog.text.count(expected) >= 1, f"node #{node['id']}: no '{expected}' in the log"
    reports = [line for line in caplog.text.splitlines() if "[dit-cache] " in line and " steps, " in line]
    assert len(reports) == len(cache_nodes), reports
    for line in reports:   # every caching node skipped something (the profiler computes every step)
        found = re.search(r"\[dit-cache\] (\w+)[^:]*: (\d+) steps, (\d+) full(.*)", line)
        assert found, line
        method, steps, full, rest = found[1], int(found[2]), int(found[3]), found[4]
        if method == "Profiler":
            assert full == steps, line
        else:
            blocks = re.search(r"blocks computed (\d+)/(\d+)", rest)
            assert full < steps or (blocks and int(blocks[1]) < int(blocks[2])), f"nothing skipped: {line}"
    saved = [item for out in executor.history_result["outputs"].values() for item in out.get("images", [])
             if item["type"] == "output"]
    assert saved, "the workflow saved nothing"
    video = any(n["type"] == "SaveAnimatedWEBP" for n in workflow["nodes"])
    for item in saved:
        with Image.open(runtime / "output" / item["subfolder"] / item["filename"]) as image:
            assert image.size == (64, 64)
            assert getattr(image, "n_frames", 1) == (5 if video else 1)   # 5 frames = 2 latent frames


@pytest.mark.parametrize("name", ["flux_dev_t2i_magnitude_profiled.json", "flux_dev_t2i_calibrated.json",
                                  "flux_dev_t2i_block_cache.json"])
def test_profiled_workflows_use_the_profile_the_profiler_workflow_saved(name, runtime, flux_profile):
    from comfyui_dit_cache.cache_core.profiles.profile_io import load_profile

    workflow = load(name)
    loader = next(n for n in workflow["nodes"] if n["type"] == "DiTCacheLoadProfile")
    assert loader["widgets_values"] == [flux_profile.name]
    profile = load_profile(flux_profile)
    assert len(profile["residual_magnitude_ratio"]) == 28
    assert [(p["speedup"], len(p["plan"])) for p in profile["calibration"]["plans"]] == [(4.0, 28), (6.0, 28)]


def test_a_workflow_that_feeds_the_wrong_type_is_refused_by_name(runtime):
    """What ComfyUI says when a shared workflow is wired wrong: the cache node's model input fed
    a CLIP. The message names the node input and both types."""
    import execution

    prompt = wf.ui_to_api(load("flux_dev_t2i_teacache.json"))
    cache_id = next(i for i, n in prompt.items() if n["class_type"] == "DiTCacheTeaCacheThreshold")
    clip_id = next(i for i, n in prompt.items() if n["class_type"] == "DualCLIPLoader")
    prompt[cache_id]["inputs"]["model"] = [clip_id, 0]
    valid, _, _, node_errors = asyncio.run(execution.validate_prompt("wrong", prompt, None))
    assert not valid
    errors = node_errors[cache_id]["errors"]
    assert [e["details"] for e in errors] == ["model, received_type(CLIP) mismatch input_type(MODEL)"]


def test_tiny_text_encoder_gives_the_reference_width(runtime):
    from tiny_loaders import WIDTH, TinyTextEncoder

    (clip,) = TinyTextEncoder().load()
    [[cond, extra]] = clip.encode_from_tokens_scheduled(clip.tokenize("a red circle"))
    assert cond.shape[-1] == WIDTH and extra["pooled_output"].shape[-1] == WIDTH
    assert torch.isfinite(cond).all()
