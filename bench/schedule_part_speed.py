"""How long finding a run's place in its whole schedule takes before the first step (CPU), on
FLUX's model sampling: the worst case, a custom schedule no ComfyUI scheduler makes, and the
second half of a karras schedule (a two-sampler split), at 20 to 200 steps. Each figure is the
best of three; the schedules tried are counted.

    .venv/bin/python bench/schedule_part_speed.py
"""
from __future__ import annotations

import time

import bench_paths  # noqa: F401  (puts scripts/ and reference/ on the path)

import comfy_runtime


def main() -> None:
    comfy_runtime.boot()
    comfy_runtime.load_pack()
    import torch

    import comfy.model_sampling
    import comfy.samplers
    import comfy.supported_models

    from comfyui_dit_cache.cache_core.attachment.schedule_matching import schedule_part

    model_sampling = comfy.model_sampling.ModelSamplingFlux(comfy.supported_models.Flux({"image_model": "flux"}))
    real = comfy.samplers.calculate_sigmas
    tried = []

    def counted(*args, **kwargs):
        tried.append(args[2])
        return real(*args, **kwargs)
    comfy.samplers.calculate_sigmas = counted

    def custom(steps: int) -> torch.Tensor:
        top = float(model_sampling.percent_to_sigma(0.3))
        return torch.cat([torch.linspace(top, top / 7, steps) ** 1.3 / top ** 0.3, torch.zeros(1)])

    print("| steps | custom schedule (s) | schedules tried | karras second half (s) | schedules tried |")
    print("|---:|---:|---:|---:|---:|")
    for steps in (20, 50, 100, 200):
        row = [str(steps)]
        for sigmas in (custom(steps), real(model_sampling, "karras", 2 * steps)[steps:]):
            best = float("inf")
            for _ in range(3):
                tried.clear()
                start = time.perf_counter()
                schedule_part(model_sampling, sigmas)
                best = min(best, time.perf_counter() - start)
            row += [f"{best:.3f}", str(len(tried))]
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
