"""Cached runs under ComfyUI's TorchCompileModel at full size. The uncached compiled model runs
first (its graph has no cache hooks, the case that used to reuse it silently); then each caching
setting on the same compiled model (the caching node after TorchCompileModel, where the cache
compiles the blocks), and FORA with the caching node before TorchCompileModel. Each row runs once
to compile and is then timed; the speedup is against the uncached compiled run, over the
schedule's ideal, with how many graphs dynamo compiled (first run / timed runs: 0 timed means
nothing recompiles after the first run).

    COMFYUI_PATH=.device/comfyui python3 bench/compiled_speed.py --models 0 --out bench/results/...
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import bench_paths  # noqa: F401  (puts scripts/ and reference/ on the path)

import comfy_runtime
import gpu_speed
import node_runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="0", help="comma-separated indexes into gpu_speed's case list")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--dynamic-vram", action="store_true",
                        help="ComfyUI 0.26 on: dynamic VRAM (comfy-aimdo) on, as ComfyUI runs a CUDA GPU by default")
    args = parser.parse_args()
    comfy_runtime.boot(("--enable-dynamic-vram",) if args.dynamic_vram else ("--highvram",))
    dynamic = gpu_speed.enable_dynamic_vram() if args.dynamic_vram else False
    comfy_runtime.load_pack()
    import torch
    import torch._dynamo.utils

    import comfy.model_management
    import comfy.sample
    import comfyui_version
    from comfy_extras.nodes_torch_compile import TorchCompileModel

    from comfyui_dit_cache.cache_core.attachment.attach import attached_engine
    from comfyui_dit_cache.nodes import ApplyFORA, TaylorSeerForecast, TeaCacheThreshold

    device = comfy.model_management.get_torch_device()
    window = dict(start_percent=0.0, end_percent=1.0, cache_device="model device")
    settings = [("FORA interval 3", ApplyFORA, dict(interval=3, warmup_steps=1, **window)),
                ("TeaCache-style, reuse 2 of 3", TeaCacheThreshold,
                 dict(rel_l1_thresh=10.0, coefficients="auto", max_consecutive_reuse=2, **window)),
                ("TaylorSeer interval 4, order 2", TaylorSeerForecast,
                 dict(interval=4, warmup_steps=3, order=2, guard_tolerance=0.0, **window))]
    lines = [f"# Cached runs under TorchCompileModel, ComfyUI {comfyui_version.__version__}", "",
             f"`bench/compiled_speed.py --models {args.models} --repeats {args.repeats}"
             f"{' --dynamic-vram' if args.dynamic_vram else ''}`, {torch.cuda.get_device_name()}, "
             f"dynamic VRAM {'on' if dynamic else 'off'}, torch {torch.__version__}: each row run once to compile, then timed {args.repeats} times (best kept); "
             "*graphs compiled* counts dynamo's compiled graphs during the timed runs.", "",
             "| model | method | time (s) | achieved | ideal | achieved/ideal | graphs compiled (first run / timed runs) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for index in args.models.split(","):
        case = gpu_speed.FULL[int(index)]
        patcher = gpu_speed.build(case, device, torch.bfloat16)
        compiled = node_runner.run_node(TorchCompileModel, "compile", model=patcher, backend="inductor")[0]
        positive, negative = gpu_speed.conditioning(case)
        noise = torch.randn(case.latent, generator=torch.Generator().manual_seed(0))
        latent = torch.zeros(case.latent)

        def run(model) -> float:
            torch.cuda.synchronize()
            start = time.perf_counter()
            out = comfy.sample.sample(model, noise, case.steps, case.cfg, "euler", "simple", positive, negative,
                                      latent, seed=0, disable_pbar=True)
            torch.cuda.synchronize()
            assert torch.isfinite(out).all(), "non-finite output"
            return time.perf_counter() - start

        def measured(model) -> tuple[float, int, int]:
            graphs = lambda: torch._dynamo.utils.counters["stats"]["unique_graphs"]  # noqa: E731
            before = graphs()
            run(model)
            first = graphs() - before
            best = min(run(model) for _ in range(args.repeats))
            return best, first, graphs() - before - first

        eager = min(run(patcher) for _ in range(args.repeats + 1))
        lines.append(f"| {case.name} | uncached, not compiled | {eager:.2f} | - | - | - | - |")
        base, first, timed = measured(compiled)
        lines.append(f"| {case.name} | uncached, compiled | {base:.2f} | 1.00x | - | - | {first} / {timed} |")
        print(lines[-1], flush=True)
        rows = [(label, node, inputs, "after") for label, node, inputs in settings]
        rows.append((settings[0][0], settings[0][1], settings[0][2], "before"))
        for label, node, inputs, order in rows:
            if order == "after":
                cached = node_runner.run_node(node, "bench", model=compiled, **inputs)[0]
            else:
                cached = node_runner.run_node(node, "bench", model=patcher, **inputs)[0]
            reports: list = []
            attached_engine(cached).report_listeners.append(reports.append)
            if order == "before":
                cached = node_runner.run_node(TorchCompileModel, "compile", model=cached, backend="inductor")[0]
            seconds, first, timed = measured(cached)
            ideal = reports[-1].estimated_speedup
            lines.append(f"| {case.name} | {label}, cache {order} TorchCompileModel | {seconds:.2f} | "
                         f"{base / seconds:.2f}x | {ideal:.2f}x | {base / seconds / ideal:.2f} | {first} / {timed} |")
            print(lines[-1], reports[-1].notes, flush=True)
        if args.out:
            args.out.write_text("\n".join(lines) + "\n")
        del compiled, patcher
        torch.cuda.empty_cache()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
