"""Finding where a split or img2img run lies in its whole schedule, on ComfyUI's own schedulers
and model samplings: the right part at every length, and a number of schedules tried that does
not grow with the run's length."""
from __future__ import annotations

import pytest
import torch

import tiny_models

from comfyui_dit_cache.cache_core.attachment.schedule_matching import PER_GUESS, REFINEMENTS, schedule_part


@pytest.fixture(scope="module", params=["flux", "sd15_whole_model"])
def model_sampling(request):
    return tiny_models.BUILDERS[request.param]().patcher.model.model_sampling


def whole_schedule(model_sampling, scheduler: str, total: int) -> torch.Tensor:
    import comfy.samplers
    return comfy.samplers.calculate_sigmas(model_sampling, scheduler, total).float().cpu()


def slices(total: int) -> list[tuple[int, int]]:
    """(first step, steps) of the parts people sample: img2img (denoise 0.6), the second and
    first half of a two-sampler split, a middle third."""
    return [(total - round(0.6 * total), round(0.6 * total)), (total // 2, total - total // 2), (0, total // 2),
            (total // 3, total // 3)]


def gives(schedule: torch.Tensor, run: torch.Tensor) -> bool:
    """Whether `schedule` begins with the run's sigmas."""
    return len(schedule) >= len(run) and torch.allclose(schedule[:len(run)], run, rtol=1e-4, atol=1e-6)


# Where the same sigmas are a part of two schedules, nothing tells them apart: a part of normal
# that stops before the end is also the beginning of sgm_uniform with one step fewer (found as
# that: the same first step, a total one step shorter), and one of ddim_uniform from its first
# step is sgm_uniform's from its second (found as that: the first step one later).
SAME_SIGMAS_AS = {"normal": "sgm_uniform", "ddim_uniform": "sgm_uniform"}


@pytest.mark.parametrize("total", [10, 28, 50, 200])
def test_every_part_of_every_scheduler_is_found(model_sampling, total):
    import comfy.samplers

    for scheduler in comfy.samplers.SCHEDULER_NAMES:
        whole = whole_schedule(model_sampling, scheduler, total)
        for first, steps in slices(total):
            run = whole[first:first + steps + 1]
            part = schedule_part(model_sampling, run)
            # a ComfyUI schedule of the part's length gives these very sigmas there (another
            # scheduler may: sgm_uniform's n steps begin as normal's n + 1)
            assert any(gives(whole_schedule(model_sampling, name, part.total)[part.first:], run)
                       for name in comfy.samplers.SCHEDULER_NAMES), (scheduler, first, steps, part)
            if (part.first, part.total) != (first, total):
                # the part sampled, unless its twin's schedule holds the very same sigmas
                twin = SAME_SIGMAS_AS.get(scheduler)
                assert twin and gives(whole_schedule(model_sampling, twin, part.total)[part.first:], run), \
                    (scheduler, total, first, steps, "found", part.first, part.total)


def schedules_tried(monkeypatch, model_sampling, sigmas: torch.Tensor) -> int:
    import comfy.samplers

    calls = []
    real = comfy.samplers.calculate_sigmas

    def counted(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)
    monkeypatch.setattr(comfy.samplers, "calculate_sigmas", counted)
    schedule_part(model_sampling, sigmas)
    monkeypatch.setattr(comfy.samplers, "calculate_sigmas", real)
    return len(calls)


def test_the_schedules_tried_do_not_grow_with_the_run(monkeypatch, model_sampling):
    """A custom schedule no scheduler makes (the worst case: nothing matches) and a karras slice:
    as few schedules tried at 200 steps as at 20 (trying every whole length up to four times the
    run's would be thousands)."""
    def custom(steps: int) -> torch.Tensor:
        top = float(model_sampling.percent_to_sigma(0.3))
        return torch.cat([torch.linspace(top, top / 7, steps) ** 1.3 / top ** 0.3, torch.zeros(1)])

    import comfy.samplers

    # a few step counts per guess and scheduler, whatever the length
    bound = PER_GUESS * REFINEMENTS * len(comfy.samplers.SCHEDULER_NAMES)
    for steps in (20, 200):
        assert schedules_tried(monkeypatch, model_sampling, custom(steps)) <= bound
        second_half = whole_schedule(model_sampling, "karras", 2 * steps)[steps:]
        assert schedules_tried(monkeypatch, model_sampling, second_half) <= bound
