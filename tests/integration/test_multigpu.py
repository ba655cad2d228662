"""ComfyUI's own multi-GPU CFG split (MultiGPU Work Units, ComfyUI 0.26 on): the conditionings of a
step run in threads on device clones of the model. Here the clones ComfyUI makes sit on two CPU
devices. Each device caches its own calls and every device follows the step's one decision (made
before the calls, or by the main device's first block for TeaCache-style): every caching node runs
the single-device run's schedule and output. TaylorSeer's guard, which probes each device's own
features, computes every step and says why: its output equals the uncached split run exactly."""
from __future__ import annotations

import pytest
import torch

import tiny_models
from helpers import CFG, STEPS, WINDOW, fora, magnitude, run_node, sample_with_report, taylorseer, teacache
from test_block_cache import mixing_threshold, profile_of

from comfyui_dit_cache.cache_core.run.device_split import SPLIT_READS_FEATURES
from comfyui_dit_cache.nodes import BlockCache, CalibratedCache

multigpu = pytest.importorskip("comfy.multigpu", reason="this ComfyUI has no multi-GPU split")


@pytest.fixture
def two_cpu_devices(monkeypatch):
    """ComfyUI sees two devices: the CPU the model loads on and a second CPU device for its clone."""
    import comfy.model_management

    devices = [torch.device("cpu"), torch.device("cpu", 0)]
    monkeypatch.setattr(comfy.model_management, "get_all_torch_devices", lambda exclude_current=False: devices)
    return devices


def _load_tiny_flux(**_options):
    return tiny_models.tiny_flux().patcher


@pytest.fixture
def loaded_flux():
    """The tiny FLUX with the loader record ComfyUI rebuilds device clones from
    (`cached_patcher_init`, which ComfyUI's loaders set and asks custom loaders to set)."""
    tiny = tiny_models.tiny_flux()
    tiny.patcher.cached_patcher_init = (_load_tiny_flux, ())
    return tiny


def _split(patcher):
    import comfy.model_management
    from comfy_extras.nodes_multigpu import MultiGPUCFGSplitNode

    # Earlier tests leave loaded models whose patcher is gone (their clones keep the model alive);
    # ComfyUI 0.33's device cloning reads every loaded model's patcher and fails on such an entry.
    # A server unloads between workflows as memory asks; here it is done before the split.
    comfy.model_management.unload_all_models()
    split = run_node(MultiGPUCFGSplitNode, model=patcher, max_gpus=2)[0]
    assert len(split.get_additional_models_with_key("multigpu")) == 1, "ComfyUI made no device clone"
    return split


@pytest.fixture(scope="module")
def flux_profile():
    """A Block Profiler profile of the tiny FLUX, with a calibrated plan (reuse, Taylor 1 and 2,
    the model's output) and a per-block plan (first and last blocks kept)."""
    profile = profile_of(tiny_models.tiny_flux())
    plans = [{"speedup": 2.0, "computes": 5, "plan": "CCR1CVVC2C", "psnr_worst": 30.0},
             {"speedup": 3.0, "computes": 4, "plan": "CRRCRRCRRC", "kept_blocks": [0, 5], "psnr_worst": 30.0}]
    return {**profile, "calibration": {"plans": plans}}


def _calibrated(speedup: float):
    return lambda patcher, profile: run_node(CalibratedCache, model=patcher, profile=profile, speedup=speedup,
                                             cache_device="model device")[0]


FOLLOWING_NODES = {
    "Apply FORA": lambda patcher, profile: fora(patcher, interval=3),
    "TaylorSeer Forecast": lambda patcher, profile: taylorseer(patcher, interval=3, order=2),
    "Magnitude-Ratio Threshold": lambda patcher, profile: magnitude(patcher, threshold=0.3, max_skip=2),
    "Calibrated Cache": _calibrated(2.0),
    "Calibrated Cache, per-block plan": _calibrated(3.0),
    "Block Cache": lambda patcher, profile: run_node(BlockCache, model=patcher, profile=profile,
                                                     threshold=mixing_threshold(profile), max_skip=3, **WINDOW)[0],
}


