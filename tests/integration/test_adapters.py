"""The registry of model-family adapters: every registered family has a tiny model the generic
suite runs on and declares its published presets (or that none exist); a family whose ComfyUI
module is missing is skipped without stopping the others."""
from __future__ import annotations

import logging
import math
import sys

import pytest
import torch

import tiny_models

from comfyui_dit_cache.cache_core import adapters as registry
from comfyui_dit_cache.cache_core.attachment.between_blocks import call_adds_between_blocks
from comfyui_dit_cache.cache_core.adapters import (ADAPTERS, MagnitudePreset, ModelAdapter, TeaCachePreset, find_adapter,
                                                   supported_families)
from comfyui_dit_cache.cache_core.profiles.curve_sources import (GENERIC_CURVE_STEPS, RAW_SIGNAL, generic_magnitude_curve,
                                                      magnitude_curve, teacache_coefficients, uncalibrated_note)


def test_every_registered_adapter_has_a_tiny_model_and_every_tiny_model_an_adapter(tiny_cache):
    """The parametrised suite (`tiny` fixture) runs on tiny_models.BUILDERS; each registered
    family, and the whole-model level, must be among them, so the generic suite covers it."""
    covered = set()
    for name, build in tiny_models.BUILDERS.items():
        model = tiny_cache.setdefault(name, build())
        adapter = find_adapter(model.patcher.model.diffusion_model)
        assert adapter is not None, f"tiny model {name} has no registered adapter"
        assert adapter.family == model.family
        covered.add(adapter.family)
    assert {adapter.family for adapter in ADAPTERS} <= covered
    assert any(family.startswith("model:") for family in covered)   # the whole-model level too


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.family)
def test_each_adapter_declares_its_presets(adapter: ModelAdapter):
    assert adapter.display_name and adapter.display_name in supported_families()
    assert isinstance(adapter.teacache_presets, tuple) and isinstance(adapter.magnitude_presets, tuple)
    assert all(isinstance(p, TeaCachePreset) and p.coefficients and p.threshold > 0 for p in adapter.teacache_presets)
    assert all(isinstance(p, MagnitudePreset) and len(p.ratios) >= 2 for p in adapter.magnitude_presets)
    if adapter.teacache_presets:
        assert teacache_coefficients(adapter, "auto", None) == adapter.teacache_presets[0].coefficients
    if adapter.magnitude_presets:
        assert magnitude_curve(adapter, "auto", None) == adapter.magnitude_presets[0].ratios


def test_preset_names_are_unique_across_families():
    for presets in (registry.teacache_presets(), registry.magnitude_presets()):
        names = [p.name for p in presets]
        assert len(names) == len(set(names))


def test_a_family_without_published_presets_decides_on_an_uncalibrated_default_and_says_so():
    class NoPresets(type(ADAPTERS[0])):
        display_name = "Unpublished"
        teacache_presets = ()
        magnitude_presets = ()

    adapter = NoPresets()
    assert teacache_coefficients(adapter, "auto", None) == RAW_SIGNAL
    curve = magnitude_curve(adapter, "auto", None)
    assert curve == generic_magnitude_curve() and len(curve) == GENERIC_CURVE_STEPS
    assert all(0.5 < r < 1.5 for r in curve) and curve[-1] < 1.0   # the published curves' shared fall at the end
    for method in ("TeaCache", "MagnitudeRatio"):
        note = uncalibrated_note(adapter, method, "auto", None)
        assert "nothing is published for Unpublished models" in note and "Block Profiler profile" in note
        assert uncalibrated_note(adapter, method, "flux", None) is None   # a preset chosen by name
        assert uncalibrated_note(adapter, method, "auto", {"name": "mine"}) is None


def test_threshold_nodes_on_a_family_without_presets_run_out_of_the_box(caplog):
    """Qwen-Image has no published TeaCache polynomial, SD3 no curve at all: the nodes cache on
    their defaults at once, and each run says once that a profile would tune them."""
    import logging

    from helpers import STEPS, WINDOW, run_node, sample_with_report

    from comfyui_dit_cache.nodes import MagnitudeThreshold, TeaCacheThreshold

    sd3 = tiny_models.BUILDERS["sd3"]()
    nodes = [(TeaCacheThreshold, dict(rel_l1_thresh=0.3, coefficients="auto", max_consecutive_reuse=2)),
             (MagnitudeThreshold, dict(threshold=0.3, max_skip=2, retention_ratio=0.0, curve="auto"))]
    for node, inputs in nodes:
        (patched,) = run_node(node, model=sd3.patcher, **inputs, **WINDOW)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            out, report = sample_with_report(patched, sd3)
        assert torch.isfinite(out).all() and report.full_steps < STEPS
        assert sum("a Block Profiler profile of this model" in n for n in report.notes) == 1
        assert caplog.text.count("nothing is published for") == 1


def test_a_family_whose_comfyui_module_is_missing_is_skipped_with_one_line(monkeypatch, caplog):
    """As if a ComfyUI update removed Wan's model module: the Wan adapter is skipped, the others load."""
    monkeypatch.setitem(sys.modules, "comfy.ldm.wan.model", None)
    monkeypatch.delitem(sys.modules, f"{registry.__name__}.wan")
    with caplog.at_level(logging.WARNING):
        found = registry._discover()
    assert "wan" not in {a.family for a in found} and {"flux", "hunyuan_video"} <= {a.family for a in found}
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and "model family module 'wan' skipped" in skipped[0].getMessage()


