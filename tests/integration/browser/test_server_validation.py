"""Hostile prompts sent over HTTP to a real ComfyUI server on 127.0.0.1 (live_server.py), as any
client of a shared server can: the /prompt route refuses each with a validation error naming the
problem, before anything runs, and says nothing about files outside the profiles folder. A
listed profile, saved after the server started, is accepted and runs."""
from __future__ import annotations

import json
import shutil
import time

import pytest

from live_server import http_get, http_post_json

REFUSED = "is not a profile in the profiles folder"


@pytest.fixture(scope="module")
def profiles(server, tmp_path_factory):
    """The server's profiles folder holding one real profile (made in this process by the Block
    Profiler on the tiny FLUX), a copy of it outside the folder, and a link out of the folder."""
    import folder_paths
    import tiny_models
    from helpers import STEPS, run_node

    from comfyui_dit_cache.nodes import BlockProfiler

    _, base = server
    made = tmp_path_factory.mktemp("made")
    previous = folder_paths.get_output_directory()
    folder_paths.set_output_directory(str(made))
    try:
        flux = tiny_models.tiny_flux()
        (patched,) = run_node(BlockProfiler, model=flux.patcher, profile_name="good")
        tiny_models.sample(patched, flux, steps=STEPS)
    finally:
        folder_paths.set_output_directory(previous)
    folder = base / "output" / "dit_cache" / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(made / "dit_cache" / "profiles" / "good.json", folder / "good.json")
    outside = base / "outside.json"
    shutil.copy(folder / "good.json", outside)
    (folder / "link.json").symlink_to(outside)
    return folder, outside


def _load_profile_prompt(choice: str) -> dict:
    return {"1": {"class_type": "DiTCacheLoadProfile", "inputs": {"profile": choice}},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 1]}}}


def _profiler_prompt(profile_name: str, calibrate_speedups: str = "") -> dict:
    return {"1": {"class_type": "DiTCacheTestTinyDiffusionModel", "inputs": {"unet_name": "flux1-dev.safetensors"}},
            "2": {"class_type": "DiTCacheBlockProfiler",
                  "inputs": {"model": ["1", 0], "profile_name": profile_name, "calibrate_speedups": calibrate_speedups,
                             "extra_seeds": 1, "search_evaluations": 12}},
            "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}}}


def _queue(url: str, prompt: dict) -> tuple[int, dict]:
    return http_post_json(url + "/prompt", {"prompt": prompt})


def _history_size(url: str) -> int:
    return len(json.loads(http_get(url + "/history")))


@pytest.mark.parametrize("choice", ["/etc/hostname", "../../../../etc/passwd", "../../outside.json", "link.json",
                                    "missing.json", "good"])
def test_a_profile_choice_outside_the_folder_is_refused_before_anything_runs(server, profiles, choice):
    url, base = server
    before = _history_size(url)
    status, answer = _queue(url, _load_profile_prompt(choice))
    assert status == 400, answer
    errors = json.dumps(answer["node_errors"])
    assert REFUSED in errors and "custom_validation_failed" in errors
    # the same words for a missing file and one outside the folder: nothing to learn about either
    assert "does not exist" not in errors and "No such file" not in errors and str(base) not in errors
    assert _history_size(url) == before and json.loads(http_get(url + "/queue"))["queue_pending"] == []


@pytest.mark.parametrize("name, speedups, problem", [("x" * 260, "", "profile_name is 260 characters long"),
                                                     ("///", "", "has no usable characters"),
                                                     ("fine", "4, 99", "calibrate_speedups must be numbers above 1")])
def test_a_profiler_setting_that_would_fail_after_sampling_is_refused_before_it(server, profiles, name, speedups,
                                                                                problem):
    url, _ = server
    status, answer = _queue(url, _profiler_prompt(name, speedups))
    assert status == 400, answer
    assert problem in json.dumps(answer["node_errors"])


def test_a_listed_profile_saved_after_the_server_started_is_accepted_and_runs(server, profiles):
    url, _ = server
    status, answer = _queue(url, _load_profile_prompt("good.json"))
    assert status == 200 and not answer["node_errors"], answer
    prompt_id = answer["prompt_id"]
    deadline = time.time() + 120
    while time.time() < deadline:
        entry = json.loads(http_get(url + f"/history/{prompt_id}")).get(prompt_id)
        if entry and entry["status"]["completed"]:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the prompt did not finish")
    assert entry["status"]["status_str"] == "success"
