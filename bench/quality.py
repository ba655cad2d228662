"""`make bench`: the quality/speed trade-off of every method on the trained reference models (CPU).

For each family (FLUX, Wan2.1, HunyuanVideo reference models, `reference/reference_models.py`) and
each caching node over a sweep of its main parameter, plus ComfyUI's own EasyCache node as an
outside baseline, it samples the same prompts and seeds through `comfy.sample.sample` and reports:
block computes over block evaluations (counted on the real blocks), wall-clock speedup against the
uncached run measured in the same process, and PSNR / SSIM against the uncached output, both on
the latent and on the decoded pixels (the reference world's exact decoder). Writes
bench/results/quality.md and bench/results/pareto.png.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from bench_paths import ROOT  # noqa: E402  (also puts scripts/ and reference/ on the path)

import comfy_runtime  # noqa: E402
import node_runner  # noqa: E402

STEPS = 20
CFG = 4.0
MAGNITUDE_THRESHOLDS = (0.03, 0.06, 0.12, 0.24, 0.5)
# The guard at a long interval, so that its tolerance, not the interval, sets the schedule.
GUARD_INTERVAL = 6
GUARD_TOLERANCES = (0.05, 0.1, 0.2, 0.3)
# Pairs whose PSNR the table compares at equal block computes: (challenger, baseline).
MATCHED_PAIRS = (("Magnitude (profiled curve)", "Magnitude (preset curve)"),
                 ("TaylorSeer guarded", "TaylorSeer"))
RESULTS = ROOT / "bench" / "results"
# Every DiT Cache node in the sweep acts on all steps and keeps its cache on the model device.
WINDOW = dict(start_percent=0.0, end_percent=1.0, cache_device="model device")


def frames(pixels):
    """[B, C, (T,) H, W] -> [N, C, H, W]."""
    if pixels.ndim == 5:
        return pixels.permute(0, 2, 1, 3, 4).reshape(-1, pixels.shape[1], *pixels.shape[3:])
    return pixels


def taylorseer_inputs(interval: int, tolerance: float) -> dict:
    """TaylorSeer Forecast's inputs in the sweep (plain: tolerance 0), shared with guard_schedule.py."""
    return dict(interval=interval, warmup_steps=3, order=2, guard_tolerance=tolerance, **WINDOW)


def settings(family: str, profile: dict) -> list[tuple[str, str, object, dict]]:
    """(method, label, node class, inputs) for every point of every sweep; `profile` is a Block
    Profiler profile of this model, from a prompt and seed the sweeps do not use."""
    from comfy_extras.nodes_easycache import EasyCacheNode

    from comfyui_dit_cache.nodes import ApplyFORA, MagnitudeThreshold, TaylorSeerForecast, TeaCacheThreshold

    out = []
    for interval in (2, 3, 4, 5):
        out.append(("FORA", f"interval {interval}", ApplyFORA, dict(interval=interval, warmup_steps=1, **WINDOW)))
    for threshold in (0.05, 0.1, 0.2, 0.4, 0.8):
        out.append(("TeaCache-style", f"thresh {threshold}", TeaCacheThreshold,
                    dict(rel_l1_thresh=threshold, coefficients="auto", max_consecutive_reuse=3, **WINDOW)))
    for curve, curve_profile in (("preset", None), ("profiled", profile)):
        for threshold in MAGNITUDE_THRESHOLDS:
            out.append((f"Magnitude ({curve} curve)", f"thresh {threshold}", MagnitudeThreshold,
                        dict(threshold=threshold, max_skip=3, retention_ratio=0.2, curve="auto", profile=curve_profile,
                             **WINDOW)))
    for interval in (2, 3, 4, 5):
        out.append(("TaylorSeer", f"interval {interval}", TaylorSeerForecast, taylorseer_inputs(interval, 0.0)))
    for tolerance in GUARD_TOLERANCES:
        out.append(("TaylorSeer guarded", f"interval {GUARD_INTERVAL}, tol {tolerance}", TaylorSeerForecast,
                    taylorseer_inputs(GUARD_INTERVAL, tolerance)))
    for threshold in (0.05, 0.1, 0.2, 0.3):
        out.append(("EasyCache (ComfyUI)", f"thresh {threshold}", EasyCacheNode,
                    dict(reuse_threshold=threshold, start_percent=0.15, end_percent=0.95, verbose=False)))
    return out


