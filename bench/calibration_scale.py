"""Does a plan calibrated on a smaller latent carry to the full size? On the trained reference
models: Calibrated Cache's plans calibrated through the real Block Profiler on the full latent,
on half the side (images and video), and on fewer frames (video), each then run at the full size
on the benchmark prompts and scored by pixel PSNR against the uncached output (mean and worst
prompt). Same calibration prompts and noise seed (99) for every size. Writes
bench/results/calibration_scale_cfg<CFG>.md.

    .venv/bin/python bench/calibration_scale.py --cfg 1
"""
from __future__ import annotations


import bench_paths  # noqa: E402, F401  (puts scripts/ and reference/ on the path)

import node_runner  # noqa: E402


def sizes_for(model) -> list[tuple[str, tuple[int, ...]]]:
    """(label, latent shape of one case) to calibrate on: the full latent, then smaller ones."""
    full = model.latent_shape(1)[1:]
    side = full[-1] // 2
    out = [("full size", full), ("half the side", (*full[:-2], side, side))]
    if model.video:
        out.append(("3 of 5 latent frames", (full[0], 3, *full[2:])))
    return out


def rows_for(family: str, prompts: int, calibration: int, evaluations: int) -> tuple[list[dict], list[str]]:
    import calibrated
    import quality
    import reference_models as refs
    from comfyui_dit_cache.nodes import CalibratedCache

    quality.STEPS = calibrated.STEPS[family]
    model = refs.load(family)
    cases = quality.bench_prompts(model, prompts)
    score = calibrated.benchmark_scorer(model, cases)
    calibration_prompts = calibrated.calibration_prompts(model, calibration, cases)
    rows, plans = [], []
    for label, shape in sizes_for(model):
        profile, seconds = calibrated.calibrate(model, calibration_prompts, evaluations, 0, case_shape=shape)
        plans.append(f"- {label} `{list(shape)}` ({seconds:.0f} s): " + "; ".join(
            f"{p['speedup']:g}x `{p['plan']}`" for p in profile["calibration"]["plans"]))
        for speedup in calibrated.SPEEDUPS:
            patched = node_runner.run_node(CalibratedCache, "bench", model=model.patcher, speedup=speedup,
                                           profile=profile, cache_device="model device")[0]
            result = score(patched)
            rows.append(dict(size=label, speedup=f"{speedup:g}x", achieved=1 / result["computes"],
                             mean=result["mean"], worst=result["worst"]))
            print(f"{family:14s} {label:22s} {speedup:g}x {rows[-1]['achieved']:.2f}x mean {rows[-1]['mean']:.1f} "
                  f"worst {rows[-1]['worst']:.1f}", flush=True)
    return rows, plans


def main() -> None:
    import calibrated

    args = calibrated.bench_arguments(__doc__)
    import quality

    lines = ["# Plans calibrated on a smaller latent, run at the full size", "",
             f"`bench/calibration_scale.py --prompts {args.prompts} --calibration-prompts {args.calibration_prompts} "
             f"--evaluations {args.evaluations} --cfg {quality.CFG:g}` on the trained reference models (CPU), CFG "
             f"{quality.CFG:g}, euler / simple; every plan run at the full size on {args.prompts} benchmark prompts, "
             "pixel PSNR against the uncached output. *achieved*: block evaluations over blocks computed.", ""]
    for family in args.families.split(","):
        rows, plans = rows_for(family, args.prompts, args.calibration_prompts, args.evaluations)
        lines += calibrated.results_section(
            family, "Plans:", plans, ["calibrated on", "speedup", "achieved", "mean (dB)", "worst prompt (dB)"],
            [[r["size"], str(r["speedup"]), f"{r['achieved']:.2f}x", f"{r['mean']:.1f}", f"{r['worst']:.1f}"]
             for r in rows])
    calibrated.write_results(lines, args.out, f"calibration_scale_cfg{quality.CFG:g}.md")


if __name__ == "__main__":
    main()
