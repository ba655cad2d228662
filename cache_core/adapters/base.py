"""What the engine needs to know about a model family, and nothing about caching.

An adapter names the blocks in execution order (their `patches_replace["dit"]` keys and which
hook arguments each block transforms), maps the first block's inputs to the layout of the last
block (so a whole-stack residual can be formed), and computes the cheap per-step signal that
threshold policies read: the first block's modulated input.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

BlockKey = tuple[str, int]


@dataclass(frozen=True)
class BlockSpec:
    """One hookable block: its `patches_replace["dit"]` key and the hidden-state entries of the
    hook's `args` that the block transforms (and that its hook must return)."""

    key: BlockKey
    streams: tuple[str, ...]


class ModelAdapter(ABC):
    """Describes one model family's block stack to the engine."""

    family: str = ""
    # Whether the blocks add into their input tensors in place (ComfyUI's FLUX layers do): the
    # engine then copies a block's inputs before computing it, to form the residual.
    blocks_modify_inputs: bool = True

    @abstractmethod
    def matches(self, diffusion_model: torch.nn.Module) -> bool:
        """Whether this adapter describes `diffusion_model`."""

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
