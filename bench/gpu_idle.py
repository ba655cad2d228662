"""Where a run makes the host wait for the GPU: samples one full-size model
through one method with `torch.cuda.set_sync_debug_mode("warn")` and prints every call site that
synchronised (a value read back from the GPU, a blocking copy), with how often it fired.

Why it matters: a skipped step is cheap only if the host can queue it while the GPU still works
on the last computed step. A wait in every step exposes all of the step's Python instead, which
is what the `floor` rows of bench/gpu_speed.py cost per skipped step.

It also times whether `torch.cuda.mem_get_info` (which ComfyUI calls on every step, through
`model_management.get_free_memory`, to size its cond batches) waits for queued GPU work, and
times each run once more with that query answered from its first value (`--hold-free-memory`),
to show what the query costs. That stand-in is a measurement only; the pack never installs it.

What it cannot see: a copy that PyTorch issues as non-blocking from pageable memory still waits
for the queue (CUDA stages it), without a warning. ComfyUI's per-step copy of the prompt is one;
bench/gpu_trace.py found it from the GPU's idle gaps.

Run on a GPU through the device tool: `python3 bench/gpu_idle.py --model 0 --method "FORA interval 3"`.
"""
from __future__ import annotations

import argparse
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

import bench_paths  # noqa: E402,F401  (puts scripts/ and reference/ on the path)

import comfy_runtime  # noqa: E402
import node_runner  # noqa: E402


def call_site() -> str:
    """The innermost frames outside torch and this script: who asked for the wait."""
    frames = [f for f in traceback.extract_stack() if "torch/" not in f.filename and "warnings" not in f.filename
              and "gpu_idle" not in f.filename]
    return " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames[-4:]))


def best_of_two(run) -> float:
    import torch
    times = []
    for _ in range(2):
        torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def query_wait_ms() -> None:
    """Queue ~100 ms of GPU work, then time a free-memory query: ~0 if it does not wait."""
    import torch
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for label, query in (("torch.cuda.mem_get_info", torch.cuda.mem_get_info),
                         ("torch.cuda.memory_stats", torch.cuda.memory_stats)):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(100):
            a @ a
        queued = time.perf_counter() - start
        start = time.perf_counter()
        query()
        waited = time.perf_counter() - start
        torch.cuda.synchronize()
        total = time.perf_counter() - start
        print(f"{label}: {1000 * waited:.2f} ms after queuing {1000 * queued:.1f} ms of launches "
              f"(queue drained {1000 * total:.1f} ms later)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=int, default=0, help="index into bench/gpu_speed.py's case list")
    parser.add_argument("--method", action="append", default=None,
                        help="a method label of bench/gpu_speed.py, or 'uncached' (repeatable)")
    parser.add_argument("--hold-free-memory", action="store_true",
                        help="also time each run with get_free_memory answered from its first value")
    args = parser.parse_args()

    comfy_runtime.boot(("--highvram",))
    comfy_runtime.load_pack()
    import torch
    import comfy.sample

    import comfy.model_management as mm
    import gpu_speed

    query_wait_ms()
    case = gpu_speed.FULL[args.model]
    device = torch.device("cuda")
    patcher = gpu_speed.build(case, device, torch.bfloat16)
    positive, negative = gpu_speed.conditioning(case)
    noise = torch.randn(case.latent, generator=torch.Generator().manual_seed(0))
    methods = gpu_speed.methods()
    sites: Counter = Counter()

    def record(message, category, filename, lineno, file=None, line=None) -> None:
        sites[call_site()] += 1

    for label in args.method or ["uncached", "FORA interval 3"]:
        if label == "uncached":
            model = patcher
        else:
            node, inputs = methods[label]
            model = node_runner.run_node(node, "idle", model=patcher, **inputs)[0]

        def run():
            return comfy.sample.sample(model, noise, case.steps, case.cfg, "euler", "simple", positive, negative,
                                       torch.zeros(case.latent), seed=0, disable_pbar=True)
        run()  # warm-up
        torch.cuda.synchronize()
        sites.clear()
        shown, warnings.showwarning = warnings.showwarning, record
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        start = time.perf_counter()
        try:
            run()
            torch.cuda.synchronize()
        finally:
            torch.cuda.set_sync_debug_mode("default")
            warnings.showwarning = shown
        print(f"## {case.name}, {label}: {case.steps} steps, {time.perf_counter() - start:.2f} s with sync warnings on",
              flush=True)
        for where, n in sites.most_common(12):
            print(f"  {n:5d} x {where}")
        print(f"  best of 2: {best_of_two(run):.3f} s")
        if args.hold_free_memory:
            real = mm.get_free_memory
            held: dict = {}
            mm.get_free_memory = lambda *a, **k: held.setdefault((a, tuple(k.items())), real(*a, **k))
            try:
                print(f"  best of 2, free memory held: {best_of_two(run):.3f} s")
            finally:
                mm.get_free_memory = real

if __name__ == "__main__":
    main()
