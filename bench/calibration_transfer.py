"""How far a calibrated plan carries to noise it has not seen: each benchmark prompt is calibrated
on by itself (a Block Profiler run on noise seed 99 plus `--extra-seeds` more), and its plans are
scored on that same prompt with the benchmark's own noise seed (`quality.sample_prompt`), pixel
PSNR against the uncached output. Set beside `bench/calibrated.py`, where the calibration prompts
are others: if the same prompt on other noise does no better, the worst case is set by the noise,
which no calibration run can see. Writes bench/results/calibration_transfer_cfg<CFG>.md.

    .venv/bin/python bench/calibration_transfer.py --cfg 1
"""
from __future__ import annotations

import argparse
from pathlib import Path

from bench_paths import ROOT  # noqa: E402  (also puts scripts/ and reference/ on the path)

import comfy_runtime  # noqa: E402
import node_runner  # noqa: E402

SPEEDUPS = (4.0, 6.0)


def run_family(family: str, prompts: int, evaluations: int, extra_seeds: int) -> list[str]:
    import calibrated
    import quality
    import reference_models as refs
    from image_metrics import psnr
    from comfyui_dit_cache.nodes import CalibratedCache

    calibrated.SPEEDUPS = SPEEDUPS
    quality.STEPS = calibrated.STEPS[family]
    model = refs.load(family)
    lines = [f"## {family}, {quality.STEPS} steps", "",
             "| prompt | speedup | plan | worst calibration case (latent dB) | benchmark seed (pixel dB) |",
             "|---:|---:|---|---:|---:|"]
    scores: dict[float, list[float]] = {s: [] for s in SPEEDUPS}
    for index, prompt in enumerate(quality.bench_prompts(model, prompts)):
        profile, _seconds = calibrated.calibrate(model, [prompt], evaluations, extra_seeds)
        reference = quality.decoded(quality.sample_prompt(model, model.patcher, index, prompt))
        for plan in profile["calibration"]["plans"]:
            patched = node_runner.run_node(
                CalibratedCache, "bench", model=model.patcher, speedup=plan["speedup"], profile=profile,
                cache_device="model device")[0]
            value = min(psnr(quality.decoded(quality.sample_prompt(model, patched, index, prompt)), reference, 2.0),
                        100.0)
            scores[plan["speedup"]].append(value)
            lines.append(f"| {index} | {plan['speedup']:g}x | `{plan['plan']}` | {plan['psnr_worst']:.1f} "
                         f"| {value:.1f} |")
            print(f"{family:14s} prompt {index} {plan['speedup']:g}x {plan['plan']} calibration "
                  f"{plan['psnr_worst']:.1f} benchmark {value:.1f}", flush=True)
    lines += [""] + [f"- {s:g}x: mean {sum(v) / len(v):.1f} dB, worst prompt {min(v):.1f} dB" for s, v in scores.items()]
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default="flux,wan,hunyuan_video")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--evaluations", type=int, default=12, help="plans sampled per speedup")
    parser.add_argument("--extra-seeds", type=int, default=1)
    parser.add_argument("--cfg", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=None,
                        help="default: bench/results/calibration_transfer_cfg<CFG>.md")
    args = parser.parse_args()
    comfy_runtime.boot()
    comfy_runtime.load_pack()
    import quality

    quality.CFG = args.cfg
    lines = ["# A calibrated plan on the prompt it was calibrated on, with unseen noise", "",
             f"`bench/calibration_transfer.py --prompts {args.prompts} --evaluations {args.evaluations} --extra-seeds "
             f"{args.extra_seeds} --cfg {args.cfg:g}` on the trained reference models (CPU), euler / simple: each "
             f"benchmark prompt calibrated by itself on {1 + args.extra_seeds} noise seed(s) (99 and on), scored on "
             "its benchmark noise seed (100 + its index).", ""]
    for family in args.families.split(","):
        lines += run_family(family, args.prompts, args.evaluations, args.extra_seeds)
    out = args.out or ROOT / "bench" / "results" / f"calibration_transfer_cfg{args.cfg:g}.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
