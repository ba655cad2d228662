"""The OUTER_SAMPLE wrapper: a fresh run for each sampling, released however it ends."""
from __future__ import annotations

import torch
from comfy.model_patcher import create_model_options_clone

from ..run.engine import ENGINE_KEY, RUN_KEY, CacheEngine
from ..support.containment import CacheInternalError, GraphError, internal_error_note, is_cancel, own_code
from ..support.log import get_logger
from .compiled_blocks import WHOLE_MODEL_LEVEL_COMPILED, compile_blocks_for_run
from .guider_reads import replaced_hooks, weight_keyframes
from .schedule_matching import schedule_part

log = get_logger(__name__)


class InvalidLatentError(GraphError):
    """The latent or noise handed to the sampler holds NaN or infinite values."""


def check_finite(noise: torch.Tensor, latent: torch.Tensor) -> None:
    """Refuse NaN/inf input before sampling: otherwise it surfaces as a black image, and a cache
    would spread it over reused steps without a word."""
    for name, tensor in (("latent", latent), ("noise", noise)):
        if tensor.numel() == 0 or not tensor.is_floating_point():
            continue
        # min and max carry any NaN or inf, in one pass: ten times quicker than isfinite().all()
        # on a CPU latent, and the run's first step waits for this check
        low, high = torch.aminmax(tensor)
        if not bool(torch.isfinite(low) & torch.isfinite(high)):
            raise InvalidLatentError(
                f"DiT Cache: the {name} given to the sampler holds NaN or infinite values; check the node that "
                "produced it (a VAE Encode of a broken image, a damaged latent file, a custom noise node)")


def run_scope_wrapper(executor, *args, **kwargs):
    """OUTER_SAMPLE wrapper: a fresh SamplingRun for this sampling run, released however it ends.
    Neither starting nor finishing the run fails a prompt on an unexpected error of the pack's
    own: the run then samples uncached, or its result is kept, with the error in the log."""
    guider = executor.class_obj
    original_options = guider.model_options
    engine: CacheEngine = original_options["transformer_options"][ENGINE_KEY]
    noise, latent, sigmas = args[0], args[1], args[3]
    check_finite(noise, latent)
    base_model = guider.model_patcher.model
    try:
        with own_code("starting the run"):
            model_sampling = base_model.model_sampling
            run = engine.start_run(base_model.diffusion_model, model_sampling, sigmas,
                                   lambda values: schedule_part(model_sampling, values),
                                   weight_keyframes(guider), replaced_hooks(engine, original_options))
            run_options = create_model_options_clone(original_options)
            compile_note = compile_blocks_for_run(engine.adapter, base_model, run_options)
    except CacheInternalError as err:
        log.error("%s: %s", engine.method, internal_error_note(err), exc_info=err.error)
        return executor(*args, **kwargs)
    if compile_note == WHOLE_MODEL_LEVEL_COMPILED:
        run.compute_every_step(compile_note)
    elif compile_note is not None:
        run.recorder.note(compile_note, warn=False)
    guider.model_options = run_options
    guider.model_options["transformer_options"][RUN_KEY] = run
    finished, failure = False, None
    try:
        result = executor(*args, **kwargs)
        finished = True
        return result
    except Exception as err:
        if not is_cancel(err):
            failure = f"{type(err).__name__}: {err}"[:300]
        raise
    finally:
        guider.model_options = original_options
        try:
            engine.finish_run(run, interrupted=not finished, failure=failure)
        except Exception as err:  # the sampled result is kept: a report or a save must not lose it
            if not finished:
                raise
            log.error("%s: the run sampled, but finishing its report failed (%s: %s); the image is kept",
                      engine.method, type(err).__name__, err, exc_info=not isinstance(err, GraphError))
