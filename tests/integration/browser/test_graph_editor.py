"""The web extension in a real graph editor: the ComfyUI server of conftest.py driven by headless
Chromium through playwright-core (check_graph_editor.mjs).

Run with `make test-browser` (it installs Debian's chromium and the npm package first).
Screenshots land in tests/output/.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from live_server import ROOT, http_get

HERE = Path(__file__).resolve().parent
SCREENSHOTS = ROOT / "tests" / "output"


def test_server_serves_the_extension_and_the_workflow_templates(server):
    url, _ = server
    extensions = json.loads(http_get(url + "/extensions"))
    assert "/extensions/comfyui-dit-cache/dit_cache.js" in extensions
    templates = json.loads(http_get(url + "/workflow_templates"))
    shipped = sorted(p.stem for p in (ROOT / "example_workflows").glob("*.json"))
    assert sorted(templates["comfyui-dit-cache"]) == shipped
    info = json.loads(http_get(url + "/object_info/DiTCacheMagnitudeThreshold"))
    assert info["DiTCacheMagnitudeThreshold"]["display_name"] == "Magnitude-Ratio Threshold (MagCache-style)"


def with_node_ids_from(workflow: dict, first: int) -> dict:
    """`workflow` (UI format) with its nodes renumbered from `first`, links following."""
    import copy

    out = copy.deepcopy(workflow)
    ids = {node["id"]: first + k for k, node in enumerate(out["nodes"])}
    for node in out["nodes"]:
        node["id"] = ids[node["id"]]
    for link in out["links"]:
        link[1], link[3] = ids[link[1]], ids[link[3]]
    out["last_node_id"] = first + len(ids) - 1
    return out


def with_second_sampler(workflow: dict) -> dict:
    """`workflow` (UI format) with its KSampler -> VAEDecode -> SaveImage chain copied: the copy's
    sampler takes the same inputs (the caching node's model among them) and another seed. Both
    seeds differ from the workflow's (and from the other runs of the browser test), so that the
    server samples both rather than reuse outputs."""
    import copy

    out = copy.deepcopy(workflow)
    nodes = {node["id"]: node for node in out["nodes"]}
    chain = [next(n for n in out["nodes"] if n["type"] == "KSampler")]
    while chain[-1]["type"] != "SaveImage":
        link = chain[-1]["outputs"][0]["links"][0]
        chain.append(nodes[next(entry[3] for entry in out["links"] if entry[0] == link)])
    new_ids = {node["id"]: out["last_node_id"] + 1 + k for k, node in enumerate(chain)}
    chain[0]["widgets_values"][0] += 1   # 43 and 44: unlike the other runs' 42 and 1042
    for node in chain:   # in order: a copy's inputs come from copies made before it, or the originals
        twin = copy.deepcopy(node)
        twin["id"], twin["pos"] = new_ids[node["id"]], [twin["pos"][0], twin["pos"][1] + 700]
        if twin["type"] == "KSampler":
            twin["widgets_values"][0] += 1
        for output in twin.get("outputs", []):
            output["links"] = []
        nodes[twin["id"]] = twin
        for slot, entry in enumerate(twin.get("inputs", [])):
            source = next((link for link in out["links"] if link[0] == entry.get("link")), None)
            if source is None:
                continue
            out["last_link_id"] += 1
            origin = new_ids.get(source[1], source[1])
            out["links"].append([out["last_link_id"], origin, source[2], twin["id"], slot, source[5]])
            entry["link"] = out["last_link_id"]
            nodes[origin]["outputs"][source[2]]["links"].append(out["last_link_id"])
        out["nodes"].append(twin)
    out["last_node_id"] += len(chain)
    return out


@pytest.fixture(scope="module")
def found(server, tmp_path_factory) -> dict:
    """What check_graph_editor.mjs found in one browser session over the workflows below, each
    queued once; the tests below assert on these findings."""
    from helpers import register_workflow_nodes
    import copy

    import workflow_format as wf
    from tiny_loaders import tiny_ui_workflow

    if not Path("/usr/bin/chromium").exists() or not (HERE / "node_modules" / "playwright-core").is_dir():
        pytest.fail("Chromium or playwright-core is missing: run `make test-browser`, which installs both")
    register_workflow_nodes()  # the swap reads the node definitions
    url, base = server
    workflows = {name: tiny_ui_workflow(json.loads((ROOT / "example_workflows" / f).read_text()))
                 for name, f in (("report", "flux_dev_t2i_teacache.json"),
                                 ("profiler", "flux_dev_block_profiler.json"),
                                 ("dit_cache", "flux_dev_t2i_dit_cache.json"),
                                 ("quality", "flux_dev_t2i_quality_check.json"))}
    foreign = copy.deepcopy(workflows["report"])
    next(n for n in foreign["nodes"] if n["type"] == "KSampler")["widgets_values"][0] += 1000   # seed 1042
    for name, workflow in (("foreign", foreign), ("two_samplers", with_second_sampler(workflows["report"]))):
        renumbered = with_node_ids_from(workflow, 1000)
        workflows[name] = {"ui": renumbered, "api": wf.ui_to_api(renumbered)}
    path = tmp_path_factory.mktemp("editor") / "workflows.json"
    path.write_text(json.dumps(workflows))
    SCREENSHOTS.mkdir(exist_ok=True)
    done = subprocess.run(["node", "check_graph_editor.mjs", url, str(path), str(SCREENSHOTS)],
                          cwd=HERE, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:] + (base / "server.log").read_text()[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_nodes_show_their_run_report_and_the_profiler_its_heatmap(found, server):
    _, base = server
    assert found["extension_registered"] and found["templates_listed"]
    assert found["plain_elements_before"] == 0 and found["plain_elements_after"] == 0
    # 28 steps at rel_l1_thresh 0.4 with at most 3 reuses in a row: a real split, not all full
    full, steps = found["report_text"].split(" full")[0].split("/")
    assert steps == "28" and 0 < int(full) < 28, found["report_text"]
    assert " · est. " in found["report_text"] and found["report_visible"]
    assert found["report_notes_shown"] == 0   # what a speed ran and why: DiT Cache's alone
    assert found["report_cleared"]
    assert found["first_tab_report_again"] and found["second_tab_report_lines"] == 0
    assert found["subgraph_report"] and "/28 full" in found["subgraph_report"], found["subgraph_report"]
    # the server did send the other client's report here; the page did not show it
    assert found["foreign_prompt_finished"] and found["foreign_prompt_report_events"] == 1, found
    assert found["foreign_prompt_report_lines"] == 0, found
    lines = found["two_sampler_lines"]
    assert isinstance(lines, list), (found, (base / "server.log").read_text()[-3000:])
    assert lines[0].startswith("run 1: ") and lines[1].startswith("run 2: ") and "/28 full" in lines[1], lines
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


def test_the_dit_cache_node_says_which_method_and_setting_it_chose(found):
    workflow = json.loads((ROOT / "example_workflows" / "flux_dev_t2i_dit_cache.json").read_text())
    speed = next(n for n in workflow["nodes"] if n["type"] == "DiTCacheSpeed")["widgets_values"][0]
    chosen = json.loads((ROOT / "cache_core" / "speeds" / "speed_choices.json").read_text())["families"]["flux"][speed]
    full, steps = found["dit_cache_report_text"].split(" full")[0].split("/")
    assert steps == "28" and 0 < int(full) < 28 and found["dit_cache_report_visible"], found["dit_cache_report_text"]
    # the line's tooltip: "DiT Cache (FORA interval=3 warmup=1): DiT Cache: 28 steps, 10 full, ..."
    assert found["dit_cache_report_title"].startswith(f"DiT Cache ({chosen['method']} "), found["dit_cache_report_title"]
    # the report the page received says what runs and why: "Balanced runs FORA interval 3: the best ..."
    [report] = found["dit_cache_report_events"]
    [why] = [note for note in report["notes"]
             if note.startswith(f"{speed.split(' (')[0]} runs {chosen['method']} {chosen['setting']}: ")]
    # and the node shows it under its report line, in full and within the node
    [shown] = found["dit_cache_note_on_node"]
    assert shown == {"text": why, "drawn": True, "inside": True}, (shown, why)
    assert (SCREENSHOTS / "graph_editor_dit_cache.png").stat().st_size > 10_000


def test_the_quality_check_sends_its_summary_and_its_difference_reaches_the_preview(found):
    outputs = found["quality_outputs"]
    assert outputs, "Cache Quality Check or the preview it feeds did not run"
    [summary] = outputs["check"]["text"]
    # the tiny VAE decodes both runs to the same black picture: "PSNR mean identical, ..."
    assert summary.startswith("PSNR mean ") and "; SSIM mean " in summary, summary
    [image] = outputs["preview"]["images"]
    assert image["type"] == "temp" and found["quality_preview_image_width"] == 64, (image, found)
    assert (SCREENSHOTS / "graph_editor_quality_check.png").stat().st_size > 10_000


def test_the_quality_check_shows_its_summary_on_the_node_until_an_input_changes(found):
    [summary] = found["quality_outputs"]["check"]["text"]
    # the graph editor shows a text output only for its own nodes: dit_cache.js draws it
    [shown] = found["quality_summary_on_node"]
    assert shown == {"text": summary, "drawn": True, "inside": True}, (shown, summary)
    assert found["quality_summary_after_disconnect"] == [], found["quality_summary_after_disconnect"]


def test_the_profiler_shows_one_progress_bar_and_text_over_the_whole_calibration(found):
    # the screenshot was taken with the bar between 20% and 90% and the text of a plan in flight on the node
    assert found["calibration_in_flight"], found["calibration_progress"]
    assert all(0.2 <= fraction <= 0.9 for fraction in found["calibration_screenshot_progress"]), found
    assert found["calibration_text_on_node"].startswith("Calibrating: "), found["calibration_text_on_node"]
    # one bar (ComfyUI's ProgressBar on the profiler's node): from the start to its max, never back
    progress = found["calibration_progress"]
    values, maxima = [p["value"] for p in progress], {p["max"] for p in progress}
    assert len(maxima) == 1 and values[0] < 0.1 * max(maxima) and values[-1] == max(maxima), progress
    assert values == sorted(values) and len(values) >= 10, values
    # the text (the server's send_progress_text): each stage, a plan in flight with its figures, the end
    texts = found["calibration_texts"]
    # (the workflow's calibrate_speedups "4, 6": the faster one first)
    assert re.fullmatch(r"Calibrating: \d+ uncached reference run\(s\)", texts[0]), texts
    assert any(t.startswith("Calibrating: 6x (1 of 2 speedups); last plan ") and " dB" in t for t in texts), texts
    assert any(t.startswith("Calibrating: 4x (2 of 2 speedups)") for t in texts), texts
    assert texts[-1] == "calibration done", texts
    assert (SCREENSHOTS / "graph_editor_calibration_progress.png").stat().st_size > 10_000
