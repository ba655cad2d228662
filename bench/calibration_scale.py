"""Does a plan calibrated on a smaller latent carry to the full size? On the trained reference
models: Calibrated Cache's plans calibrated through the real Block Profiler on the full latent,
on half the side (images and video), and on fewer frames (video), each then run at the full size
on the benchmark prompts and scored by pixel PSNR against the uncached output (mean and worst
prompt). Same calibration prompts and noise seed (99) for every size. Writes
bench/results/calibration_scale_cfg<CFG>.md.

    .venv/bin/python bench/calibration_scale.py --cfg 1
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_paths import ROOT  # noqa: E402  (also puts scripts/ and reference/ on the path)

import comfy_runtime  # noqa: E402
import node_runner  # noqa: E402


def sizes_for(model) -> list[tuple[str, tuple[int, ...]]]:
    """(label, latent shape of one case) to calibrate on: the full latent, then smaller ones."""
    full = model.latent_shape(1)[1:]
    side = full[-1] // 2
    out = [("full size", full), ("half the side", (*full[:-2], side, side))]
    if model.video:
        out.append(("3 of 5 latent frames", (full[0], 3, *full[2:])))
    return out


def calibrate_at(model, prompts: list, shape: tuple[int, ...], evaluations: int) -> tuple[dict, float]:
    """Profile and calibrate through the nodes on a batch of `prompts` at latent `shape`."""
    import comfy.sample
    import folder_paths
    import torch

    import calibrated
    import quality
    from comfyui_dit_cache.nodes import BlockProfiler, LoadCacheProfile

    folder_paths.set_output_directory(tempfile.mkdtemp(prefix="dit-cache-calibration-"))
    speedups = ", ".join(f"{s:g}" for s in calibrated.SPEEDUPS)
    patched = node_runner.run_node(BlockProfiler, "bench", model=model.patcher, profile_name="calibration",
                                   calibrate_speedups=speedups, extra_seeds=0, search_evaluations=evaluations)[0]
    batch = (len(prompts), *shape)
    noise = torch.randn(batch, generator=torch.Generator().manual_seed(99))
    start = time.perf_counter()
    comfy.sample.sample(patched, noise, quality.STEPS, quality.CFG, "euler", "simple",
                        model.batch_conditioning(prompts), model.empty_conditioning(), torch.zeros(batch), seed=99,
                        disable_pbar=True)
    seconds = time.perf_counter() - start
    return node_runner.run_node(LoadCacheProfile, "bench", profile="calibration.json")[0], seconds


def rows_for(family: str, prompts: int, calibration: int, evaluations: int) -> tuple[list[dict], list[str]]:
    import calibrated
    import quality
    import reference_models as refs
    from block_counter import count_block_calls
    from image_metrics import psnr
    from comfyui_dit_cache.nodes import CalibratedCache

    quality.STEPS = calibrated.STEPS[family]
    model = refs.load(family)
    cases = quality.bench_prompts(model, prompts)

    def sample_all(patcher) -> tuple[list, int]:
        with count_block_calls(model.patcher) as counts:
            outputs = [quality.decoded(quality.sample_prompt(model, patcher, i, c)) for i, c in enumerate(cases)]
        return outputs, sum(counts)

    reference, base_blocks = sample_all(model.patcher)
    calibration_prompts = calibrated.calibration_prompts(model, calibration, cases)
    rows, plans = [], []
    for label, shape in sizes_for(model):
        profile, seconds = calibrate_at(model, calibration_prompts, shape, evaluations)
        plans.append(f"- {label} `{list(shape)}` ({seconds:.0f} s): " + "; ".join(
            f"{p['speedup']:g}x `{p['plan']}`" for p in profile["calibration"]["plans"]))
        for speedup in calibrated.SPEEDUPS:
            patched = node_runner.run_node(CalibratedCache, "bench", model=model.patcher, speedup=speedup,
                                           profile=profile, cache_device="model device")[0]
            outputs, blocks = sample_all(patched)
            values = [min(psnr(o, r, 2.0), 100.0) for o, r in zip(outputs, reference)]
            rows.append(dict(size=label, speedup=f"{speedup:g}x", achieved=base_blocks / blocks,
                             mean=sum(values) / len(values), worst=min(values)))
            print(f"{family:14s} {label:22s} {speedup:g}x {rows[-1]['achieved']:.2f}x mean {rows[-1]['mean']:.1f} "
                  f"worst {rows[-1]['worst']:.1f}", flush=True)
    return rows, plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default="flux,wan,hunyuan_video")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--calibration-prompts", type=int, default=3)
    parser.add_argument("--evaluations", type=int, default=12)
    parser.add_argument("--cfg", type=float, default=None, help="CFG scale (default: quality.py's)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    comfy_runtime.boot()
    comfy_runtime.load_pack()
    import quality

    if args.cfg is not None:
        quality.CFG = args.cfg
    lines = ["# Plans calibrated on a smaller latent, run at the full size", "",
             f"`bench/calibration_scale.py --prompts {args.prompts} --calibration-prompts {args.calibration_prompts} "
             f"--evaluations {args.evaluations} --cfg {quality.CFG:g}` on the trained reference models (CPU), CFG "
             f"{quality.CFG:g}, euler / simple; every plan run at the full size on {args.prompts} benchmark prompts, "
             "pixel PSNR against the uncached output. *achieved*: block evaluations over blocks computed.", ""]
    for family in args.families.split(","):
        rows, plans = rows_for(family, args.prompts, args.calibration_prompts, args.evaluations)
        lines += [f"## {family}", "", "Plans:", "", *plans, "",
                  "| calibrated on | speedup | achieved | mean (dB) | worst prompt (dB) |", "|---|---|---:|---:|---:|"]
        lines += [f"| {r['size']} | {r['speedup']} | {r['achieved']:.2f}x | {r['mean']:.1f} | {r['worst']:.1f} |"
                  for r in rows]
        lines.append("")
    out = args.out or ROOT / "bench" / "results" / f"calibration_scale_cfg{quality.CFG:g}.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
