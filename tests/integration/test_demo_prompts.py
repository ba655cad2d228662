"""`make demo`'s captions are what the uncached reference FLUX draws: each column, sampled as the
demo samples it, reads back (reference/recognise.py) as its prompt. A retrain that stops drawing
one fails here before the picture captions what is not there."""
import pytest

import demo
import reference_models as refs
from recognise import described, recognise


@pytest.fixture(scope="module")
def flux():
    return refs.load("flux")


@pytest.mark.parametrize("prompt, seed", demo.COLUMNS, ids=[described(p) for p, _ in demo.COLUMNS])
def test_the_uncached_reference_draws_each_demo_caption(flux, prompt, seed):
    reading = recognise(demo.sample(flux, flux.patcher, prompt, seed))
    assert reading.shows(prompt), f"'{described(prompt)}' at seed {seed} is drawn as {reading.caption()}"
