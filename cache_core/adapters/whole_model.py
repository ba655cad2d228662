"""The whole-model level: for a model whose forward offers no block hook but runs ComfyUI's
`DIFFUSION_MODEL` wrappers (SD1.5/SDXL UNets, Lumina 2 / Z-Image, HiDream, Cosmos, ...), the whole
diffusion model is cached as one block: its output minus its input is the residual, and the input
latent is the per-step signal (as ComfyUI's EasyCache measures it). Not a family: `find_adapter`
falls back to it, one adapter per model class."""
from __future__ import annotations

import inspect

import torch

from .base import BlockSpec, ModelAdapter

WHOLE_MODEL_KEY = ("whole_model", 0)


def offers_model_wrapper(diffusion_model: torch.nn.Module) -> bool:
    """Whether the model's forward runs ComfyUI's DIFFUSION_MODEL wrappers (read from its source)."""
    try:
        return "WrappersMP.DIFFUSION_MODEL" in inspect.getsource(type(diffusion_model).forward)
    except (OSError, TypeError):
        return False


class WholeModelAdapter(ModelAdapter):
    level = "model"
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
        return first_block_args["img"]
