"""Calibrated Cache against every other setting of the pack and ComfyUI's EasyCache at matched
compute, on the trained reference models at the step counts real workflows use (FLUX 28, Wan2.1
30, HunyuanVideo 30 steps; CFG as in `quality.py`).

Calibration goes through the real nodes: a Block Profiler with `calibrate_speedups` samples one
calibration prompt (noise seed 99 and one extra seed), which the benchmark's prompts and seeds
(`quality.bench_prompts`, noise seeds 100+) do not share; Load Cache Profile reads the profile
back and Calibrated Cache runs each plan. Every row is then sampled on the benchmark prompts and
scored by pixel PSNR against the uncached output, per prompt: the mean and the worst prompt.
Writes bench/results/calibrated.md.

    .venv/bin/python bench/calibrated.py --prompts 6
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "reference"))
sys.path.insert(0, str(ROOT / "bench"))

import comfy_runtime  # noqa: E402

STEPS = {"flux": 28, "wan": 30, "hunyuan_video": 30}
SPEEDUPS = (3.0, 4.0, 6.0)
WINDOW = dict(start_percent=0.0, end_percent=1.0, cache_device="model device")
RESULTS = ROOT / "bench" / "results" / "calibrated.md"


def other_settings() -> list[tuple[str, str, object, dict]]:
    from comfy_extras.nodes_easycache import EasyCacheNode

    from comfyui_dit_cache.nodes import ApplyFORA, TaylorSeerForecast

    out = []
    for interval in (3, 4, 5, 6, 8):
        out.append(("FORA", f"interval {interval}", ApplyFORA, dict(interval=interval, warmup_steps=1, **WINDOW)))
    for order in (1, 2):
        for interval in (3, 4, 5, 6):
            out.append((f"TaylorSeer order {order}", f"interval {interval}", TaylorSeerForecast,
                        dict(interval=interval, warmup_steps=2, order=order, guard_tolerance=0.0, **WINDOW)))
    for threshold in (0.2, 0.4):
        out.append(("EasyCache (ComfyUI)", f"thresh {threshold}", EasyCacheNode,
                    dict(reuse_threshold=threshold, start_percent=0.15, end_percent=0.95, verbose=False)))
    return out


def calibrate(model, evaluations: int, extra_seeds: int) -> tuple[dict, float]:
    """Profile and calibrate through the nodes on the calibration prompt; the profile and seconds."""
    import comfy.sample
    import folder_paths
    import torch

    import quality
    import reference_data as rd
    from comfyui_dit_cache.nodes import BlockProfiler, LoadCacheProfile

    folder_paths.set_output_directory(tempfile.mkdtemp(prefix="dit-cache-calibration-"))
    speedups = ", ".join(f"{s:g}" for s in SPEEDUPS)
    patched = BlockProfiler.PREPARE_CLASS_CLONE({"UNIQUE_ID": "bench"}).execute(
        model=model.patcher, profile_name="calibration", calibrate_speedups=speedups, extra_seeds=extra_seeds,
        search_evaluations=evaluations).args[0]
    prompt = rd.random_prompt(torch.Generator().manual_seed(99), model.video)
    noise = torch.randn(model.latent_shape(), generator=torch.Generator().manual_seed(99))
    start = time.perf_counter()
    comfy.sample.sample(patched, noise, quality.STEPS, quality.CFG, "euler", "simple", model.conditioning(prompt),
                        model.empty_conditioning(), torch.zeros(model.latent_shape()), seed=99, disable_pbar=True)
    seconds = time.perf_counter() - start
    profile = LoadCacheProfile.PREPARE_CLASS_CLONE({"UNIQUE_ID": "bench"}).execute(profile="calibration.json").args[0]
    return profile, seconds


def run_family(family: str, prompts: int, evaluations: int, extra_seeds: int) -> tuple[list[dict], dict]:
    import torch

    import quality
    import reference_models as refs
    from block_counter import count_block_calls
    from image_metrics import psnr
    from comfyui_dit_cache.nodes import CalibratedCache

    quality.STEPS = STEPS[family]
    model = refs.load(family)
    cases = quality.bench_prompts(model, prompts)
    profile, seconds = calibrate(model, evaluations, extra_seeds)

    def sample_all(patcher) -> tuple[list, int]:
        with count_block_calls(model.patcher) as counts:
            outputs = [quality.decoded(quality.sample_prompt(model, patcher, i, c)) for i, c in enumerate(cases)]
        return outputs, sum(counts)

    reference, base_blocks = sample_all(model.patcher)
    settings = [("Calibrated", f"{s:g}x", CalibratedCache, dict(speedup=s, profile=profile, cache_device="model device"))
                for s in SPEEDUPS] + other_settings()
    rows = []
    for method, label, node, inputs in settings:
        patched = node.PREPARE_CLASS_CLONE({"UNIQUE_ID": "bench"}).execute(model=model.patcher, **inputs).args[0]
        outputs, blocks = sample_all(patched)
        values = [min(psnr(o, r, 2.0), 100.0) for o, r in zip(outputs, reference)]
        rows.append(dict(method=method, label=label, computes=blocks / base_blocks, mean=sum(values) / len(values),
                         worst=min(values)))
        print(f"{family:14s} {method:22s} {label:12s} {1 / rows[-1]['computes']:.2f}x mean {rows[-1]['mean']:.1f} "
              f"worst {rows[-1]['worst']:.1f}", flush=True)
    return rows, dict(profile=profile, seconds=seconds)


def best_other_at(rows: list[dict], computes: float, key: str) -> tuple[float, str] | None:
    """The best PSNR (`key`: mean or worst) any other method reaches at `computes`, each method's
    curve interpolated between its settings (None when no method spans that compute)."""
    best = None
    for method in dict.fromkeys(r["method"] for r in rows if r["method"] != "Calibrated"):
        curve = sorted((r["computes"], r[key]) for r in rows if r["method"] == method)
        for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
            if x0 <= computes <= x1:
                value = y0 if x1 == x0 else y0 + (y1 - y0) * (computes - x0) / (x1 - x0)
                if best is None or value > best[0]:
                    best = (value, method)
    return best


def table(family: str, rows: list[dict], meta: dict, prompts: int) -> list[str]:
    calibration = meta["profile"]["calibration"]
    lines = [f"## {family}, {STEPS[family]} steps", "",
             f"Calibration: {calibration['cases']} seeds of one prompt, {calibration['evaluations_per_speedup']} "
             f"plans sampled per speedup, {calibration['cost_runs']:.1f} uncached runs' worth of block computes "
             f"({meta['seconds']:.0f} s on this CPU). Plans found:", ""]
    for plan in calibration["plans"]:
        lines.append(f"- {plan['speedup']:g}x `{plan['plan']}`: worst calibration seed {plan['psnr_worst']:.1f} dB "
                     f"latent (evenly spaced reuse: {plan['start_psnr_worst']:.1f} dB)")
    lines += ["", f"Pixel PSNR against the uncached output over {prompts} benchmark prompts:", "",
              "| method | setting | ideal speedup | mean (dB) | worst prompt (dB) | best other at this compute: mean / worst |",
              "|---|---|---:|---:|---:|---|"]
    for r in rows:
        other = ""
        if r["method"] == "Calibrated":
            mean, worst = best_other_at(rows, r["computes"], "mean"), best_other_at(rows, r["computes"], "worst")
            other = (f"{mean[0]:.1f} ({mean[1]}) / {worst[0]:.1f} ({worst[1]})" if mean and worst
                     else "no other setting spans this compute")
        lines.append(f"| {r['method']} | {r['label']} | {1 / r['computes']:.2f}x | {r['mean']:.1f} | {r['worst']:.1f} "
                     f"| {other} |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default="flux,wan,hunyuan_video")
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--evaluations", type=int, default=16, help="plans sampled per speedup")
    parser.add_argument("--extra-seeds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    comfy_runtime.boot()
    comfy_runtime.load_pack()
    import quality

    lines = ["# Calibrated Cache against the other settings at matched compute", "",
             f"`bench/calibrated.py --prompts {args.prompts} --evaluations {args.evaluations} --extra-seeds "
             f"{args.extra_seeds}` on the trained reference models (CPU), CFG {quality.CFG}, euler / simple. "
             "*ideal speedup*: block evaluations over blocks computed, counted on the real blocks. *best other*: "
             "the best any other method reaches at the calibrated row's compute, each method's curve interpolated "
             "between its settings.", ""]
    for family in args.families.split(","):
        rows, meta = run_family(family, args.prompts, args.evaluations, args.extra_seeds)
        lines += table(family, rows, meta, args.prompts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
