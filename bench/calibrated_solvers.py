"""The founding papers' solvers against today's stand-ins, on the trained reference models:

- Calibrated Cache with the plan search's stand-ins as they are (reuse, Taylor 1 and 2, the model's
  output reused: `R12V`) against the same search allowed FoCa too (`R12VP`), HyCa's per-channel
  solvers (`R12VH`) or both (`R12VPH`), and against `R12V` with ERTACache's rescaled step on the
  `V` steps (fitted on the calibration's uncached runs) and with its residual gains on the other
  skipped steps (`R12V+gains`, fitted per plan on the same runs), each calibrated through the real Block
  Profiler (same calibration prompts, noise seed 99) and scored at 3x-6x;
- TaylorSeer Forecast with each forecaster (Taylor order 1, order 2, FoCa) at intervals 3-6
  (`--no-taylorseer` leaves them out).

Every row is sampled on the benchmark prompts (none of them a calibration prompt) and scored by
pixel PSNR against the uncached output: mean and worst prompt. Writes
bench/results/calibrated_solvers_cfg<CFG>.md.

    .venv/bin/python bench/calibrated_solvers.py --cfg 1
"""
from __future__ import annotations


import bench_paths  # noqa: E402, F401  (puts scripts/ and reference/ on the path)

import node_runner  # noqa: E402

# stand-ins the plan search may use, + what the calibration fits besides: `rescaled` (ERTACache's
# rescaled V steps), `gains` (its residual gains); `family`: what the family's calibrations use
# (calibration/solver_choices.json); `--variants` picks some, e.g. R12V,R12VH,R12V+gains,family
VARIANTS = ("R12V", "R12VP", "R12V+rescaled", "R12VH", "R12VPH", "R12V+gains")
FAMILY = "family"
INTERVALS = (3, 4, 5, 6)
WINDOW = dict(start_percent=0.0, end_percent=1.0, cache_device="model device")


def rows_for(family: str, prompts: int, calibration: int, evaluations: int, variants: tuple = VARIANTS,
             taylorseer: bool = True) -> tuple[list[dict], list[str]]:
    import calibrated
    import quality
    import reference_models as refs
    from comfyui_dit_cache.cache_core.calibration import solver_choices
    from comfyui_dit_cache.nodes import CalibratedCache, TaylorSeerForecast

    quality.STEPS = calibrated.STEPS[family]
    model = refs.load(family)
    cases = quality.bench_prompts(model, prompts)

    scored = calibrated.benchmark_scorer(model, cases)
    rows, plans = [], []

    def score(method: str, label: str, patched) -> None:
        result = scored(patched)
        rows.append(dict(method=method, label=label, speedup=1 / result["computes"], mean=result["mean"],
                         worst=result["worst"]))
        print(f"{family:14s} {method:28s} {label:10s} {rows[-1]['speedup']:.2f}x mean {rows[-1]['mean']:.1f} "
              f"worst {rows[-1]['worst']:.1f}", flush=True)

    calibration_prompts = calibrated.calibration_prompts(model, calibration, cases)
    for name in variants:
        choice = solver_choices.solver_choice(family) if name == FAMILY else solver_choices.SolverChoice.parse(name)
        variant = (f"stand-ins {choice.stand_ins}" + (", V steps rescaled" if choice.fit_output_scales else "")
                   + (", residual gains" if choice.fit_residual_gains else ""))
        variant = f"family's choice ({variant})" if name == FAMILY else variant
        solver_choices.OVERRIDE = choice
        try:
            profile, seconds = calibrated.calibrate(model, calibration_prompts, evaluations, 0)
        finally:
            solver_choices.OVERRIDE = None
        plans += [f"- {variant} ({seconds:.0f} s): " + "; ".join(
            f"{p['speedup']:g}x `{p['plan']}` (worst calibration case {p['psnr_worst']:.1f} dB)"
            for p in profile["calibration"]["plans"]) + channel_line(profile["calibration"].get("channel_solvers"))]
        for speedup in calibrated.SPEEDUPS:
            patched = node_runner.run_node(CalibratedCache, "bench", model=model.patcher, speedup=speedup,
                                           profile=profile, cache_device="model device")[0]
            score(f"Calibrated, {variant}", f"{speedup:g}x", patched)
    for forecaster, order in (("taylor", 1), ("taylor", 2), ("foca", 2)) if taylorseer else ():
        name = f"TaylorSeer order {order}" if forecaster == "taylor" else "TaylorSeer FoCa"
        for interval in INTERVALS:
            patched = node_runner.run_node(TaylorSeerForecast, "bench", model=model.patcher, interval=interval,
                                           warmup_steps=2, order=order, guard_tolerance=0.0, forecaster=forecaster,
                                           **WINDOW)[0]
            score(name, f"interval {interval}", patched)
    return rows, plans


def channel_line(fitted: dict | None) -> str:
    """HyCa's fit in words: how many channels took each solver, and the backtest's errors."""
    if not fitted:
        return ""
    solvers = fitted["solvers"]
    counts = ", ".join(f"{letter} {solvers.count(letter)}" for letter in "R12P" if letter in solvers)
    errors = ", ".join(f"{k} {v:.3g}" for k, v in fitted["backtest_error_over_reuse"].items())
    return f"; channels of {len(solvers)}: {counts} ({fitted['clusters']} clusters; backtest error over reuse: {errors})"


def main() -> None:
    import calibrated

    def more(parser) -> None:
        parser.add_argument("--variants", default=",".join(VARIANTS))
        parser.add_argument("--no-taylorseer", action="store_true")

    args = calibrated.bench_arguments(__doc__, more=more)
    variants = tuple(args.variants.split(","))
    import quality

    lines = ["# The papers' solvers against today's stand-ins", "",
             f"`bench/calibrated_solvers.py --prompts {args.prompts} --calibration-prompts {args.calibration_prompts} "
             f"--evaluations {args.evaluations} --cfg {quality.CFG:g} --variants {args.variants}"
             + (" --no-taylorseer" if args.no_taylorseer else "") + "` on the trained reference models (CPU), "
             f"CFG {quality.CFG:g}, euler / simple; pixel PSNR against the uncached output over {args.prompts} "
             "benchmark prompts. *speedup*: block evaluations over blocks computed, counted on the real blocks.", ""]
    for family in args.families.split(","):
        rows, plans = rows_for(family, args.prompts, args.calibration_prompts, args.evaluations, variants,
                               not args.no_taylorseer)
        lines += calibrated.results_section(
            family, "Plans calibrated:", plans, ["method", "setting", "speedup", "mean (dB)", "worst prompt (dB)"],
            [[r["method"], r["label"], f"{r['speedup']:.2f}x", f"{r['mean']:.1f}", f"{r['worst']:.1f}"] for r in rows])
    calibrated.write_results(lines, args.out, f"calibrated_solvers_cfg{quality.CFG:g}.md")


if __name__ == "__main__":
    main()
