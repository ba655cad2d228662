"""A cache never fails a user's prompt. An unexpected error in the pack's own code at run time
(an internal of a ComfyUI the pack has not seen) makes the run compute every step from there,
said once with the error; errors in the user's graph (`GraphError`: bad settings, a wrong profile,
a broken latent) and ComfyUI's cancel stay what they are, and so do errors of the model itself,
which run outside `own_code`."""
from __future__ import annotations

import contextlib
from typing import Iterator


class GraphError(ValueError):
    """A problem in the user's graph or settings, told as it is: it stops the prompt with a message
    that names the fix."""


class CacheInternalError(Exception):
    """An unexpected error raised by the pack's own code, carried out of the model's forward to
    the step, which then computes without the cache."""

    def __init__(self, where: str, error: BaseException) -> None:
        super().__init__(f"{where}: {type(error).__name__}: {error}")
        self.where = where
        self.error = error


@contextlib.contextmanager
def own_code(where: str) -> Iterator[None]:
    """Around the pack's own code (never the model's): any unexpected error becomes a
    CacheInternalError naming `where`."""
    try:
        yield
    except (GraphError, CacheInternalError):
        raise
    except Exception as err:
        if is_cancel(err):
            raise
        raise CacheInternalError(where, err) from err


def is_cancel(err: BaseException) -> bool:
    """Whether `err` is ComfyUI's cancel (`comfy.model_management.InterruptProcessingException`,
    or a subclass), told from the error's own classes: this leaf imports nothing of ComfyUI."""
    return any(kind.__name__ == "InterruptProcessingException" and kind.__module__ == "comfy.model_management"
               for kind in type(err).__mro__)


def internal_error_note(err: CacheInternalError) -> str:
    return (f"DiT Cache hit an unexpected error in its own code ({err}); the rest of this run is computed without "
            "the cache, so the image is right but not sped up. Please report it with your ComfyUI version")
