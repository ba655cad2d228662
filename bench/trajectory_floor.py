"""How close *any* 4x or 6x schedule can come to the uncached output on the reference models:
the PSNR floor set by the sampling trajectory itself, not by a cache.

For each family at the calibrated benchmark's step count N (`calibrated.py`), on its prompts and
seeds, it samples without a cache and prints per-prompt pixel PSNR against euler at N steps of:
- euler at 2N steps: a *more* accurate solution of the same ODE, at twice the compute;
- euler at N/4 and N/6 steps: as many model evaluations as a 4x / 6x cache;
- euler at N steps with one step's model output changed by 1% (relative RMS, Gaussian), at a
  quarter and at half of the run: how much one small error at one step moves the final image.
Random error is harmless (the 1% rows stay near 80-100 dB); what moves the image is error that
persists from step to step, as a solver's own step error does and a stand-in's does: a prompt
that lands 25 dB away when the same ODE is solved with twice the steps shows how far errors of
that kind carry on it, and euler at N/4 steps is what four times fewer evaluations give a solver.
Writes bench/results/trajectory_floor.md.

    .venv/bin/python bench/trajectory_floor.py --prompts 8
"""
from __future__ import annotations

import argparse
from pathlib import Path

from bench_paths import ROOT  # noqa: E402  (also puts scripts/ and reference/ on the path)

import comfy_runtime  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "trajectory_floor.md"
PERTURBATION = 0.01


class OneStepPerturbation:
    """A post-CFG function that adds Gaussian noise of `size` x the output's RMS to the model's
    output at one step of the schedule (the same noise for a given prompt index)."""

    def __init__(self, step: int, size: float, seed: int) -> None:
        self.step, self.size, self.seed = step, size, seed

    def __call__(self, args: dict):
        import torch

        denoised = args["denoised"]
        sigmas = args["model_options"]["transformer_options"]["sample_sigmas"]
        step = int(torch.argmin((sigmas - args["sigma"].flatten()[0]).abs()))
        if step != self.step:
            return denoised
        noise = torch.randn(denoised.shape, generator=torch.Generator().manual_seed(self.seed)).to(denoised)
        return denoised + self.size * denoised.pow(2).mean().sqrt() * noise


def run_family(family: str, prompts: int, cfg: float) -> list[tuple[str, list[float]]]:
    import quality
    import reference_models as refs
    from calibrated import STEPS
    from image_metrics import psnr

    steps = STEPS[family]
    quality.CFG = cfg
    model = refs.load(family)
    cases = quality.bench_prompts(model, prompts)

    def sample_all(patcher, n: int) -> list:
        quality.STEPS = n
        return [quality.decoded(quality.sample_prompt(model, patcher, i, c)) for i, c in enumerate(cases)]

    reference = sample_all(model.patcher, steps)
    rows = []

    def add(label: str, outputs: list) -> None:
        values = [min(psnr(o, r, 2.0), 100.0) for o, r in zip(outputs, reference)]
        rows.append((label, values))
        print(f"{family:14s} cfg {cfg:g} {label:40s} mean {sum(values) / len(values):5.1f} worst {min(values):5.1f} | "
              + " ".join(f"{v:.1f}" for v in values), flush=True)

    add(f"euler {2 * steps} steps (2x compute)", sample_all(model.patcher, 2 * steps))
    for speedup in (4, 6):
        add(f"euler {round(steps / speedup)} steps ({speedup}x fewer)", sample_all(model.patcher, round(steps / speedup)))
    for step in (steps // 4, steps // 2):
        outputs = []
        for i, case in enumerate(cases):
            patcher = model.patcher.clone()
            patcher.set_model_sampler_post_cfg_function(OneStepPerturbation(step, PERTURBATION, 1000 + i))
            quality.STEPS = steps
            outputs.append(quality.decoded(quality.sample_prompt(model, patcher, i, case)))
        add(f"1% noise on step {step}'s output", outputs)
    quality.STEPS = steps
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default="flux,wan,hunyuan_video")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    comfy_runtime.boot()
    comfy_runtime.load_pack()
    import quality
    from calibrated import STEPS

    lines = ["# The trajectory's own PSNR floor on the reference models", "",
             f"`bench/trajectory_floor.py --prompts {args.prompts}`: no cache anywhere; per-prompt pixel PSNR against "
             f"euler / simple at the calibrated benchmark's step count, on its prompts and seeds, at CFG "
             f"{quality.CFG:g} and 1 (how FLUX-dev and HunyuanVideo workflows sample, with their guidance embedding).",
             ""]
    runs = [(f, cfg) for cfg in (quality.CFG, 1.0) for f in args.families.split(",")]
    for family, cfg in runs:
        rows = run_family(family, args.prompts, cfg)
        lines += [f"## {family}, {STEPS[family]} steps, CFG {cfg:g}", "",
                  "| run | mean (dB) | worst prompt (dB) | per prompt (dB) |", "|---|---:|---:|---|"]
        lines += [f"| {label} | {sum(v) / len(v):.1f} | {min(v):.1f} | {' '.join(f'{x:.1f}' for x in v)} |"
                  for label, v in rows]
        lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
