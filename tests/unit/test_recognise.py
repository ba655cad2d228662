"""The reader of the procedural world's images (reference/recognise.py) that checks the demo's
captions: it reads what `_draw` paints as its prompt, and nothing from what is not a shape."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "reference"))

import reference_data as rd  # noqa: E402
from recognise import recognise  # noqa: E402


def test_images_the_world_draws_read_as_their_prompts():
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        prompt = rd.random_prompt(g, video=False)
        reading = recognise(rd.render(prompt, g))
        assert reading.shows(prompt), (prompt, reading)
        assert reading.caption() == f"{prompt.colour} {prompt.shape} on {prompt.background}"


@pytest.mark.parametrize("shape", rd.SHAPES)
def test_each_shape_is_told_from_the_others_at_every_size(shape):
    for size in (5.0, 7.5, 10.0):
        prompt = rd.Prompt("orange", shape, "purple")
        assert recognise(rd._draw(prompt, 15.0, 17.0, size)).shows(prompt)


def captions_nothing(image: torch.Tensor) -> bool:
    reading = recognise(image)
    return reading.caption().startswith("unrecognisable") and not any(
        reading.shows(rd.Prompt(c, s, b)) for c in rd.COLOURS for s in rd.SHAPES for b in rd.COLOURS)


def test_noise_is_unrecognisable():
    assert captions_nothing(torch.rand(3, rd.PIXELS, rd.PIXELS, generator=torch.Generator().manual_seed(0)) * 2 - 1)


def test_a_patch_of_noise_on_a_background_is_unrecognisable():
    image = rd._draw(rd.Prompt("red", "square", "blue"), 16, 16, 0.1)
    image[:, 8:24, 8:24] = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    assert captions_nothing(image)


def test_an_empty_background_or_a_speck_is_no_shape():
    blank = rd._draw(rd.Prompt("red", "square", "blue"), 16, 16, 0.1)
    speck = rd._draw(rd.Prompt("red", "square", "blue"), 16, 16, 1.0)
    for image in (blank, speck):
        assert recognise(image).background == "blue" and captions_nothing(image)


def test_two_blobs_are_not_one_shape():
    prompt = rd.Prompt("yellow", "circle", "black")
    image = rd._draw(prompt, 9, 9, 5)
    image[:, 20:30, 20:30] = image[:, 4:14, 4:14]
    assert recognise(image).colour == "yellow" and captions_nothing(image)
