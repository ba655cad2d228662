"""Profiles with the right format and wrong content: a real profile mutated a few hundred times
(fields dropped, retyped, nested, huge, NaN) gives, on loading and in every node that reads a
profile, either a ProfileError that names the field or a node that works: never another exception."""
from __future__ import annotations

import copy
import json
import random

import pytest
import torch

import tiny_models
from helpers import STEPS, WINDOW, run_node

from comfyui_dit_cache.cache_core.attachment.attach import attached_engine
from comfyui_dit_cache.cache_core.support.containment import GraphError
from comfyui_dit_cache.cache_core.profiles.heatmap import render_heatmap
from comfyui_dit_cache.cache_core.profiles.profile_io import ProfileError
from comfyui_dit_cache.nodes import (BlockProfiler, CalibratedCache, LoadCacheProfile, MagnitudeThreshold,
                                     TeaCacheThreshold)

MUTATIONS = 300
DEEP = "[" * 100_000 + "]" * 100_000   # JSON nested deeper than Python's parser recursion


@pytest.fixture(scope="module")
def flux():
    return tiny_models.tiny_flux()


@pytest.fixture
def real_profile(output_dir, flux) -> dict:
    """A Block Profiler profile of the tiny FLUX with one calibrated plan added, as saved."""
    (patched,) = run_node(BlockProfiler, model=flux.patcher, profile_name="real")
    tiny_models.sample(patched, flux, steps=STEPS)
    path = output_dir / "dit_cache" / "profiles" / "real.json"
    profile = json.loads(path.read_text())
    plan = ("CR" * STEPS)[:STEPS]
    profile["calibration"] = {"cases": 1, "batch": 1, "plans": [
        {"speedup": STEPS / plan.count("C"), "computes": plan.count("C"), "plan": plan, "psnr_worst": 30.0,
         "psnr_mean": 31.0}]}
    path.write_text(json.dumps(profile))
    return profile


def _paths(value, prefix=()):
    """Every place in the JSON tree: (path, value)."""
    yield prefix, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):   # a few items of each list are enough
            yield from _paths(item, prefix + (index,))


REPLACEMENTS = ["abc", [], {}, None, True, 0, -1, 5, 1e308, float("inf"), float("nan"), [["x"]], {"a": 1}, 10**30,
                [1.0] * 3, "CCCC"]


def _mutated(profile: dict, rng: random.Random) -> str:
    """The profile's JSON text with one change at a random place."""
    changed = copy.deepcopy(profile)
    places = [path for path, _ in _paths(changed) if path and path != ("format",)]
    path = rng.choice(places)
    parent = changed
    for key in path[:-1]:
        parent = parent[key]
    how = rng.random()
    if how < 0.2 and isinstance(parent, dict):
        del parent[path[-1]]
    elif how < 0.3:
        parent[path[-1]] = "__DEEP__"
    else:
        parent[path[-1]] = rng.choice(REPLACEMENTS)
    return json.dumps(changed).replace('"__DEEP__"', DEEP)


def _consume(profile: dict, flux) -> list:
    """Every node that reads a profile, with it: the models they return."""
    render_heatmap(profile)
    return [run_node(TeaCacheThreshold, model=flux.patcher, rel_l1_thresh=0.3, coefficients="auto",
                     max_consecutive_reuse=2, profile=profile, **WINDOW)[0],
            run_node(MagnitudeThreshold, model=flux.patcher, threshold=0.1, max_skip=2, retention_ratio=0.2,
                     curve="auto", profile=profile, **WINDOW)[0],
            run_node(CalibratedCache, model=flux.patcher, profile=profile, speedup=2.0, cache_device="model device")[0]]


def _sample_works(models: list, flux, uncached: torch.Tensor) -> None:
    """A short run through each model gives a finite latent of the right shape, close to the
    uncached one (every cache here computes at least half the steps), and a run report with no
    error of the pack's own code."""
    for model in models:
        reports = []
        attached_engine(model).report_listeners.append(reports.append)
        out = tiny_models.sample(model, flux, steps=STEPS)
        (report,) = reports
        assert out.shape == uncached.shape and bool(torch.isfinite(out).all())
        assert report.failure is None and not report.interrupted and report.steps == STEPS
        assert not any("unexpected error in its own code" in note for note in report.notes), report.notes
        assert float((out - uncached).abs().max()) < float(uncached.abs().max())


def test_the_real_profile_is_used_by_every_node(real_profile, flux):
    profile, _, _ = run_node(LoadCacheProfile, profile="real.json")
    _sample_works(_consume(profile, flux), flux, tiny_models.sample(flux.patcher, flux, steps=STEPS))


def test_every_mutation_of_a_real_profile_gives_a_profile_error_or_a_working_node(real_profile, output_dir, flux):
    """...and each node a mutated profile loads into samples working output (a short run)."""
    rng = random.Random(0)
    path = output_dir / "dit_cache" / "profiles" / "mutated.json"
    uncached = tiny_models.sample(flux.patcher, flux, steps=STEPS)
    refused = used = 0
    for attempt in range(MUTATIONS):
        text = _mutated(real_profile, rng)
        path.write_text(text)
        try:
            profile, _, _ = run_node(LoadCacheProfile, profile="mutated.json")
            models = _consume(profile, flux)
        except GraphError as err:
            assert "mutated" in str(err) or isinstance(err, ProfileError), (attempt, str(err)[:200])
            refused += 1
            continue
        except Exception as err:  # noqa: BLE001  (the point: no other exception)
            pytest.fail(f"mutation {attempt} ({text[:300]}...) raised {type(err).__name__}: {err}")
        try:
            _sample_works(models, flux, uncached)
            used += 1
        except GraphError as err:   # refused when sampling, saying why (a plan of other sigmas than the run's)
            assert "profile again" in str(err), (attempt, str(err)[:200])
            refused += 1
        except Exception as err:  # noqa: BLE001  (a profile that loads must sample)
            pytest.fail(f"mutation {attempt} ({text[:300]}...) loaded but sampling raised {type(err).__name__}: {err}")
    assert refused > MUTATIONS // 2 and used > MUTATIONS // 10, (refused, used)


def test_a_profile_with_a_null_sigma_is_refused_on_loading_or_samples_cached(real_profile, output_dir, flux):
    path = output_dir / "dit_cache" / "profiles" / "null_sigma.json"
    path.write_text(json.dumps({**real_profile, "sigmas": [None] + real_profile["sigmas"][1:]}))
    try:
        profile, _, _ = run_node(LoadCacheProfile, profile="null_sigma.json")
    except ProfileError as err:
        assert "sigmas" in str(err)
        return
    _sample_works(_consume(profile, flux), flux, tiny_models.sample(flux.patcher, flux, steps=STEPS))
