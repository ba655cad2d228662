"""What the engine needs to know about a model family, and nothing about caching.

An adapter names the blocks in execution order (their `patches_replace["dit"]` keys and which
hook arguments each block transforms), maps the first block's inputs to the layout of the last
block (so a whole-stack residual can be formed), computes the cheap per-step signal that
threshold policies read (the first block's modulated input), and declares the published presets
of its family (or that none exist).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from .presets import MagnitudePreset, TeaCachePreset

BlockKey = tuple[str, int]


@dataclass(frozen=True)
class BlockSpec:
    """One hookable block: its `patches_replace["dit"]` key and the hidden-state entries of the
    hook's `args` that the block transforms (and that its hook must return)."""

    key: BlockKey
    outputs: tuple[str, ...]


class ModelAdapter(ABC):
    """Describes one model family's block stack to the engine.

    A subclass that sets `family` and `model_class` is registered by being defined in a module of
    this package (see `adapters/__init__.py`)."""

    family: str = ""
    display_name: str = ""   # how users name the family ("FLUX", "Wan2.1")
    # The ComfyUI diffusion-model class (subclasses included) this adapter describes.
    model_class: type = type(None)
    # Whether the blocks add into their input tensors in place (ComfyUI's FLUX layers do): the
    # engine then copies a block's inputs before computing it, to form the residual.
    blocks_modify_inputs: bool = True
    # Published calibrations; the first of each is the family's default ("auto"). Empty: none
    # exists, and the threshold nodes then ask for a Block Profiler profile.
    teacache_presets: tuple[TeaCachePreset, ...] = ()
    magnitude_presets: tuple[MagnitudePreset, ...] = ()

    def matches(self, diffusion_model: torch.nn.Module) -> bool:
        """Whether this adapter describes `diffusion_model`."""
        return isinstance(diffusion_model, self.model_class)

    @abstractmethod
    def block_modules(self, diffusion_model: torch.nn.Module) -> list[torch.nn.Module]:
        """The block modules in the order the model runs them (one per `blocks()` entry)."""

    @abstractmethod
    def blocks(self, diffusion_model: torch.nn.Module) -> list[BlockSpec]:
        """Every block, in the order the model runs them."""

    @abstractmethod
    def stack_input(self, first_block_args: dict) -> torch.Tensor:
        """The stack's input arranged as the last block's `img` is: what the last block would
        receive if every block before it were the identity. The engine keeps the returned tensor
        across the whole stack, so it must not be one that a block modifies in place."""

    @abstractmethod
    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        """The first block's timestep-modulated input (TeaCache's change signal)."""

    def adds_between_blocks(self, diffusion_model: torch.nn.Module, control: object, model_kwargs: dict) -> bool:
        """Whether this model call adds terms to the hidden states between blocks, outside the
        block hooks (ControlNet residuals, VACE hints): the engine then records the blocks' own
        residuals one by one, so that a skipped step does not count those terms twice. `control`
        and `model_kwargs` are what ComfyUI's `apply_model` received."""
        return False

    def in_stack_layout(self, spec: BlockSpec, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """A block's per-output tensors (e.g. its residuals) arranged as the last block's `img`."""
        return tensors["img"] if spec.outputs == ("img",) else self.stack_input(tensors)
