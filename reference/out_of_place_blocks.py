"""Training only: ComfyUI's FLUX-layer blocks (FLUX, HunyuanVideo) add into their inputs in
place, which autograd refuses. These are the same computations written out of place, installed
for training through `patches_replace["dit"]` (no class is patched). `check_equivalence` proves
they match the real blocks before any training step runs."""
from __future__ import annotations

import torch
from comfy.ldm.flux.layers import apply_mod
from comfy.ldm.flux.math import attention


def double_block(block):
    def forward(args: dict, extra: dict) -> dict:
        img, txt, vec, pe = args["img"], args["txt"], args["vec"], args["pe"]
        mask = args.get("attn_mask", args.get("attention_mask"))
        options = args.get("transformer_options", {})
        img_mod1, img_mod2 = block.img_mod(vec)
        txt_mod1, txt_mod2 = block.txt_mod(vec)

        def qkv(norm, mod, attn, x):
            y = attn.qkv(apply_mod(norm(x), 1 + mod.scale, mod.shift))
            q, k, v = y.view(y.shape[0], y.shape[1], 3, block.num_heads, -1).permute(2, 0, 3, 1, 4)
            q, k = attn.norm(q, k, v)
            return q, k, v

        iq, ik, iv = qkv(block.img_norm1, img_mod1, block.img_attn, img)
        tq, tk, tv = qkv(block.txt_norm1, txt_mod1, block.txt_attn, txt)
        if getattr(block, "flipped_img_txt", False):   # ComfyUI 0.26 dropped it (text first)
            out = attention(torch.cat((iq, tq), 2), torch.cat((ik, tk), 2), torch.cat((iv, tv), 2), pe=pe, mask=mask,
                            transformer_options=options)
            img_attn, txt_attn = out[:, :img.shape[1]], out[:, img.shape[1]:]
        else:
            out = attention(torch.cat((tq, iq), 2), torch.cat((tk, ik), 2), torch.cat((tv, iv), 2), pe=pe, mask=mask,
                            transformer_options=options)
            txt_attn, img_attn = out[:, :txt.shape[1]], out[:, txt.shape[1]:]
        img = img + apply_mod(block.img_attn.proj(img_attn), img_mod1.gate)
        img = img + apply_mod(block.img_mlp(apply_mod(block.img_norm2(img), 1 + img_mod2.scale, img_mod2.shift)), img_mod2.gate)
        txt = txt + apply_mod(block.txt_attn.proj(txt_attn), txt_mod1.gate)
        txt = txt + apply_mod(block.txt_mlp(apply_mod(block.txt_norm2(txt), 1 + txt_mod2.scale, txt_mod2.shift)), txt_mod2.gate)
        return {"img": img, "txt": txt}
    return forward


def single_block(block):
    def forward(args: dict, extra: dict) -> dict:
        x, vec, pe = args["img"], args["vec"], args["pe"]
        mask = args.get("attn_mask", args.get("attention_mask"))
        mod, _ = block.modulation(vec)
        qkv, mlp = torch.split(block.linear1(apply_mod(block.pre_norm(x), 1 + mod.scale, mod.shift)),
                               [3 * block.hidden_size, block.mlp_hidden_dim_first], dim=-1)
        q, k, v = qkv.view(qkv.shape[0], qkv.shape[1], 3, block.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k = block.norm(q, k, v)
        out = attention(q, k, v, pe=pe, mask=mask, transformer_options=args.get("transformer_options", {}))
        return {"img": x + apply_mod(block.linear2(torch.cat((out, block.mlp_act(mlp)), 2)), mod.gate)}
    return forward


def patches_for(diffusion_model) -> dict:
    """`transformer_options` whose replace patches run every FLUX-layer block out of place."""
    if not hasattr(diffusion_model, "double_blocks"):
        return {}
    replace = {("double_block", i): double_block(b) for i, b in enumerate(diffusion_model.double_blocks)}
    replace.update({("single_block", i): single_block(b) for i, b in enumerate(diffusion_model.single_blocks)})
    return {"patches_replace": {"dit": replace}}


def check_equivalence(diffusion_model, call) -> float:
    """Largest difference between the real forward and the out-of-place one (must be ~0)."""
    options = patches_for(diffusion_model)
    if not options:
        return 0.0
    with torch.no_grad():
        real = call({})
        rebuilt = call(options)
    return float((real - rebuilt).abs().max())
