"""The whole-model level: any diffusion model with no family adapter is cached as one block.

Where the block is, is found from what the model does on a run's first model call, never from
its source:
- **model**: its forward runs ComfyUI's `DIFFUSION_MODEL` wrappers (SD1.5/SDXL UNets, Lumina 2 /
  Z-Image, HiDream, Cosmos, Anima, ...): the diffusion model's forward is the block, its output
  minus its input the residual, and the input latent the per-step signal (as ComfyUI's
  EasyCache measures it).
- **call**: it does not (PixArt, ERNIE-Image, Boogu, Omnigen 2, ...): the model call
  (`APPLY_MODEL`, which every ComfyUI model is sampled through) is the block, in the sampler's
  units: its input the latent over sigma, its output the denoised latent over sigma, so the
  residual is minus the sampler's direction (x - denoised) / sigma and a skipped call returns
  x - sigma * direction; the per-step signal is the latent itself (call_level.py).
Not a family: `find_adapter` falls back to it, one adapter per model class."""
from __future__ import annotations

import torch

from .base import BlockSpec, ModelAdapter

WHOLE_MODEL_KEY = ("whole_model", 0)
MODEL_LEVEL = "model"   # inside the diffusion model's forward (its DIFFUSION_MODEL wrapper)
CALL_LEVEL = "call"     # around the model call (APPLY_MODEL)


class WholeModelAdapter(ModelAdapter):
    level = MODEL_LEVEL   # the run settles MODEL_LEVEL or CALL_LEVEL on its first model call
    blocks_modify_inputs = False

    def __init__(self, model_class: type) -> None:
        self.model_class = model_class
        self.family = f"model:{model_class.__name__}"
        self.display_name = f"{model_class.__name__} (whole model)"

    def block_modules(self, diffusion_model: torch.nn.Module) -> list[torch.nn.Module]:
        # The first submodule runs once per computed call (a timestep or patch embedding), so
        # counting its calls counts the model's real computations.
        return list(diffusion_model.children())[:1]

    def blocks(self, diffusion_model: torch.nn.Module) -> list[BlockSpec]:
        return [BlockSpec(WHOLE_MODEL_KEY, ("img",))]

    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        """The latent the model gets: at the call level the sampler's own (`signal`), not the
        block's input, which is divided by sigma and so changes with the step alone."""
        return first_block_args.get("signal", first_block_args["img"])
