"""MiniMax H3 (`comfy.ldm.minimax.model.MiniMaxH3Model`, ComfyUI 0.33 on): an audio-video model
whose single-stream blocks, hooked under the `double_block` key, run one packed sequence of rows
`[text | reference or keyframe rows | audio | video]` (no batch axis). The hook's `img` is that
whole sequence, so the audio and the video tokens are cached together in one residual of the
whole stack; the text and reference rows ride along (the final layer reads only the audio and
video rows). Denoise masks and reference rows reach the blocks as per-row timesteps
(`mod_segments`), an argument the blocks read, never a hidden state the cache stands in for; the
forward adds nothing between blocks. The model takes and returns a `[video, audio]` list, which
only its own forward sees: ComfyUI's `apply_model` packs it into one latent around it."""
from __future__ import annotations

import torch

from .base import BlockSpec, ModelAdapter

try:
    from comfy.ldm.minimax.model import MiniMaxH3Model, _mod_scale_shift
except ImportError:   # a ComfyUI from before MiniMax H3: the family does not exist there
    MiniMaxH3Model = None


class MiniMaxH3Adapter(ModelAdapter):
    family = "minimax_h3" if MiniMaxH3Model is not None else ""
    display_name = "MiniMax H3"
    model_class = MiniMaxH3Model if MiniMaxH3Model is not None else type(None)
    blocks_modify_inputs = True   # DiTBlock adds its gated residuals into its input in place (addcmul_)
    teacache_presets = ()         # none published for MiniMax H3

    def block_modules(self, diffusion_model: torch.nn.Module) -> list[torch.nn.Module]:
        return list(diffusion_model.blocks)

    def blocks(self, diffusion_model: torch.nn.Module) -> list[BlockSpec]:
        return [BlockSpec(("double_block", i), ("img",)) for i in range(len(diffusion_model.blocks))]

    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        """The first block's attention input: RMS-normed rows, each scaled and shifted by its own
        segment's timestep (the block's own modulation, masks and reference rows included)."""
        block = diffusion_model.blocks[0]
        shift, scale = block.adaln_proj(first_block_args["t_emb"])[:2]
        return _mod_scale_shift(block.norm1(first_block_args["img"]), shift, scale, first_block_args["mod_segments"])