def calibration_profile(model) -> dict:
    """Profile the model with the Block Profiler node on one prompt and seed of its own."""
    import tempfile

    import comfy.sample
    import folder_paths
    import torch

    import reference_data as rd
    from comfyui_dit_cache.cache_core.attachment.attach import attached_engine
    from comfyui_dit_cache.nodes import BlockProfiler

    folder_paths.set_output_directory(tempfile.mkdtemp(prefix="dit-cache-bench-"))
    patched = node_runner.run_node(BlockProfiler, "bench", model=model.patcher, profile_name="calibration")[0]
    reports = []
    attached_engine(patched).report_listeners.append(reports.append)
    prompt = rd.random_prompt(torch.Generator().manual_seed(99), model.video)
    noise = torch.randn(model.latent_shape(), generator=torch.Generator().manual_seed(99))
    comfy.sample.sample(patched, noise, STEPS, CFG, "euler", "simple", model.conditioning(prompt),
                        model.empty_conditioning(), torch.zeros(model.latent_shape()), seed=99, disable_pbar=True)
    return reports[0].extras["profile"]


def bench_prompts(model, count: int) -> list:
    """The prompts every sweep samples (the i-th with noise seed `BENCH_NOISE_SEED` + i, `sample_prompt`)."""
    import torch

    import reference_data as rd

    g = torch.Generator().manual_seed(7)
    return [rd.random_prompt(g, model.video) for _ in range(count)]


BENCH_NOISE_SEED = 100   # the i-th bench prompt's noise seed is this + i


def prompt_noise(model, index: int, first_seed: int = BENCH_NOISE_SEED):
    """The noise the `index`-th case samples from: seed `first_seed` + `index`."""
    import torch

    return torch.randn(model.latent_shape(), generator=torch.Generator().manual_seed(first_seed + index))


def sample_prompt(model, patcher, index: int, prompt, first_seed: int = BENCH_NOISE_SEED):
    """The model-space latent `patcher` samples for the `index`-th case (a bench prompt, unless
    `first_seed` names other noise)."""
    import comfy.sample
    import torch

    noise = prompt_noise(model, index, first_seed)
    out = comfy.sample.sample(patcher, noise, STEPS, CFG, "euler", "simple", model.conditioning(prompt),
                              model.empty_conditioning(), torch.zeros(model.latent_shape()), seed=index,
                              disable_pbar=True)
    return model.patcher.model.latent_format.process_in(out)


def decoded(latent):
    """Pixels of a latent batch as frames in [-1, 1]."""
    import reference_data as rd

    return frames(rd.decode(latent)).clamp(-1, 1)


