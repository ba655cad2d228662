"""The wrappers that place each model evaluation in its sampler step: SAMPLER_SAMPLE hears the
sampler's step reports, PREDICT_NOISE begins each evaluation's step (and, on a step whose whole
output stands in, runs none of ComfyUI's model calls)."""
from __future__ import annotations

import torch

from ..run.engine import RUN_KEY
from ..run.sampler_steps import OWN_STEPS
from ..support.containment import CacheInternalError, internal_error_note, own_code
from .guider_reads import calls_must_run, devices_of, without_run


def sampler_steps_wrapper(executor, *args, **kwargs):
    """SAMPLER_SAMPLE wrapper: the run hears the sampler report each step done (its progress
    callback, args[3]; the user's callback, if any, still gets every report), which is how a
    model evaluation is placed in its sampler step (run/sampler_steps.py). args: guider,
    sigmas, extra_args, callback, noise, ..."""
    run = args[2].get("model_options", {}).get("transformer_options", {}).get(RUN_KEY) if len(args) > 3 else None
    if run is None:
        return executor(*args, **kwargs)
    callback = args[3]

    def step_done(step: int, *report):
        run.sampler_steps.step_done(step)
        if step >= run.sampler_steps.steps and not run.computes_every_step:
            run.compute_every_step(OWN_STEPS)
        return callback(step, *report) if callback is not None else None

    return executor(*args[:3], step_done, *args[4:], **kwargs)


def step_wrapper(executor, *args, **kwargs):
    """PREDICT_NOISE wrapper: each model evaluation is placed in its step, and on a step whose
    whole output stands in nothing of ComfyUI's model calls runs (args: x, timestep = sigma,
    model_options, seed; it returns the guided denoised latent). After an unexpected error of the
    cache's own, in this step or before, the step is computed without the cache."""
    options = args[2].get("transformer_options", {})
    run = options.get(RUN_KEY)
    if run is None:
        return executor(*args, **kwargs)
    run.sampler_steps.evaluation_begins()
    if run.computes_every_step:   # set too by an internal error (run.fail)
        return _uncached_step(run, executor, args, kwargs, "every call")
    try:
        return _cached_step(run, executor, args, kwargs)
    except CacheInternalError as err:
        run.fail(internal_error_note(err), err.error)
        return _uncached_step(run, executor, args, kwargs, "every call")


def _cached_step(run, executor, args: tuple, kwargs: dict) -> torch.Tensor:
    x, sigma, model_options = args[0], args[1], args[2]
    with own_code("beginning a step"):
        run.begin_step(sigma)
        devices = devices_of(model_options)
        refused = run.split_over_devices(devices) if len(devices) > 1 else None
        if refused is not None:
            run.compute_every_step(refused)
    if refused is not None:
        return _uncached_step(run, executor, args, kwargs, "all devices")
    stand_in = None
    with own_code("standing in for a step"):
        if run.policy.reuses_outputs:
            stand_in = run.step_stand_in(x, sigma, calls_must_run(run, executor.class_obj, model_options))
        calls_before = run.recorder.calls_so_far()
    if stand_in is not None:
        return stand_in
    if len(devices) > 1:
        with own_code("deciding a step split over devices"):
            run.decide_step()
    denoised = executor(*args, **kwargs)
    with own_code("recording a step"):
        run.record_step_output(x, sigma, denoised, calls_before)
    return denoised


def _uncached_step(run, executor, args: tuple, kwargs: dict, label: str) -> torch.Tensor:
    """The step computed with no part of the cache in its model calls."""
    run.record_step_without_cache(label)
    return executor(args[0], args[1], without_run(args[2]), *args[3:], **kwargs)
