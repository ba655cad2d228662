"""What the engine needs to know about a model family, and nothing about caching.

An adapter names the blocks in execution order (their `patches_replace["dit"]` keys, which hook
arguments each block transforms, and whether its `img` is the joined text+image sequence), says
how a two-stream block's tensors join into one sequence (so a whole-stack residual can be formed
in the last block's layout), computes the cheap per-step signal that threshold policies read
(the first block's modulated input), and declares the published presets of its family (or that
none exist).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from .presets import MagnitudePreset, TeaCachePreset

BlockKey = tuple[str, int]


@dataclass(frozen=True)
class BlockSpec:
    """One hookable block: its `patches_replace["dit"]` key, the hidden-state entries of the
    hook's `args` that the block transforms (and that its hook must return), and whether its
    `img` is the joined text+image sequence (FLUX's single-stream blocks)."""

    key: BlockKey
    outputs: tuple[str, ...]
    joint: bool = False


class ModelAdapter(ABC):
    """Describes one model family's block stack to the engine.

    A subclass that sets `family` and `model_class` is registered by being defined in a module of
    this package (see `adapters/__init__.py`)."""

    family: str = ""
    display_name: str = ""   # how users name the family ("FLUX", "Wan2.1")
    level: str = "block"     # "block": cached block by block; "model": the whole model as one block
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
    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        """The first block's timestep-modulated input (TeaCache's change signal)."""

    def adds_between_blocks(self, diffusion_model: torch.nn.Module, control: object, transformer_options: dict,
                            model_kwargs: dict) -> bool:
        """Whether this model call adds terms to the hidden states between blocks, outside the
        block hooks (ControlNet residuals, VACE hints, other packs' per-block patches): the engine
        then records the blocks' own residuals one by one, so that a skipped step does not count
        those terms twice. The arguments are what ComfyUI's `apply_model` received."""
        return False

    def joint_sequence(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """A two-stream block's `img` and `txt` joined as the family's joint blocks see them."""
        raise NotImplementedError(f"{type(self).__name__} has no joint blocks")

    def in_last_layout(self, spec: BlockSpec, tensors: dict[str, torch.Tensor], last: BlockSpec) -> torch.Tensor:
        """A block's per-output tensors (its inputs, or its residuals) arranged as the last
        block's `img`: joined when the stack ends on joint blocks and this block is not one."""
        return self.joint_sequence(tensors) if last.joint and not spec.joint else tensors["img"]

    def stack_input(self, first_block_args: dict, blocks: list[BlockSpec]) -> torch.Tensor:
        """The stack's input arranged as the last block's `img` is: what the last block would
        receive if every block before it were the identity. Kept across the whole stack, so it is
        a copy where the blocks add into their inputs in place."""
        joined = self.in_last_layout(blocks[0], first_block_args, blocks[-1])
        return joined.clone() if self.blocks_modify_inputs and joined is first_block_args["img"] else joined