def run_family(family: str, prompts: int, only: list[str] | None = None) -> list[dict]:
    import torch

    import reference_models as refs
    from block_counter import count_block_calls
    from image_metrics import psnr, ssim

    model = refs.load(family)
    cases = bench_prompts(model, prompts)

    def sample_once(patcher, count: int = len(cases)) -> tuple[list, float, int]:
        start = time.perf_counter()
        with count_block_calls(model.patcher) as counts:
            outputs = [sample_prompt(model, patcher, i, prompt) for i, prompt in enumerate(cases[:count])]
        return outputs, time.perf_counter() - start, sum(counts)

    def sample_all(patcher) -> tuple[list, float, int]:
        """Best wall time of two runs after a one-prompt warm-up (the first run of a clone loads it)."""
        sample_once(patcher, count=1)
        first, second = sample_once(patcher), sample_once(patcher)
        return first[0], min(first[1], second[1]), first[2]

    profile = calibration_profile(model)
    reference, base_seconds, base_blocks = sample_all(model.patcher)
    ref_latent = torch.cat(reference)
    ref_per_prompt = [decoded(x) for x in reference]
    ref_pixels = torch.cat(ref_per_prompt)
    latent_range = float(ref_latent.max() - ref_latent.min())
    rows = [dict(family=family, method="uncached", label="", computes=1.0, speedup=1.0, psnr_latent=math.inf,
                 psnr_pixels=math.inf, psnr_prompt_mean=math.inf, ssim=1.0)]
    for method, label, node, inputs in settings(family, profile):
        if only and f"{method} {label}" not in only:
            continue
        patched = node_runner.run_node(node, "bench", model=model.patcher, **inputs)[0]
        outputs, seconds, blocks = sample_all(patched)
        latent = torch.cat(outputs)
        per_prompt = [decoded(x) for x in outputs]
        pixels = torch.cat(per_prompt)
        rows.append(dict(family=family, method=method, label=label, computes=blocks / base_blocks,
                         speedup=base_seconds / seconds, psnr_latent=psnr(latent, ref_latent, latent_range),
                         psnr_pixels=psnr(pixels, ref_pixels, 2.0),
                         psnr_prompt_mean=prompt_mean_psnr(per_prompt, ref_per_prompt), ssim=ssim(pixels, ref_pixels)))
        print(f"{family:14s} {method:20s} {label:12s} computes {rows[-1]['computes']:.2f} "
              f"speedup {rows[-1]['speedup']:.2f}x PSNR {rows[-1]['psnr_pixels']:.1f} dB "
              f"(per-prompt mean {rows[-1]['psnr_prompt_mean']:.1f}) SSIM {rows[-1]['ssim']:.3f}",
              flush=True)
    return rows


def prompt_mean_psnr(pixels: list, references: list) -> float:
    """Pixel PSNR of each prompt's image, averaged (how the TeaCache and MagCache papers average).
    Pooling the squared error over all prompts, as the main PSNR column does, lets the one prompt
    whose image flips at a skipped step decide the figure: one skipped step on these models
    differed up to 800x in error from prompt to prompt (skip_sensitivity.py). A prompt reproduced
    exactly counts as 100 dB."""
    from image_metrics import psnr

    values = [psnr(out, ref, 2.0) for out, ref in zip(pixels, references)]
    if all(math.isinf(v) for v in values):
        return math.inf
    return sum(min(v, 100.0) for v in values) / len(values)


