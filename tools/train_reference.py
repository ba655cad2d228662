"""Trains one reference model (flow matching / rectified flow, as FLUX, Wan2.1 and HunyuanVideo
are trained) on the procedural world in `reference_data.py`, in ComfyUI's own model classes, and
writes fp16 safetensors plus a JSON of the run (seed, steps, final loss) to models/reference/.

    python tools/train_reference.py --family flux --steps 4000 --device cuda

Reproducible from the seed. Trained on an H100 through the device tool (see README); `--device
cpu --steps 20` checks the script here.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import comfy_runtime  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--family", required=True, choices=["flux", "wan", "hunyuan_video"])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool", type=int, default=16384, help="procedural samples rendered up front")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop early (and say so in the JSON) when training has run this long")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    comfy_runtime.boot(("--cpu",) if args.device == "cpu" else ())
    import torch
    from safetensors.torch import save_file

    import out_of_place_blocks
    import reference_data as rd
    import reference_models as refs

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    _, unet, video, guidance = refs.CONFIGS[args.family]
    model = refs.build_model(args.family, device)
    dm = model.diffusion_model
    generator = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for name, p in dm.named_parameters():
            fan_in = p.shape[-1] if p.ndim >= 2 else 1
            p.copy_((torch.randn(p.shape, generator=generator) * (fan_in ** -0.5 if p.ndim >= 2 else 0.0)).to(p))
    sampling = model.model_sampling

    pool_x, pool_prompts = rd.batch(args.pool, video, generator)
    table = rd.token_table()
    pool_ctx, pool_pooled = rd.embed(pool_prompts, table)

    def call(x, sigma, ctx, pooled, options):
        kwargs = {"transformer_options": options}
        if args.family != "wan":
            kwargs["y"] = pooled
            kwargs["guidance"] = torch.full((x.shape[0],), guidance, device=device)
        return dm(x, sampling.timestep(sigma), ctx, **kwargs)

    options = out_of_place_blocks.patches_for(dm)
    probe = pool_x[:2].to(device)
    gap = out_of_place_blocks.check_equivalence(
        dm, lambda o: call(probe, torch.full((2,), 0.5, device=device), pool_ctx[:2].to(device), pool_pooled[:2].to(device), o))
    print(f"out-of-place blocks vs ComfyUI's: max difference {gap:.2e}")
    assert gap < 1e-4, "the out-of-place rebuild does not match ComfyUI's blocks"

    ema = {k: v.detach().clone() for k, v in dm.state_dict().items()}
    optimizer = torch.optim.AdamW(dm.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    warmup = min(200, args.steps // 10 + 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s / args.steps, 1.0))))
    dm.train()
    losses: list[torch.Tensor] = []
    start = time.time()
    steps_done = 0
    for step in range(args.steps):
        if args.max_seconds and time.time() - start > args.max_seconds:
            break
        idx = torch.randint(args.pool, (args.batch,), generator=generator)
        x0 = pool_x[idx].to(device)
        ctx, pooled = pool_ctx[idx].to(device), pool_pooled[idx].to(device)
        drop = (torch.rand(args.batch, generator=generator) < 0.1).to(device)
        ctx = torch.where(drop.view(-1, 1, 1), torch.zeros_like(ctx), ctx)
        pooled = torch.where(drop.view(-1, 1), torch.zeros_like(pooled), pooled)
        sigma = torch.sigmoid(torch.randn(args.batch, generator=generator)).to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        s = sigma.view(-1, *[1] * (x0.ndim - 1))
        x_t = (1 - s) * x0 + s * noise
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            prediction = call(x_t, sigma, ctx, pooled, options)
        loss = torch.nn.functional.mse_loss(prediction.float(), noise - x0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dm.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            for k, v in dm.state_dict().items():
                ema[k].lerp_(v, 1.0 - 0.999 if step > warmup else 1.0)
        losses.append(loss.detach())
        steps_done = step + 1
        if step % 250 == 0 or step == args.steps - 1:
            print(f"step {step} loss {float(torch.stack(losses[-50:]).mean()):.4f} ({time.time() - start:.0f}s)", flush=True)

    out = args.out or refs.FIXTURES
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.to(torch.float16).contiguous().cpu() for k, v in ema.items()}, str(out / f"{args.family}.safetensors"))
    meta = dict(family=args.family, unet_config=unet, seed=args.seed, steps=steps_done, steps_planned=args.steps,
                batch=args.batch, lr=args.lr, pool=args.pool,
                final_loss=round(float(torch.stack(losses[-100:]).mean()), 5),
                parameters=sum(p.numel() for p in dm.parameters()), train_seconds=round(time.time() - start, 1),
                device=torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                torch=torch.__version__, weights="EMA 0.999, fp16")
    (out / f"{args.family}.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
