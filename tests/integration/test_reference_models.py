"""The reference models and the tooling that made them."""
import pytest
import torch

import out_of_place_blocks
import reference_data as rd
import reference_models as refs
import tiny_models


def test_decoder_inverts_the_encoder_for_images_and_videos():
    g = torch.Generator().manual_seed(0)
    for video in (False, True):
        pixels = torch.stack([rd.render(rd.random_prompt(g, video), g) for _ in range(2)])
        assert torch.allclose(rd.decode(rd.encode(pixels)), pixels, atol=1e-5)


@pytest.mark.parametrize("family", ["flux", "hunyuan_video"])
def test_training_blocks_compute_what_comfyui_blocks_compute(family):
    tiny = tiny_models.BUILDERS[family]()
    dm = tiny.patcher.model.diffusion_model
    x = torch.randn(2, *tiny.latent_shape[1:])
    t, context, y = torch.rand(2), torch.randn(2, 8, 64), torch.randn(2, 64)
    gap = out_of_place_blocks.check_equivalence(
        dm, lambda options: dm(x, t, context, y=y, guidance=torch.full((2,), 3.5), transformer_options=options))
    assert gap < 1e-5


@pytest.mark.parametrize("family", sorted(refs.CONFIGS))
def test_reference_fixture_loads_into_comfyui_classes_and_samples(family):
    import comfy.sample

    model = refs.load(family)
    assert model.meta["family"] == family and model.meta["steps"] >= 1000
    prompt = rd.Prompt("red", "circle", "blue", "right" if model.video else None)
    noise = torch.randn(model.latent_shape(), generator=torch.Generator().manual_seed(0))
    out = comfy.sample.sample(model.patcher, noise, 8, 4.0, "euler", "simple", model.conditioning(prompt),
                              model.empty_conditioning(), torch.zeros(model.latent_shape()), seed=0, disable_pbar=True)
    pixels = rd.decode(model.patcher.model.latent_format.process_in(out))
    assert torch.isfinite(pixels).all()
    # a trained model paints the prompt's background: blue dominates red and green in the mean
    mean = pixels.mean(dim=[d for d in range(pixels.ndim) if d != 1])
    assert mean[2] > mean[0] and mean[2] > mean[1]
