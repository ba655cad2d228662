"""ComfyUI's own multi-GPU CFG split (MultiGPU Work Units, ComfyUI 0.26 on): the conditionings of a
step run in threads on device clones of the model. Here the clones ComfyUI makes sit on two CPU
devices. The cache cannot share one run's state between calls that run at once, so every step is
computed and the report says why: the output equals the uncached split run exactly."""
from __future__ import annotations

import pytest
import torch

import tiny_models
from helpers import STEPS, fora, run_node, sample_with_report

from comfyui_dit_cache.cache_core.run_wrappers import SPLIT_OVER_DEVICES

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
    from comfy_extras.nodes_multigpu import MultiGPUCFGSplitNode

    split = run_node(MultiGPUCFGSplitNode, model=patcher, max_gpus=2)[0]
    assert len(split.get_additional_models_with_key("multigpu")) == 1, "ComfyUI made no device clone"
    return split


@pytest.mark.parametrize("order", ["cache after the split", "cache before the split"])
def test_a_run_split_over_devices_computes_every_step_and_says_why(order, two_cpu_devices, loaded_flux):
    tiny = loaded_flux
    split = _split(tiny.patcher)
    uncached = tiny_models.sample(split, tiny, steps=STEPS)
    patched = fora(split, interval=3) if order == "cache after the split" else _split(fora(tiny.patcher, interval=3))

    out, report = sample_with_report(patched, tiny)

    assert torch.equal(out, uncached)
    assert report.full_steps == STEPS
    assert any(SPLIT_OVER_DEVICES in note for note in report.notes)


def test_the_same_model_without_the_split_is_cached_again(two_cpu_devices, loaded_flux):
    tiny = loaded_flux
    split_run = sample_with_report(fora(_split(tiny.patcher), interval=3), tiny)[1]
    plain_run = sample_with_report(fora(tiny.patcher, interval=3), tiny)[1]
    assert split_run.full_steps == STEPS
    assert plain_run.full_steps < STEPS
    assert not any(SPLIT_OVER_DEVICES in note for note in plain_run.notes)