def test_a_subclass_is_matched_before_its_base_class():
    depths = [len(a.model_class.__mro__) for a in ADAPTERS]
    assert depths == sorted(depths, reverse=True)


FAMILY_WORD = r"\b(flux\w*|wan[\d.]*\w*|hunyuan\w*)\b"


def _code_words(path) -> list[str]:
    """Identifiers and string constants of a Python file, without comments and docstrings."""
    import ast

    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    words = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.append(node.value)
        elif isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
    return words


def test_only_the_adapters_name_a_model_family():
    """Family knowledge lives in cache_core/adapters/: the engine, the policies, the nodes and the
    web extension work from the registry (comments citing where a figure was measured aside)."""
    import re

    from helpers import ROOT

    offenders = []
    python_files = [p for p in (ROOT / "cache_core").rglob("*.py") if "adapters" not in p.parts]
    for path in python_files + sorted((ROOT / "nodes").glob("*.py")):
        offenders += [f"{path.relative_to(ROOT)}: {w!r}" for w in _code_words(path) if re.search(FAMILY_WORD, w, re.I)]
    for path in (ROOT / "web").rglob("*.js"):
        code = "\n".join(line for line in path.read_text().splitlines() if not line.strip().startswith("//"))
        offenders += [f"{path.relative_to(ROOT)}: {m}" for m in re.findall(FAMILY_WORD, code, re.I)]
    assert offenders == []


def test_a_call_carrying_post_block_patches_is_accounted_block_by_block(block_tiny):
    """ComfyUI's per-block patches (`patches["double_block"]`) are run after each block by the
    forwards of Qwen-Image, Lumina and, in newer ComfyUI, Wan: whichever family the call is on,
    the engine must keep the blocks' own residuals apart from what the patches add."""
    diffusion_model = block_tiny.patcher.model.diffusion_model
    adapter = find_adapter(diffusion_model)
    with_patch = {"patches": {"double_block": [lambda args: args]}}
    assert call_adds_between_blocks(adapter, diffusion_model, None, with_patch, {})


# What the adapters' comments say of each shipped preset (their step counts and the settings
# published with them) and the README's Nodes table of the TeaCache thresholds. The published
# sources (the TeaCache and MagCache authors' repositories) are not in this repository, so the
# numbers are checked against these statements and for internal consistency, not against the
# sources themselves. None: not stated.
STATED_MAGNITUDE = {   # preset: (steps of the curve, threshold, max_skip)
    "flux": (28, None, None), "flux_kontext": (20, 0.05, 4),
    "wan2.1_t2v_1.3b": (50, 0.12, 2), "wan2.1_t2v_14b": (50, 0.24, 6), "wan2.1_i2v_480p": (40, 0.24, 6),
    "wan2.1_i2v_720p": (40, 0.24, 6), "wan2.1_vace_1.3b": (None, 0.02, 3),
    "wan2.2_t2v_a14b": (40, 0.12, 2), "wan2.2_i2v_a14b": (40, 0.12, 2), "wan2.2_ti2v_5b": (50, 0.12, 2),
    "hunyuan_video": (50, None, None), "hunyuan_video1.5": (20, 0.03, 2), "hunyuan_video1.5_40steps": (40, 0.03, 2),
    "chroma": (26, 0.10, 2), "qwen_image": (40, 0.10, 2),
}
STATED_TEACACHE = {   # preset: the recommended threshold
    "flux": 0.4, "hunyuan_video": 0.15, "wan2.1_t2v_1.3b": 0.08, "wan2.1_t2v_14b": 0.2, "wan2.1_i2v_480p": 0.26,
    "wan2.1_i2v_720p": 0.25, "ltxv": 0.06,
}


def test_the_shipped_magnitude_curves_are_what_their_sources_are_stated_to_be():
    shipped = {p.name: p for p in registry.magnitude_presets()}
    assert set(shipped) == set(STATED_MAGNITUDE)   # a new preset states its source's numbers here
    for name, (steps, threshold, max_skip) in STATED_MAGNITUDE.items():
        preset = shipped[name]
        if steps is not None:
            assert len(preset.ratios) == steps, name
        assert preset.ratios[0] == 1.0, name   # a step's ratio to itself opens every published curve
        assert all(math.isfinite(r) and 0.25 < r < 4.0 for r in preset.ratios), name   # ratios of order 1
        if threshold is not None:
            assert (preset.threshold, preset.max_skip) == (threshold, max_skip), name


def test_the_shipped_teacache_polynomials_are_what_their_sources_are_stated_to_be():
    shipped = {p.name: p for p in registry.teacache_presets()}
    assert set(shipped) == set(STATED_TEACACHE)
    for name, threshold in STATED_TEACACHE.items():
        preset = shipped[name]
        assert preset.threshold == threshold, name
        # the TeaCache authors fit degree-4 polynomials (five coefficients, highest power first)
        assert len(preset.coefficients) == 5 and all(math.isfinite(c) for c in preset.coefficients), name
