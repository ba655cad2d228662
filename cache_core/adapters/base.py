"""What the engine needs to know about a model family, and nothing about caching.

An adapter names the blocks in execution order (their `patches_replace["dit"]` keys, which hook
arguments each block transforms, and whether its `img` is the joined text+image sequence), says
how a two-stream block's tensors join into one sequence (so a whole-stack residual can be formed
in the last block's layout; the order of that join is read from the call), computes the cheap
per-step signal that threshold policies read (the first block's modulated input), and declares
the published presets of its family (or that none exist).
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
    # Whether a block hook passes a hidden-state stream as a tuple of tensors (LTX-2's (video,
    # audio) pair under `img`): the hook then hands the engine `engine_view`, one tensor per stream,
    # and the model `model_view`, its own tuples.
    packs_streams: bool = False
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
        those terms twice. The arguments are what ComfyUI's `apply_model` received; ComfyUI's own
        per-block patches are detected for every family (attachment/between_blocks.py)."""
        return False

    def engine_view(self, hidden: dict) -> dict:
        """A hook's arguments, or a block's output, with each hidden-state stream one tensor (for
        a family that `packs_streams`)."""
        return hidden

    def model_view(self, hidden: dict, like: dict) -> dict:
        """`engine_view`'s form back in the model's, shaped like the hook's own arguments `like`."""
        return hidden

    def joint_sequence(self, tensors: dict[str, torch.Tensor], text_first: bool) -> torch.Tensor:
        """A two-stream block's `img` and `txt` joined as the family's joint blocks see them."""
        raise NotImplementedError(f"{type(self).__name__} has no joint blocks")

    def stack_parts(self, spec: BlockSpec, tensors: dict[str, torch.Tensor], last: BlockSpec) -> dict[str, torch.Tensor]:
        """Of a block's per-output tensors (its inputs, or its residuals), the ones that make up
        the last block's `img`: both streams of a two-stream block when the stack ends on joint
        blocks (`in_last_layout` joins them), else `img` alone."""
        keys = ("img", "txt") if last.joint and not spec.joint else ("img",)
        return {k: tensors[k] for k in keys}

    def in_last_layout(self, parts: dict[str, torch.Tensor], text_first: bool | None) -> torch.Tensor:
        """`stack_parts` arranged as the last block's `img`: joined in the order the model's joint
        blocks use (`text_first`, read from the call by `joint_text_first`)."""
        if len(parts) == 1:
            return parts["img"]
        if text_first is None:
            raise RuntimeError("the joint blocks' token order was not seen before the last block")
        return self.joint_sequence(parts, text_first)

    def stack_input(self, first_block_args: dict, blocks: list[BlockSpec]) -> dict[str, torch.Tensor]:
        """The stack's input as `stack_parts`: what the last block would receive, once joined, if
        every block before it were the identity. Kept across the whole stack, so copies where the
        blocks add into their inputs in place."""
        parts = self.stack_parts(blocks[0], first_block_args, blocks[-1])
        return {k: v.clone() if self.blocks_modify_inputs else v for k, v in parts.items()}

    def joint_text_first(self, joined: torch.Tensor, streams: dict[str, torch.Tensor]) -> bool | None:
        """Whether the first joint block's input `joined` puts the text before the image, read by
        comparing it with the two streams the block before it returned (`streams`); None when it
        is neither join of them. ComfyUI has changed this order between releases (HunyuanVideo's
        single blocks: image first in 0.3.75, text first in 0.26), so it is read from the call,
        never assumed."""
        img, txt = streams["img"], streams["txt"]
        tokens = txt.shape[1]
        if joined.shape[1] != img.shape[1] + tokens or tokens == 0:
            return None
        # the text alone: a ControlNet may have added to the image after the block returned it
        first, last = torch.equal(joined[:, :tokens], txt), torch.equal(joined[:, -tokens:], txt)
        return first if first != last else None
