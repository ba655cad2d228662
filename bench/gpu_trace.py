"""Where a cached run's time goes beyond its ideal: samples one full-size
model uncached and with the given methods, once each under `torch.profiler`, and prints per run
the wall time, the time the GPU was busy (kernel intervals merged), the GPU's idle time, and the
kernels whose total time grew most against the uncached run scaled to the method's computed
share of blocks. Each idle gap over 5 ms is located (where in the run, between which kernels)
with the host-side torch ops that overlapped it.

Why: bench/gpu_speed.py shows cached runs a few percent short of their ideal. If the GPU was
busy all along, the cost is kernels the cache added (they are listed); if it idled, the host
could not queue work fast enough (the Python of skipped steps, or a wait). This is how the
per-step wait on ComfyUI's copy of the prompt from pageable memory was found (42 gaps per FORA
run on FLUX.1-dev, 3 once the pack moved the conditioning; see cache_core/attachment/conditioning.py) and
the `isfinite` check of the CPU latent before the first step (57 ms under the profiler, now a
min/max pass).
`--conds-on-gpu` hands the sampler a prompt already on the GPU (the uncached run then shows
what the move alone is worth).

Run on a GPU through the device tool: `python3 bench/gpu_trace.py --model 0 --method "FORA interval 3"`.
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict

import bench_paths  # noqa: E402,F401  (puts scripts/ and reference/ on the path)

import comfy_runtime  # noqa: E402
import node_runner  # noqa: E402


def busy_us(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end) intervals (microseconds)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


def profile(run) -> tuple[float, float, dict[str, float], float, list[float]]:
    """Wall seconds, GPU-busy seconds, kernel name -> total us, the span from the first to the
    last kernel (s), and the gaps between kernels over 0.5 ms (ms), of one run."""
    import torch
    from torch.profiler import ProfilerActivity, profile as torch_profile

    torch.cuda.synchronize()
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], ) as prof:
        start = time.perf_counter()
        run()
        torch.cuda.synchronize()
        wall = time.perf_counter() - start
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    kernels.sort(key=lambda e: e.time_range.start)
    host = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CPU]
    intervals = [(e.time_range.start, e.time_range.end) for e in kernels]
    by_name: dict[str, float] = defaultdict(float)
    for e in kernels:
        by_name[e.name[:90]] += e.time_range.end - e.time_range.start
    gaps, reach, previous = [], intervals[0][1], kernels[0]
    for event in kernels[1:]:
        start, end = event.time_range.start, event.time_range.end
        if start - reach > 500:
            gaps.append((start - reach) / 1000)
            if start - reach > 5000:
                print(f"    gap of {(start - reach) / 1000:.1f} ms at {(reach - intervals[0][0]) / 1000:.1f} ms "
                      f"after {previous.name[:60]!r}, before {event.name[:60]!r}")
                inside = sorted(((min(c.time_range.end, start) - max(c.time_range.start, reach), c.name[:70])
                                 for c in host if c.time_range.start < start and c.time_range.end > reach),
                                reverse=True)
                for overlap, name in inside[:8]:
                    print(f"      host op {name!r} over {overlap / 1000:.1f} ms of it")
        if end > reach:
            reach, previous = end, event
    span = (intervals[-1][1] - intervals[0][0]) / 1e6
    return wall, busy_us(intervals) / 1e6, by_name, span, gaps


def python_profile(run) -> None:
    """The host functions that took most of one run's time (cProfile, own time and cumulative)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(run)
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(15)
    stats.sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=int, default=0, help="index into bench/gpu_speed.py's case list")
    parser.add_argument("--method", action="append", default=None, help="a method label of bench/gpu_speed.py")
    parser.add_argument("--conds-on-gpu", action="store_true",
                        help="hand the sampler conditioning that already lives on the GPU")
    parser.add_argument("--dynamic-vram", action="store_true",
                        help="ComfyUI 0.26 on: dynamic VRAM (comfy-aimdo) on, as bench/gpu_speed.py turns it on")
    parser.add_argument("--python-profile", action="store_true",
                        help="also run each method once under cProfile and print where the host's time went")
    args = parser.parse_args()

    comfy_runtime.boot(("--enable-dynamic-vram",) if args.dynamic_vram else ("--highvram",))
    import gpu_speed
    if args.dynamic_vram:
        print(f"dynamic VRAM {'on' if gpu_speed.enable_dynamic_vram() else 'could not be turned on'}", flush=True)
    comfy_runtime.load_pack()
    import torch
    import comfy.sample
    from gpu_idle import best_of_two
    from comfyui_dit_cache.cache_core.attachment.attach import attached_engine

    case = gpu_speed.FULL[args.model]
    import comfy.model_management
    device = comfy.model_management.get_torch_device()   # cuda:0, as dynamic VRAM keys its state
    patcher = gpu_speed.build(case, device, torch.bfloat16)
    positive, negative = gpu_speed.conditioning(case)
    if args.conds_on_gpu:
        positive, negative = gpu_speed.conditioning_on(device, positive, negative)
    noise = torch.randn(case.latent, generator=torch.Generator().manual_seed(0))
    methods = gpu_speed.methods()

    def runner(model):
        def run():
            return comfy.sample.sample(model, noise, case.steps, case.cfg, "euler", "simple", positive, negative,
                                       torch.zeros(case.latent), seed=0, disable_pbar=True)
        return run

    base_run = runner(patcher)
    base_run()
    print(f"uncached, best of 2 without the profiler: {best_of_two(base_run):.3f} s", flush=True)
    base_wall, base_busy, base_kernels, base_span, base_gaps = profile(base_run)
    print(f"## {case.name}: uncached wall {base_wall:.3f} s, GPU busy {base_busy:.3f} s, kernel span "
          f"{base_span:.3f} s, {len(base_gaps)} gaps > 0.5 ms totalling {sum(base_gaps):.1f} ms", flush=True)
    for label in args.method or ["FORA interval 3"]:
        node, inputs = methods[label]
        inputs = {**inputs, **gpu_speed.calibration_for(patcher, node, case.steps)}
        model = node_runner.run_node(node, "trace", model=patcher, **inputs)[0]
        reports: list = []
        attached_engine(model).report_listeners.append(reports.append)
        run = runner(model)
        run()
        print(f"{label}, best of 2 without the profiler: {best_of_two(run):.3f} s", flush=True)
        wall, busy, kernels, span, gaps = profile(run)
        ideal = reports[-1].estimated_speedup
        print(f"## {label} (ideal {ideal:.2f}x): wall {wall:.3f} s, GPU busy {busy:.3f} s "
              f"(uncached busy / ideal = {base_busy / ideal:.3f} s), idle within the kernel span {span - busy:.3f} s, "
              f"{len(gaps)} gaps > 0.5 ms totalling {sum(gaps):.1f} ms (largest {max(gaps, default=0):.1f} ms)")
        grown = sorted(((kernels.get(n, 0.0) - base_kernels.get(n, 0.0) / ideal, n)
                        for n in set(kernels) | set(base_kernels)), reverse=True)
        for extra, name in grown[:8]:
            print(f"  {extra / 1000:+8.2f} ms  {name}")
        if args.python_profile:
            python_profile(run)
        print(flush=True)


if __name__ == "__main__":
    main()