def write_table(rows: list[dict], meta: dict[str, dict], prompts: int) -> str:
    lines = ["# Quality / speed on the reference models", "",
             f"`bench/quality.py --prompts {prompts}` (`make bench` runs 8): {STEPS} euler steps, CFG {CFG}, the same prompts and seeds for every "
             "row, CPU. *computes*: real block computations over those of the uncached run (1/computes is the ideal "
             "speedup). *speedup*: wall clock (best of two runs after a one-prompt warm-up) against the uncached run in the same process (tiny models on CPU: "
             "per-step overhead weighs more than on a GPU). PSNR/SSIM against the uncached output: *PSNR pixels* pools "
             "the squared error of all prompts, *per prompt* averages each prompt's PSNR.", ""]
    for family in dict.fromkeys(r["family"] for r in rows):
        m = meta[family]
        lines += [f"## {family}", "",
                  f"Reference model: {m['parameters'] / 1e6:.1f} M parameters, {m['steps']} training steps, "
                  f"final loss {m['final_loss']}.", "",
                  "| method | setting | computes | ideal | speedup | PSNR latent (dB) | PSNR pixels (dB) | per prompt (dB) "
                  "| SSIM pixels |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            if r["family"] != family:
                continue
            fmt = lambda v: "exact" if math.isinf(v) else f"{v:.1f}"  # noqa: E731
            lines.append(f"| {r['method']} | {r['label']} | {r['computes']:.2f} | {1 / r['computes']:.2f}x | "
                         f"{r['speedup']:.2f}x | {fmt(r['psnr_latent'])} | {fmt(r['psnr_pixels'])} | "
                         f"{fmt(r['psnr_prompt_mean'])} | {r['ssim']:.3f} |")
        lines.append("")
        lines += matched_lines(rows, family)
    return "\n".join(lines)


def matched_psnr(rows: list[dict], family: str, challenger: str, baseline: str,
                 metric: str = "psnr_pixels") -> list[tuple[float, float, float]]:
    """(computes, challenger PSNR, baseline PSNR interpolated at those computes) for every
    challenger point inside the baseline's range of computes; `metric` names the PSNR column."""
    def curve(method):
        return sorted((r["computes"], r[metric]) for r in rows
                      if r["family"] == family and r["method"] == method and math.isfinite(r[metric]))

    base = curve(baseline)
    out = []
    for computes, value in curve(challenger):
        for (x0, y0), (x1, y1) in zip(base, base[1:]):
            if x0 <= computes <= x1:
                interpolated = y0 if x1 == x0 else y0 + (y1 - y0) * (computes - x0) / (x1 - x0)
                out.append((computes, value, interpolated))
                break
    return out


def matched_lines(rows: list[dict], family: str) -> list[str]:
    lines = []
    for challenger, baseline in MATCHED_PAIRS:
        for metric, words in (("psnr_pixels", "pooled pixel PSNR"), ("psnr_prompt_mean", "per-prompt pixel PSNR")):
            points = matched_psnr(rows, family, challenger, baseline, metric)
            if not points:
                lines += [f"{challenger} vs {baseline}: no point inside the baseline's range of computes.", ""]
                break
            mean = sum(c - b for _, c, b in points) / len(points)
            detail = ", ".join(f"{x:.2f}: {c:.1f} vs {b:.1f}" for x, c, b in points)
            lines += [f"**{challenger} vs {baseline}** at equal block computes ({words}, baseline interpolated "
                      f"between its settings): mean {mean:+.1f} dB ({detail}).", ""]
    return lines


def write_plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(dict.fromkeys(r["family"] for r in rows))
    fig, axes = plt.subplots(1, len(families), figsize=(5 * len(families), 4), squeeze=False)
    for ax, family in zip(axes[0], families):
        for method in dict.fromkeys(r["method"] for r in rows if r["method"] != "uncached"):
            points = sorted((1 / r["computes"], r["psnr_pixels"]) for r in rows
                            if r["family"] == family and r["method"] == method and math.isfinite(r["psnr_pixels"]))
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=method)
        ax.set_title(family)
        ax.set_xlabel("ideal speedup (block evaluations / computed)")
        ax.set_ylabel("PSNR vs uncached, pixels (dB)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--families", default="flux,wan,hunyuan_video")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--results", type=Path, default=None,
                        help="folder for quality.md and pareto.png (default bench/results, or none with --only; the "
                             "16-prompt run that checks the matched comparisons writes bench/results/16_prompts)")
    parser.add_argument("--only", default="",
                        help="run only these settings, ';'-separated as the table names them (method, a space, "
                             "setting), e.g. 'FORA interval 3;TaylorSeer interval 4': a quick check of a few figures")
    args = parser.parse_args()
    comfy_runtime.boot()
    comfy_runtime.load_pack()
    import json

    import reference_models as refs

    rows = []
    for family in args.families.split(","):
        rows += run_family(family, args.prompts, [o.strip() for o in args.only.split(";") if o.strip()])
    results = args.results or (None if args.only else RESULTS)
    if results is None:
        return
    meta = {f: json.loads((refs.WEIGHTS / f"{f}.json").read_text()) for f in args.families.split(",")}
    results.mkdir(parents=True, exist_ok=True)
    (results / "quality.md").write_text(write_table(rows, meta, args.prompts))
    write_plot(rows, results / "pareto.png")
    print(f"wrote {results / 'quality.md'} and {results / 'pareto.png'}")


if __name__ == "__main__":
    main()
