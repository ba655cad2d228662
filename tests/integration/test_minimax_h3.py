"""MiniMax H3 runs one packed sequence of text, reference, audio and video rows through its blocks:
with an image reference, a keyframe and audio and video denoise masks (per-row timesteps), the
cache stands in for the audio and the video together as a per-block cache of that sequence would,
and the audio is cached, not passed through."""
from __future__ import annotations

import pytest
import torch

import tiny_models
from helpers import CFG, STEPS, computed_steps, fora, sample_with_report
from per_block_reference import per_block_cache


def test_minimax_h3_caches_audio_and_video_with_references_and_masks():
    import comfy.nested_tensor
    import comfy.utils

    tiny = tiny_models.tiny_minimax_h3()
    if tiny is None:
        pytest.skip("this ComfyUI has no MiniMax H3")
    g = torch.Generator().manual_seed(3)
    reference_image = {"kind": "image", "latent_h": 4, "latent_w": 4, "latent": torch.randn(1, 24, 1, 4, 4, generator=g)}
    keyframe = {"resolved_frame_index": 0, "latent": torch.randn(1, 24, 1, 8, 8, generator=g)}
    positive, negative = tiny.make_cond(g), tiny.make_cond(g)
    positive[0][1].update(minimax_refs=[reference_image], minimax_keyframes=[keyframe])
    video_mask = torch.ones(1, 1, *tiny.latent_shape[2:])
    video_mask[..., :4, :] = 0.0        # the top half of every frame kept
    audio_mask = torch.ones(1, *tiny.audio_shape[1:])
    audio_mask[..., :2] = 0.5           # the first audio frames half renoised
    settings = dict(conds=(positive, negative), noise_mask=comfy.nested_tensor.NestedTensor((video_mask, audio_mask)))

    out, report = sample_with_report(fora(tiny.patcher, interval=3, warmup_steps=1), tiny, **settings)
    computed = computed_steps(report)
    assert report.level == "block" and computed == [0, 1, 4, 7]
    reference = tiny_models.sample(per_block_cache(tiny.patcher, set(computed), 0), tiny, steps=STEPS, cfg=CFG,
                                   **settings)
    uncached = tiny_models.sample(tiny.patcher, tiny, steps=STEPS, cfg=CFG, **settings)
    shapes = [tiny.latent_shape, tiny.audio_shape]
    streams = zip(*(comfy.utils.unpack_latents(t, shapes) for t in (out, reference, uncached)))
    for cached_stream, reference_stream, uncached_stream in streams:   # video, then audio
        scale = float(reference_stream.abs().max())
        assert torch.allclose(cached_stream, reference_stream, rtol=1e-4, atol=1e-4 * scale)
        assert float((cached_stream - uncached_stream).abs().max()) > 1e-3 * scale
