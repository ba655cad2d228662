"""The same cached runs on whichever ComfyUI this process boots (COMFYUI_PATH), for comparing
releases: each reference model at 20 steps, CFG 4, on the quality bench's first prompts, latent
PSNR of each setting against the uncached run on that same ComfyUI. A cache that misreads a
contract a release changed (HunyuanVideo's join order in 0.26, say) shows as a drop against the
other release's figures.

    COMFYUI_PATH=.comfyui-0.26 .venv/bin/python bench/comfyui_versions.py --out bench/results/comfyui_0.26.md
"""
from __future__ import annotations

import argparse
from pathlib import Path

import bench_paths  # noqa: F401  (puts scripts/ and reference/ on the path)

import comfy_runtime  # noqa: E402
import node_runner  # noqa: E402

WINDOW = dict(start_percent=0.0, end_percent=1.0, cache_device="model device")


def settings():
    from comfyui_dit_cache.nodes import ApplyFORA, TaylorSeerForecast, TeaCacheThreshold

    return [("FORA interval 2", ApplyFORA, dict(interval=2, warmup_steps=1, **WINDOW)),
            ("FORA interval 3", ApplyFORA, dict(interval=3, warmup_steps=1, **WINDOW)),
            ("TeaCache-style 0.4", TeaCacheThreshold, dict(rel_l1_thresh=0.4, coefficients="auto",
                                                           max_consecutive_reuse=3, **WINDOW)),
            ("TaylorSeer interval 3", TaylorSeerForecast, dict(interval=3, warmup_steps=3, order=2,
                                                               guard_tolerance=0.0, **WINDOW))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    comfy_runtime.boot()
    comfy_runtime.load_pack()
    import torch

    import comfyui_version
    import quality
    import reference_models as refs
    from image_metrics import psnr

    lines = [f"# Reference models on ComfyUI {comfyui_version.__version__}", "",
             f"`bench/comfyui_versions.py --prompts {args.prompts}`: {quality.STEPS} steps, CFG {quality.CFG}, latent "
             "PSNR (dB) against the uncached run on the same ComfyUI, mean over the prompts.", "",
             "| model | " + " | ".join(name for name, _, _ in settings()) + " |",
             "|---|" + "---|" * len(settings())]
    for family in refs.available():
        model = refs.load(family)
        prompts = quality.bench_prompts(model, args.prompts)
        reference = [quality.sample_prompt(model, model.patcher, i, p) for i, p in enumerate(prompts)]
        row = []
        for name, node, inputs in settings():
            patched = node_runner.run_node(node, "versions", model=model.patcher, **inputs)[0]
            values = []
            for i, p in enumerate(prompts):
                out = quality.sample_prompt(model, patched, i, p)
                span = float(reference[i].max() - reference[i].min())
                values.append(min(psnr(out, reference[i], span), 100.0))
            row.append(sum(values) / len(values))
            print(f"[dit-cache] {family} {name}: {row[-1]:.1f} dB", flush=True)
        lines.append(f"| {family} | " + " | ".join(f"{v:.1f}" for v in row) + " |")
        del model
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
