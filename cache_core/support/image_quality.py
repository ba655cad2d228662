"""What a cache cost, measured on the images: PSNR and SSIM of a cached run's images against the
uncached run's, frame by frame (a video is a batch of frames), and a picture of where they differ.

Images are ComfyUI IMAGE tensors, [frames, height, width, channels] in [0, 1]. SSIM is Wang et
al.'s: an 11x11 Gaussian window of sigma 1.5, C1 = 0.01², C2 = 0.03², per channel over the part
of the image the window covers whole, averaged over the channels."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

WINDOW = 11
WINDOW_SIGMA = 1.5
# A difference of 1 / DIFFERENCE_GAIN or more shows white in the difference image.
DIFFERENCE_GAIN = 5.0


class ImageMismatchError(ValueError):
    """The two images cannot be compared (different sizes or frame counts)."""


@dataclass(frozen=True)
class FrameScores:
    psnr: list[float]   # dB per frame; inf where the frames are equal
    ssim: list[float]

    def summary(self) -> str:
        """One line: mean and worst of each, and which frame is worst."""
        worst = min(range(len(self.psnr)), key=lambda i: self.psnr[i])
        frames = len(self.psnr)
        psnr_mean = _mean_db(self.psnr)
        where = f" (frame {worst + 1} of {frames})" if frames > 1 else ""
        return (f"PSNR mean {_db(psnr_mean)}, worst {_db(self.psnr[worst])}{where}; "
                f"SSIM mean {sum(self.ssim) / frames:.4f}, worst {min(self.ssim):.4f}")


def _db(value: float) -> str:
    return "identical" if math.isinf(value) else f"{value:.2f} dB"


def _mean_db(values: list[float]) -> float:
    """The PSNR of the mean squared error over the frames (not the mean of per-frame dB, which an
    identical frame would make infinite)."""
    errors = [10 ** (-v / 10) for v in values]
    mean = sum(errors) / len(errors)
    return math.inf if mean == 0 else -10 * math.log10(mean)


def check_comparable(cached: torch.Tensor, uncached: torch.Tensor) -> None:
    if cached.shape != uncached.shape:
        raise ImageMismatchError(
            f"DiT Cache: the cached images ({'x'.join(map(str, cached.shape))}) and the uncached ones "
            f"({'x'.join(map(str, uncached.shape))}) differ in frames, size or channels; connect the decoded "
            "outputs of two samplers run with the same settings, seed and size, one with the cache and one without")


def psnr(cached: torch.Tensor, uncached: torch.Tensor) -> list[float]:
    """Per frame, in dB (images in [0, 1])."""
    errors = ((cached.float() - uncached.float()) ** 2).flatten(1).mean(1)
    return [math.inf if e == 0 else -10 * math.log10(e) for e in errors.tolist()]


def _gaussian_window() -> torch.Tensor:
    coords = torch.arange(WINDOW, dtype=torch.float64) - (WINDOW - 1) / 2
    g = torch.exp(-coords**2 / (2 * WINDOW_SIGMA**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(cached: torch.Tensor, uncached: torch.Tensor) -> list[float]:
    """Per frame: SSIM over the window positions inside the image, averaged over channels."""
    a = cached.double().permute(0, 3, 1, 2)
    b = uncached.double().permute(0, 3, 1, 2)
    if min(a.shape[-2:]) < WINDOW:
        raise ImageMismatchError(f"DiT Cache: SSIM needs images of at least {WINDOW}x{WINDOW} pixels "
                                 f"(got {a.shape[-2]}x{a.shape[-1]})")
    channels = a.shape[1]
    kernel = _gaussian_window().expand(channels, 1, WINDOW, WINDOW).contiguous()

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, kernel, groups=channels)

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    value = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return value.flatten(1).mean(1).tolist()


def scores(cached: torch.Tensor, uncached: torch.Tensor) -> FrameScores:
    check_comparable(cached, uncached)
    return FrameScores(psnr(cached, uncached), ssim(cached, uncached))


def difference_image(cached: torch.Tensor, uncached: torch.Tensor) -> torch.Tensor:
    """Per pixel, the largest difference over the channels, amplified by DIFFERENCE_GAIN, grey:
    brighter is more different."""
    check_comparable(cached, uncached)
    diff = (cached.float() - uncached.float()).abs().amax(dim=-1, keepdim=True)
    return (diff * DIFFERENCE_GAIN).clamp(0.0, 1.0).expand(*diff.shape[:-1], 3).contiguous()
