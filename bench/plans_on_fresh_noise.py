"""Fixed calibrated plans on cases no calibration has seen: prompts from their own generator
(seed 1234) on noise seeds 300+, pixel PSNR against the uncached output, per case. Asks whether a
plan that held every case it was fitted to (`bench/calibrated.py --calibration-draw benchmark`
with a longer search) holds new noise better than the default search's plan does.
Writes bench/results/plans_on_fresh_noise_<family>_cfg<CFG>.md.

    .venv/bin/python bench/plans_on_fresh_noise.py --family flux --cfg 1 --plans CC2222C2222C2222C222222C222C
"""
from __future__ import annotations

import argparse
from pathlib import Path

from bench_paths import ROOT  # noqa: E402  (also puts scripts/ and reference/ on the path)

import comfy_runtime  # noqa: E402

FIRST_NOISE_SEED = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="flux")
    parser.add_argument("--cfg", type=float, default=1.0)
    parser.add_argument("--cases", type=int, default=16)
    parser.add_argument("--plans", required=True, help="comma-separated plans (policies/planned.py letters)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    comfy_runtime.boot()
    comfy_runtime.load_pack()
    import torch

    import calibrated
    import quality
    import reference_data as rd
    import reference_models as refs
    from image_metrics import psnr
    from comfyui_dit_cache.cache_core.policies import PlannedSchedule
    from comfyui_dit_cache.nodes.apply import apply_cache

    steps = quality.STEPS = calibrated.STEPS[args.family]
    quality.CFG = args.cfg
    model = refs.load(args.family)
    g = torch.Generator().manual_seed(1234)
    prompts = [rd.random_prompt(g, model.video) for _ in range(args.cases)]

    def sample_all(patcher) -> list:
        return [quality.decoded(quality.sample_prompt(model, patcher, i, p, FIRST_NOISE_SEED))
                for i, p in enumerate(prompts)]

    reference = sample_all(model.patcher)
    lines = ["# Calibrated plans on unseen noise", "",
             f"`bench/plans_on_fresh_noise.py --family {args.family} --cfg {args.cfg:g} --cases {args.cases}` on the "
             f"trained {args.family} reference model (CPU), {steps} steps, euler / simple: {args.cases} prompts from "
             f"generator seed 1234 on noise seeds {FIRST_NOISE_SEED}+, pixel PSNR against the uncached output.", "",
             "| plan | ideal speedup | mean (dB) | worst case (dB) | per case (dB) |", "|---|---:|---:|---:|---|"]
    for plan in args.plans.split(","):
        patched = apply_cache(model.patcher, "Calibrated", lambda _adapter, plan=plan: PlannedSchedule(plan),
                              node_id=None)
        values = [min(psnr(o, r, 2.0), 100.0) for o, r in zip(sample_all(patched), reference)]
        lines.append(f"| `{plan}` | {len(plan) / plan.count('C'):.2f}x | {sum(values) / len(values):.1f} | "
                     f"{min(values):.1f} | {' '.join(f'{v:.0f}' for v in values)} |")
        print(lines[-1], flush=True)
    out = args.out or ROOT / "bench" / "results" / f"plans_on_fresh_noise_{args.family}_cfg{args.cfg:g}.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
