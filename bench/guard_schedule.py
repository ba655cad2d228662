"""What TaylorSeer's forecast guard decided at each step, prompt by prompt, on a reference model (CPU).

For plain TaylorSeer and each guard tolerance it samples the bench's prompts and prints one line
per prompt: the step pattern (C computed, F forecast, that is probed and accepted; a fallback
shows as C) with the number of fallbacks, then the fitted scale of every accepted forecast (0: the
first block's real residual was closest to plain reuse of the last computed one, 1: to the full
Taylor extrapolation). It is the evidence for why the guard loses on the HunyuanVideo reference
model: there the early probes fit scale 0, so the guard accepts runs of up to five steps of what
is plain reuse, where plain TaylorSeer interval 2 forecasts one step at a time.

    python bench/guard_schedule.py --family hunyuan_video --prompts 4
"""
from __future__ import annotations

import argparse

import bench_paths  # noqa: E402,F401  (puts scripts/ and reference/ on the path)

import comfy_runtime  # noqa: E402
import node_runner  # noqa: E402

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="hunyuan_video", choices=("flux", "wan", "hunyuan_video"))
    parser.add_argument("--prompts", type=int, default=4)
    args = parser.parse_args()
    comfy_runtime.boot()
    comfy_runtime.load_pack()

    import reference_models as refs
    from quality import GUARD_INTERVAL, GUARD_TOLERANCES, bench_prompts, sample_prompt, taylorseer_inputs

    from comfyui_dit_cache.cache_core.attachment.attach import attached_engine
    from comfyui_dit_cache.cache_core.policies.base import StepAction
    from comfyui_dit_cache.nodes import TaylorSeerForecast

    model = refs.load(args.family)
    cases = bench_prompts(model, args.prompts)
    runs = [(2, 0.0)] + [(GUARD_INTERVAL, tolerance) for tolerance in GUARD_TOLERANCES]
    print(f"{args.family}: {args.prompts} bench prompts; C computed, F forecast (guarded: probed and accepted)")
    for interval, tolerance in runs:
        patched = node_runner.run_node(
            TaylorSeerForecast, "guard-schedule", model=model.patcher, **taylorseer_inputs(interval, tolerance))[0]
        reports = []
        attached_engine(patched).report_listeners.append(reports.append)
        for index, prompt in enumerate(cases):
            sample_prompt(model, patched, index, prompt)
        name = f"interval {interval}" + (f", tol {tolerance}" if tolerance else " (plain)")
        for index, report in enumerate(reports):
            pattern = "".join(StepAction(a).letter for a in report.step_actions())
            scales = " ".join(f"{s:.2f}" for s in report.forecast_scales)
            print(f"{name:20s} prompt {index}: {pattern}  {report.fallbacks:2d} fallbacks  scales {scales}",
                  flush=True)


if __name__ == "__main__":
    main()
