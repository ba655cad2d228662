"""Block Cache (profiled), the per-block schedule, against the whole-stack settings at matched
block compute on the trained reference models (FLUX 28, Wan2.1 30, HunyuanVideo 30 steps):
Calibrated Cache's plans, FORA, TaylorSeer and the thresholds of `calibrated.py`, with Block Cache
at the thresholds that give 3x to 6x block computes on the model's own profile (found from the
policy alone: `block_schedule.py`). The profile is the calibrating Block Profiler's, made on
calibration prompts the benchmark does not use. Pixel PSNR against the uncached output over the
benchmark prompts, mean and worst prompt; writes bench/results/block_cache_cfg<CFG>.md.

    .venv/bin/python bench/block_cache.py --cfg 1
"""
from __future__ import annotations


from bench_paths import ROOT  # noqa: E402  (also puts scripts/ and reference/ on the path)


SPEEDUPS = (3.0, 4.0, 5.0, 6.0)
MAX_SKIPS = (4, 8)
RESULTS = ROOT / "bench" / "results"


def block_cache_settings(model, profile: dict) -> list[tuple[str, str, object, dict]]:
    import calibrated
    from block_schedule import block_computes, threshold_for

    from comfyui_dit_cache.cache_core.policies import ProfiledBlockSchedule

    from comfyui_dit_cache.nodes import BlockCache

    changes = tuple(tuple(float("nan") if v is None else float(v) for v in row) for row in profile["block_rel_l1"])
    steps = profile["steps"]
    out = []
    for max_skip in MAX_SKIPS:
        for speedup in SPEEDUPS:
            threshold = threshold_for(changes, steps, speedup, max_skip)
            reached = 1.0 / block_computes(ProfiledBlockSchedule(changes, threshold, max_skip), steps)
            if reached < speedup - 0.25:   # max_skip caps the speedup below this one
                continue
            out.append((f"Block Cache, max_skip {max_skip}", f"thresh {threshold:.3f}", BlockCache,
                        dict(profile=profile, threshold=threshold, max_skip=max_skip, **calibrated.WINDOW)))
    return out + [s for s in calibrated.other_settings() if s[0].startswith(("FORA", "TaylorSeer order 1"))]


def comparison(rows: list[dict]) -> list[str]:
    """Per Block Cache row: the calibrated plans and the best whole-stack setting at its compute."""
    import calibrated

    lines = ["| Block Cache row | speedup | mean / worst (dB) | Calibrated at this compute | best other whole-stack "
             "setting |", "|---|---:|---:|---:|---|"]
    whole_stack = [r for r in rows if not r["method"].startswith("Block Cache")]
    for r in rows:
        if not r["method"].startswith("Block Cache"):
            continue
        cal = [calibrated.interpolated([(c["computes"], c[k]) for c in rows if c["method"] == "Calibrated"],
                                       r["computes"]) for k in ("mean", "worst")]
        others = [calibrated.best_other_at(whole_stack, r["computes"], k) for k in ("mean", "worst")]
        cal_text = "not spanned" if None in cal else f"{cal[0]:.1f} / {cal[1]:.1f}"
        other_text = ("not spanned" if None in others else
                      f"{others[0][0]:.1f} ({others[0][1]}) / {others[1][0]:.1f} ({others[1][1]})")
        lines.append(f"| {r['method']}, {r['label']} | {1 / r['computes']:.2f}x | {r['mean']:.1f} / {r['worst']:.1f} "
                     f"| {cal_text} | {other_text} |")
    return lines + [""]


def main() -> None:
    import calibrated

    args = calibrated.bench_arguments(__doc__, "default: bench/results/block_cache_cfg<CFG>.md")
    import quality

    lines = ["# Block Cache (per-block schedule) against the whole-stack settings at matched block compute", "",
             f"`bench/block_cache.py --prompts {args.prompts} --calibration-prompts {args.calibration_prompts} "
             f"--evaluations {args.evaluations} --cfg {quality.CFG:g}` on the trained reference models (CPU), "
             "euler / simple. *speedup*: block evaluations over blocks computed, counted on the real blocks. "
             "Block Cache runs on the calibrating profiler's profile (calibration prompts, not the benchmark's); "
             "*Calibrated* and *best other* are interpolated along their own rows at the Block Cache row's compute.",
             ""]
    out = args.out or RESULTS / f"block_cache_cfg{quality.CFG:g}.md"
    for family in args.families.split(","):
        rows, meta = calibrated.run_family(family, args.prompts, args.calibration_prompts, args.evaluations, 0,
                                           "random", settings_for=block_cache_settings)
        lines += calibrated.table(family, rows, meta, args.prompts)[:-len(calibrated.target_lines(rows))]
        lines += ["Block Cache against the whole-stack settings:", ""] + comparison(rows)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines))   # after each family, so a run cut short keeps what it measured
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
