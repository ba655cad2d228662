"""The whole model's output as a stand-in: on a skipped step the model is not run at all and the
sampler gets the direction of the stream's last computed step, d = (x - denoised) / sigma, applied
to this step's latent (denoised = x - sigma * d).

d is what the sampler integrates (k-diffusion's `to_d`): a flow model's velocity, an
epsilon model's noise prediction. Reusing it keeps the step consistent with the trajectory the
last computed step pointed at, where reusing the blocks' residual re-runs the embeddings and the
final layer on a residual of another step; on the trained reference models that kept 2-4 dB
more at 4-6x (bench/README.md). Held for one run: per stream of model calls, like the blocks'
caches (run/stream_cache.py), and for the guided output of a whole step (run/output_reuse.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def _per_element(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A batch's sigmas shaped to broadcast over a latent of that batch."""
    return sigma.reshape(-1, *([1] * (like.ndim - 1))).to(like)


@dataclass
class OutputStream:
    direction: torch.Tensor
    weights: tuple                      # the weight keyframes it was computed under

    def stand_in(self, x: torch.Tensor, sigma: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """The denoised latent this step gets: the last computed direction, from this `x`, taken
        `scale` times (ERTACache's rescaled step: for Euler, scaling the reused direction scales
        the step)."""
        d = self.direction.to(device=x.device, dtype=x.dtype)
        return x - _per_element(sigma, x) * (d if scale == 1.0 else d * scale)

    def nbytes(self) -> int:
        return self.direction.numel() * self.direction.element_size()


def direction(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor,
              cache_device: torch.device | None) -> torch.Tensor:
    """The sampler's direction of a computed model call, held on the cache device; zero where
    sigma is 0 (a call at the end of the schedule has no direction). Decided on the GPU: reading
    sigma would make the host wait for the step's work before it queues the next step's."""
    s = _per_element(sigma, x)
    d = torch.where(s > 0, (x - denoised) / s, 0.0)
    return d.detach().to(cache_device) if cache_device is not None else d.detach()
