"""LTX-2 (`comfy.ldm.lightricks.av_model.LTXAVModel`, ComfyUI 0.26 on): the LTX-Video block list,
hooked under the `double_block` key, whose blocks carry the video and the audio tokens together:
the hook's `img` is a (video, audio) pair of different widths. The engine sees the pair packed
into one flat tensor per call (the whole video, then the whole audio), so a skipped step stands in
for both streams with one residual and every policy works unchanged; the blocks get contiguous
views of it back. A video-only LTX-2 run carries an empty audio stream."""
from __future__ import annotations

import math

import torch

import comfy.ldm.common_dit

from .ltxv import LTXVAdapter

try:
    from comfy.ldm.lightricks.av_model import LTXAVModel
except ImportError:   # a ComfyUI from before LTX-2: the family does not exist there
    LTXAVModel = None


class LTX2Adapter(LTXVAdapter):
    family = "ltx2" if LTXAVModel is not None else ""
    display_name = "LTX-2"
    model_class = LTXAVModel if LTXAVModel is not None else type(None)
    packs_streams = True
    blocks_modify_inputs = True   # BasicAVTransformerBlock adds into both streams in place (addcmul_, add_)
    teacache_presets = ()         # none published for LTX-2

    def engine_view(self, hidden: dict) -> dict:
        video, audio = hidden["img"]
        packed = torch.cat((video.reshape(-1), audio.reshape(-1)))
        return {**hidden, "img": packed, "img_shapes": (video.shape, audio.shape)}

    def model_view(self, hidden: dict, like: dict) -> dict:
        video, audio = like["img"]
        packed, split = hidden["img"], video.numel()
        unpacked = {k: v for k, v in hidden.items() if k != "img_shapes"}
        return {**unpacked, "img": (packed[:split].view(video.shape), packed[split:].view(audio.shape))}

    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        """The first block's video self-attention input: RMS-normed video tokens, scaled and shifted
        by the step (the block's own `get_ada_values`)."""
        block = diffusion_model.transformer_blocks[0]
        video_shape = first_block_args["img_shapes"][0]
        video = first_block_args["img"][:math.prod(video_shape)].view(video_shape)
        shift, scale = block.get_ada_values(block.scale_shift_table, video.shape[0], first_block_args["v_timestep"],
                                            slice(0, 2))
        normed = comfy.ldm.common_dit.rms_norm(video)
        return torch.addcmul(normed, normed, scale) + shift