@pytest.mark.parametrize("node", sorted(FOLLOWING_NODES))
@pytest.mark.parametrize("order", ["cache after the split", "cache before the split"])
def test_every_device_follows_the_single_device_runs_decisions(node, order, two_cpu_devices, loaded_flux,
                                                                flux_profile):
    tiny, make = loaded_flux, FOLLOWING_NODES[node]
    _follows_the_single_device_run(tiny, lambda patcher: make(patcher, flux_profile), order)


def _follows_the_single_device_run(tiny, make, order: str) -> None:
    single, single_report = sample_with_report(make(tiny.patcher), tiny)
    split = _split(tiny.patcher)
    patched = make(split) if order == "cache after the split" else _split(make(tiny.patcher))

    out, report = sample_with_report(patched, tiny)

    assert report.step_actions() == single_report.step_actions()
    assert report.full_steps < STEPS
    assert {c.block_actions for c in report.calls} == {c.block_actions for c in single_report.calls}
    assert sorted(c.stream for c in report.calls if c.step == 0) == ["cond", "uncond"]   # one call per device
    assert any("split over 2 devices" in note for note in report.notes)
    scale = float(single.abs().max())
    assert torch.allclose(out, single, rtol=1e-4, atol=1e-4 * scale)
    uncached = tiny_models.sample(split, tiny, steps=STEPS, cfg=CFG)
    assert float((out - uncached).abs().max()) > 1e-3 * scale   # the cache did act


def _one_prompt_twice(tiny, which: int):
    """`tiny` sampled with its positive (0) or its negative (1) prompt as both prompts."""
    def make_cond(g):
        g = torch.Generator().manual_seed(1234)   # as tiny_models.sample draws them
        return [tiny.make_cond(g) for _ in range(which + 1)][which]
    return tiny_models.TinyModel(tiny.family, tiny.patcher, tiny.latent_shape, make_cond)


@pytest.mark.parametrize("order", ["cache after the split", "cache before the split"])
def test_the_main_devices_features_decide_every_devices_teacache_steps(order, two_cpu_devices, loaded_flux):
    """TeaCache-style reads the first block's features of the main device's call and the other
    device waits for its decision. With one text for both prompts that signal equals the batched
    single-device one, so the schedules and outputs agree."""
    _follows_the_single_device_run(_one_prompt_twice(loaded_flux, 0), lambda p: teacache(p, rel_l1_thresh=0.6), order)


def test_a_split_teacache_step_is_decided_by_the_main_devices_prompt(two_cpu_devices, loaded_flux):
    """The main device runs the positive prompt: the split run's steps are those of a run on
    the positive prompt alone, whichever device's call reaches its first block first."""
    tiny = loaded_flux
    by_prompt = [sample_with_report(teacache(tiny.patcher, rel_l1_thresh=0.4), _one_prompt_twice(tiny, which))[1]
                 for which in (0, 1)]
    assert by_prompt[0].step_actions() != by_prompt[1].step_actions()   # at 0.4 the prompts' signals decide apart
    for _ in range(3):
        split_run = sample_with_report(teacache(_split(tiny.patcher), rel_l1_thresh=0.4), tiny)[1]
        assert split_run.step_actions() == by_prompt[0].step_actions()


def test_a_guarded_forecast_probing_each_devices_features_computes_every_step_and_says_why(two_cpu_devices,
                                                                                           loaded_flux):
    tiny = loaded_flux
    split = _split(tiny.patcher)
    uncached = tiny_models.sample(split, tiny, steps=STEPS)

    out, report = sample_with_report(taylorseer(split, guard_tolerance=0.5), tiny)

    assert torch.equal(out, uncached)
    assert report.full_steps == STEPS
    assert any(SPLIT_READS_FEATURES in note for note in report.notes)


def test_the_same_model_without_the_split_is_cached_on_one_device(two_cpu_devices, loaded_flux):
    tiny = loaded_flux
    plain_run = sample_with_report(fora(tiny.patcher, interval=3), tiny)[1]
    assert plain_run.full_steps < STEPS
    assert not any("split over" in note for note in plain_run.notes)
