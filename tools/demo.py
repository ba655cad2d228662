"""`make demo`: sample a tiny FLUX model through each caching node and print its run report,
next to the uncached run: real block-compute counts, wall time and the difference from the
uncached output."""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import comfy_runtime  # noqa: E402

comfy_runtime.boot()
comfy_runtime.load_pack()

import folder_paths  # noqa: E402
import torch  # noqa: E402

import tiny_models  # noqa: E402
from comfyui_dit_cache.cache_core.attach import attached_engine  # noqa: E402
from comfyui_dit_cache.nodes import ApplyFORA, BlockProfiler, TaylorSeerForecast, TeaCacheThreshold  # noqa: E402

STEPS = 28
WINDOW = dict(start_percent=0.0, end_percent=1.0, cache_device="model device")


def node(cls, **inputs):
    return cls.PREPARE_CLASS_CLONE({"UNIQUE_ID": "demo"}).execute(**inputs).args[0]


def timed(patcher, tiny, repeats: int = 2):
    """Output and best wall time of `repeats` runs after one warm-up run (the first run of a
    patched clone pays model loading)."""
    tiny_models.sample(patcher, tiny, steps=STEPS, cfg=3.5)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = tiny_models.sample(patcher, tiny, steps=STEPS, cfg=3.5)
        best = min(best, time.perf_counter() - start)
    return out, best


def main() -> None:
    torch.manual_seed(0)
    flux = tiny_models.tiny_flux()
    folder_paths.set_output_directory(tempfile.mkdtemp(prefix="dit-cache-demo-"))
    reference, base_time = timed(flux.patcher, flux)
    print(f"uncached: {STEPS} steps, {len(flux.patcher.model.diffusion_model.double_blocks) + len(flux.patcher.model.diffusion_model.single_blocks)} blocks each, {base_time:.2f}s")
    candidates = {
        "Apply FORA (interval 3)": node(ApplyFORA, model=flux.patcher, interval=3, warmup_steps=1, **WINDOW),
        "TeaCache-style (0.4, flux)": node(TeaCacheThreshold, model=flux.patcher, rel_l1_thresh=0.4,
                                           coefficients="flux", max_consecutive_reuse=3, **WINDOW),
        "TaylorSeer (interval 4, order 2)": node(TaylorSeerForecast, model=flux.patcher, interval=4, warmup_steps=3,
                                                 order=2, granularity="block", **WINDOW),
        "Block Profiler": node(BlockProfiler, model=flux.patcher, profile_name="demo"),
    }
    for label, patched in candidates.items():
        reports = []
        attached_engine(patched).report_listeners.append(reports.append)
        out, seconds = timed(patched, flux)
        report = reports[-1]
        difference = float((out - reference).abs().mean() / reference.abs().mean())
        print(f"\n{label}\n  {report.summary_line()}")
        print(f"  blocks computed {report.blocks_computed}/{report.block_evaluations}, wall {seconds:.2f}s "
              f"({base_time / seconds:.2f}x), mean relative difference from uncached {difference:.3f}")
        print(f"  steps: {''.join(a[0].upper() for a in report.step_actions())}")
        if "profile_path" in report.extras:
            print(f"  profile: {report.extras['profile_path']}")
    print("\nThe tiny model has random weights: the differences show the mechanism, not image quality.")


if __name__ == "__main__":
    main()
