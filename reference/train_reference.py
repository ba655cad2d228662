"""Trains one reference model (flow matching / rectified flow, as FLUX, Wan2.1 and HunyuanVideo
are trained) on the procedural world in `reference_data.py`, in ComfyUI's own model classes, and
writes fp16 safetensors plus a JSON of the run (seed, steps, final loss) to reference/weights/.

    python reference/train_reference.py --family flux --steps 4000 --device cuda

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
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import comfy_runtime  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--family", required=True, choices=["flux", "wan", "hunyuan_video"])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-4)
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
    with torch.no_grad():  # ComfyUI's layers skip initialisation: weights start as whatever memory held
        for name, p in dm.named_parameters():
            if p.ndim >= 2:
                p.copy_((torch.randn(p.shape, generator=generator) * p.shape[-1] ** -0.5).to(p))
            elif name.endswith((".scale", ".weight")) and "norm" in name:
                p.fill_(1.0)  # norm gains: at 0 the query/key norms zero every attention score, for good
            else:
                p.zero_()
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

    # Everything per step stays on the device: the loop is otherwise bound by host copies.
    pool_x, pool_ctx, pool_pooled = pool_x.to(device), pool_ctx.to(device), pool_pooled.to(device)
    step_generator = torch.Generator(device=device).manual_seed(args.seed + 1)
    params = [p for p in dm.parameters()]
    ema = [p.detach().clone() for p in params]
    optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    warmup = min(200, args.steps // 10 + 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s / args.steps, 1.0))))
    out = args.out or refs.WEIGHTS
    out.mkdir(parents=True, exist_ok=True)

    def save(stopped: str | None) -> None:
        """Write the EMA weights and the run's JSON (also mid-run, so a crash leaves the last)."""
        state = dict(dm.state_dict())
        state.update({name: value for (name, _), value in zip(dm.named_parameters(), ema)})
        save_file({k: v.to(torch.float16).contiguous().cpu() for k, v in state.items()},
                  str(out / f"{args.family}.safetensors"))
        meta = dict(family=args.family, unet_config=unet, seed=args.seed, steps=steps_done, steps_planned=args.steps,
                    batch=args.batch, lr=args.lr, pool=args.pool,
                    final_loss=round(float(torch.stack(losses[-100:]).mean()), 5),
                    parameters=sum(p.numel() for p in dm.parameters()), train_seconds=round(time.time() - start, 1),
                    device=torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                    torch=torch.__version__, weights="EMA 0.999, fp16", stopped=stopped)
        (out / f"{args.family}.json").write_text(json.dumps(meta, indent=1))
        print(json.dumps(meta), flush=True)

    dm.train()
    losses: list[torch.Tensor] = []
    start = time.time()
    steps_done = 0
    stopped = None
    for step in range(args.steps):
        if args.max_seconds and time.time() - start > args.max_seconds:
            stopped = f"time limit {args.max_seconds}s"
            break
        if step and step % 1000 == 0:
            save(stopped=f"checkpoint at step {step}")
        idx = torch.randint(args.pool, (args.batch,), generator=step_generator, device=device)
        x0, ctx, pooled = pool_x[idx], pool_ctx[idx], pool_pooled[idx]
        keep = (torch.rand(args.batch, generator=step_generator, device=device) >= 0.1).float()
        ctx, pooled = ctx * keep.view(-1, 1, 1), pooled * keep.view(-1, 1)
        sigma = torch.sigmoid(torch.randn(args.batch, generator=step_generator, device=device))
        noise = torch.randn(x0.shape, generator=step_generator, device=device)
        s = sigma.view(-1, *[1] * (x0.ndim - 1))
        x_t = (1 - s) * x0 + s * noise
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            prediction = call(x_t, sigma, ctx, pooled, options)
        loss = torch.nn.functional.mse_loss(prediction.float(), noise - x0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, params, 1.0 - 0.999 if step > warmup else 1.0)
        losses.append(loss.detach())
        steps_done = step + 1
        if step % 500 == 0 or step == args.steps - 1:
            print(f"step {step} loss {float(torch.stack(losses[-50:]).mean()):.4f} ({time.time() - start:.0f}s)", flush=True)
    save(stopped=stopped)


if __name__ == "__main__":
    main()
