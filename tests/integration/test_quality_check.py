"""Cache Quality Check: its figures equal a reference computed outside the pack (numpy and scipy's
Gaussian filter, the SSIM definition of Wang et al.), frame by frame; its difference image is
brighter where the images differ more; images that cannot be compared are refused with the fix."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from helpers import run_node

from comfyui_dit_cache.cache_core.support.containment import GraphError
from comfyui_dit_cache.nodes import CacheQualityCheck


def reference_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Per channel with scipy's Gaussian filter (sigma 1.5, 11 taps), over the pixels the whole
    window covers, then averaged over the channels."""
    c1, c2, crop = 0.01**2, 0.03**2, 5
    values = []
    for channel in range(a.shape[-1]):
        x, y = a[..., channel].astype(np.float64), b[..., channel].astype(np.float64)

        def blur(z: np.ndarray) -> np.ndarray:
            return gaussian_filter(z, 1.5, truncate=3.5)[crop:-crop, crop:-crop]

        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        values.append(np.mean(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))))
    return float(np.mean(values))


@pytest.fixture
def frames():
    """Three 'video' frames of 24x32 and a copy with noise of a different strength per frame
    (the second frame untouched)."""
    g = torch.Generator().manual_seed(3)
    uncached = torch.rand(3, 24, 32, 3, generator=g)
    noise = torch.randn(3, 24, 32, 3, generator=g) * torch.tensor([0.02, 0.0, 0.1]).view(3, 1, 1, 1)
    return (uncached + noise).clamp(0, 1), uncached


def test_the_figures_equal_an_independent_computation_per_frame(frames):
    cached, uncached = frames
    difference, summary = run_node(CacheQualityCheck, cached=cached, uncached=uncached)
    a, b = cached.numpy(), uncached.numpy()
    psnrs = [reference_psnr(a[i], b[i]) for i in range(3)]
    ssims = [reference_ssim(a[i], b[i]) for i in range(3)]
    assert math.isinf(psnrs[1]) and ssims[1] == pytest.approx(1.0)
    mean_psnr = -10 * math.log10(np.mean([np.mean((a[i].astype(np.float64) - b[i]) ** 2) for i in range(3)]))
    assert f"PSNR mean {mean_psnr:.2f} dB, worst {psnrs[2]:.2f} dB (frame 3 of 3)" in summary
    assert f"SSIM mean {np.mean(ssims):.4f}, worst {min(ssims):.4f}" in summary
    assert difference.shape == cached.shape


def test_the_difference_is_brighter_where_the_images_differ_more(frames):
    cached, uncached = frames
    difference, _ = run_node(CacheQualityCheck, cached=cached, uncached=uncached)
    assert float(difference[1].max()) == 0.0                       # the untouched frame is black
    assert float(difference[2].mean()) > float(difference[0].mean()) > 0.0
    expected = ((cached - uncached).abs().amax(-1) * 5).clamp(0, 1)
    assert torch.allclose(difference[..., 0], expected) and torch.equal(difference[..., 0], difference[..., 2])


def test_images_that_cannot_be_compared_are_refused_with_the_fix(frames):
    cached, uncached = frames
    with pytest.raises(GraphError, match="differ in frames, size or channels.*same settings, seed and size"):
        run_node(CacheQualityCheck, cached=cached[:2], uncached=uncached)
    with pytest.raises(GraphError, match="differ in frames, size or channels"):
        run_node(CacheQualityCheck, cached=cached[:, :20], uncached=uncached)
