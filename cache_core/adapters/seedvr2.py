"""SeedVR2 (`comfy.ldm.seedvr.model.NaDiT`, ComfyUI 0.33 on): one list of blocks, hooked under the
`block` key, over the video tokens (`vid`) and the text tokens (`txt`), each flattened over the
batch into one (tokens, width) tensor; the last block of the 3B model updates the video alone.

Its hooks name the video stream `vid` and hand each block the token shapes (`vid_shape`,
`txt_shape`) it returns unchanged, and the forward's `cache` (a per-call memo of window layouts,
lengths and repeated modulations that the blocks fill as they run). The engine sees the video as
`img` (`engine_view`); the model gets its own names back, the shapes from the hook's arguments
(`model_view`).

A skipped step leaves that memo without what the blocks would have put in it, and the 3B model's
output norm reads one entry of it after the stack (`NaDiT.forward`'s `vid_out_ada`): the video's
attention modulation repeated per token, which each block's `ada` stores under the key the output
norm asks for (`emb_repeat_0_vid`, so the output norm takes the blocks' value). Without it the
output norm makes its own of another width and the forward fails. `engine_view` therefore puts that
entry in the memo at each hook, as the first block's `ada` would (the same value, so a computed
block finds it there and uses it unchanged)."""
from __future__ import annotations

import torch

from .base import BlockSpec, ModelAdapter

try:
    from comfy.ldm.seedvr.model import MMArg, NaDiT, expand_dims
except ImportError:   # a ComfyUI from before SeedVR2: the family does not exist there
    NaDiT = None

_SHAPES = ("vid_shape", "txt_shape")


class SeedVR2Adapter(ModelAdapter):
    family = "seedvr2" if NaDiT is not None else ""
    display_name = "SeedVR2"
    model_class = NaDiT if NaDiT is not None else type(None)
    blocks_modify_inputs = False   # NaMMSRTransformerBlock normalises into new tensors, then adds
    # the hook's names differ from the engine's: its views rename the video stream
    packs_streams = True

    def block_modules(self, diffusion_model: torch.nn.Module) -> list[torch.nn.Module]:
        return list(diffusion_model.blocks)

    def blocks(self, diffusion_model: torch.nn.Module) -> list[BlockSpec]:
        return [BlockSpec(("block", i), ("img", "txt")) for i in range(len(diffusion_model.blocks))]

    def engine_view(self, hidden: dict) -> dict:
        if "cache" in hidden:   # a hook's arguments (a block's output holds no memo)
            _keep_block_modulation(hidden)
        renamed = {k: v for k, v in hidden.items() if k != "vid"}
        return {**renamed, "img": hidden["vid"]}

    def model_view(self, hidden: dict, like: dict) -> dict:
        renamed = {k: v for k, v in hidden.items() if k != "img"}
        return {**{k: like[k] for k in _SHAPES}, **renamed, "vid": hidden["img"]}

    def modulated_input(self, diffusion_model: torch.nn.Module, first_block_args: dict) -> torch.Tensor:
        """The first block's video attention input: the normed video tokens, scaled and shifted by
        the step (the block's own `ada`, which writes into the tensor it is given)."""
        block = diffusion_model.blocks[0]
        vid, txt = block.attn_norm(first_block_args["img"], first_block_args["txt"])
        vid, _ = block.ada(vid, txt, layer="attn", mode="in", **_ada_arguments(first_block_args))
        return vid


def _ada_arguments(args: dict) -> dict:
    """What a block hands its `ada` (the block's own `ada_kwargs`), from the hook's arguments."""
    cache = args["cache"]
    lengths = MMArg(cache("vid_len", lambda: args["vid_shape"].prod(-1)),
                    cache("txt_len", lambda: args["txt_shape"].prod(-1)))
    return {"emb": args["emb"], "hid_len": lengths, "cache": cache, "branch_tag": MMArg("vid", "txt")}


def _keep_block_modulation(args: dict) -> None:
    """The video's attention modulation repeated per token, in the forward's memo under the key
    a block's `ada` (`AdaSingle`, layers attention and MLP, the attention's first) stores it with,
    for a hidden state of one token axis."""
    emb, cache = args["emb"], args["cache"]
    attention = expand_dims(emb.reshape(emb.shape[0], -1, 2, 3)[:, :, 0, :], 1, args["vid"].ndim + 1)
    lengths = cache("vid_len", lambda: args["vid_shape"].prod(-1))
    cache("emb_repeat_0_vid", lambda: torch.repeat_interleave(attention, lengths, dim=0))
