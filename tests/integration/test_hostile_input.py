"""Input a careless or hostile client can send: profile choices that name files outside the
profiles folder, files that are too large to be profiles, profile names that would write through
a symlink or fail to save. ComfyUI's own prompt validation (`execution.validate_prompt`, what the
server's /prompt route runs) refuses the hostile choices before anything runs."""
from __future__ import annotations

import asyncio
import json

import pytest
import torch

import tiny_models
from helpers import STEPS, register_workflow_nodes, run_node, sample_with_report

from comfyui_dit_cache.cache_core.profiles.profile_io import MAX_PROFILE_BYTES, ProfileError
from comfyui_dit_cache.nodes import BlockProfiler, LoadCacheProfile

REFUSED = "is not a profile in the profiles folder"


@pytest.fixture
def profiles(output_dir, tmp_path_factory):
    """The profiles folder with one real profile, and a secret file outside the output folder."""
    folder = output_dir / "dit_cache" / "profiles"
    flux = tiny_models.tiny_flux()
    (patched,) = run_node(BlockProfiler, model=flux.patcher, profile_name="good")
    tiny_models.sample(patched, flux, steps=STEPS)
    secret = tmp_path_factory.mktemp("elsewhere") / "secret.json"
    secret.write_text((folder / "good.json").read_text())   # a valid profile, but not in the folder
    return folder, secret


def _validate(choice: str):
    """ComfyUI's validation of a prompt whose Load Cache Profile is sent `choice`."""
    import execution

    register_workflow_nodes()
    prompt = {"1": {"class_type": "DiTCacheLoadProfile", "inputs": {"profile": choice}},
              "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 1]}}}
    valid, error, _, node_errors = asyncio.run(execution.validate_prompt("hostile", prompt, None))
    return valid, json.dumps(node_errors)


def test_a_listed_profile_validates_and_loads(profiles):
    assert _validate("good.json")[0]
    profile, _, _ = run_node(LoadCacheProfile, profile="good.json")
    assert profile["name"] == "good"


@pytest.mark.parametrize("kind", ["absolute path", "relative path out", "folder-less name of a file elsewhere",
                                  "symlink out of the folder", "missing file", "not json"])
def test_choices_outside_the_profiles_folder_are_refused_before_anything_runs(kind, profiles):
    folder, secret = profiles
    choice = {"absolute path": str(secret), "relative path out": f"../../../{secret.parent.name}/secret.json",
              "folder-less name of a file elsewhere": "secret.json", "symlink out of the folder": "link.json",
              "missing file": "nope.json", "not json": "good.png"}[kind]
    if kind == "symlink out of the folder":
        (folder / "link.json").symlink_to(secret)
    valid, errors = _validate(choice)
    assert not valid and REFUSED in errors
    with pytest.raises(ProfileError, match=REFUSED) as refused:
        run_node(LoadCacheProfile, profile=choice)
    # the same words whether a file is there or not: nothing to learn about the server's files
    assert str(refused.value).replace(repr(choice), "<choice>") == (
        "<choice> is not a profile in the profiles folder (output/dit_cache/profiles/); pick one from the list, or "
        "refresh the page after a profiling run")
    assert "link.json" not in LoadCacheProfile.define_schema().inputs[0].options


def test_a_file_too_large_to_be_a_profile_is_not_read_whole(profiles):
    folder, _ = profiles
    with (folder / "huge.json").open("wb") as out:
        out.truncate(MAX_PROFILE_BYTES + 1)
    with pytest.raises(ProfileError, match="larger than 8 MiB"):
        run_node(LoadCacheProfile, profile="huge.json")


def test_saving_replaces_a_symlink_never_its_target_and_says_it_replaced_a_file(profiles):
    folder, secret = profiles
    before = secret.read_text()
    (folder / "link.json").symlink_to(secret)
    flux = tiny_models.tiny_flux()
    (patched,) = run_node(BlockProfiler, model=flux.patcher, profile_name="link")
    _, report = sample_with_report(patched, flux)
    assert secret.read_text() == before
    assert not (folder / "link.json").is_symlink() and json.loads((folder / "link.json").read_text())["steps"] == STEPS
    assert any("profile saved to" in n and "link.json" in n and "replaced" in n for n in report.notes)
    assert not [p for p in folder.iterdir() if p.name.startswith(".saving-")]


def test_a_new_profile_says_it_replaced_nothing(profiles):
    flux = tiny_models.tiny_flux()
    (patched,) = run_node(BlockProfiler, model=flux.patcher, profile_name="fresh")
    _, report = sample_with_report(patched, flux)
    [saved] = [n for n in report.notes if "profile saved to" in n]
    assert saved.endswith("fresh.json")


def test_a_name_too_long_to_save_is_refused_before_sampling():
    flux = tiny_models.tiny_flux()
    with pytest.raises(ProfileError, match="profile_name is 260 characters long; use at most 100"):
        run_node(BlockProfiler, model=flux.patcher, profile_name="p" * 260)


def test_a_failed_save_keeps_the_image_and_says_why(profiles):
    folder, _ = profiles
    (folder / "taken.json").mkdir()     # a folder where the profile would go: the save fails
    flux = tiny_models.tiny_flux()
    (patched,) = run_node(BlockProfiler, model=flux.patcher, profile_name="taken")
    out, report = sample_with_report(patched, flux)
    assert torch.equal(out, tiny_models.sample(flux.patcher, flux, steps=STEPS))
    assert any("the profile could not be saved as taken.json" in n and "the image is kept" in n for n in report.notes)


def test_a_speedup_that_is_not_a_number_is_refused():
    """ComfyUI's range check lets NaN through; it must not silently run the first plan."""
    from comfyui_dit_cache.nodes import CalibratedCache

    flux = tiny_models.tiny_flux()
    profile = {"name": "p", "family": "flux", "steps": 8,
               "calibration": {"plans": [{"speedup": 4.0, "plan": "CRRRCRRR", "computes": 2, "psnr_worst": 30.0}]}}
    with pytest.raises(ProfileError, match="speedup must be a number of 1 or more"):
        run_node(CalibratedCache, model=flux.patcher, profile=profile, speedup=float("nan"),
                 cache_device="model device")


@pytest.mark.parametrize("bad", [float("nan"), 1e308, float("inf")])
def test_a_profile_polynomial_that_is_not_a_sensible_number_is_refused(bad):
    """Otherwise the rescaled change overflows and every step is computed without a word."""
    from helpers import chosen_profile, teacache

    flux = tiny_models.tiny_flux()
    with pytest.raises(ValueError, match="coefficient that is not a number of sensible size"):
        teacache(flux.patcher, profile=chosen_profile(flux.patcher, teacache_coefficients=[bad, 1.0]))
