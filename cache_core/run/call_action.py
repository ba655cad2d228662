"""What one model call does on its step: the one place where the step's decision meets what the
call's stream holds.

The step is decided once (`StepSchedule.decided`); a call may still have to compute a step the
policy skips: its stream has nothing cached yet, or cached it under other weights (a scheduled
LoRA hook). Where the step's decision is to reuse the whole model's output (`REUSE_OUTPUT`), the
call is resolved twice: at the model call, where its output may stand in, and, if it does not,
at its first block.
"""
from __future__ import annotations

from ..policies.base import StepAction
from .stream_cache import WEIGHTS_CHANGED


def call_action(decided: StepAction, cached: bool, cached_weights: tuple, weights: tuple, *,
                at_output: bool = False, between_blocks: bool = False) -> tuple[StepAction, str | None]:
    """The call's action, and why it computes a step the policy would skip (None: no reason
    worth telling). `cached`: the stream (at the output: its output) holds something, computed
    under `cached_weights`; `weights` are the current ones.

    At the output (`at_output`, on a `REUSE_OUTPUT` step): `REUSE_OUTPUT` where the output stands
    in; `REUSE` for the blocks of a call that adds terms between them (a ControlNet, VACE), so it
    gets this step's terms; `COMPUTE` otherwise. At the blocks, a `REUSE_OUTPUT` that reached
    them (a call whose output could not stand in) computes."""
    if at_output and between_blocks:
        return StepAction.REUSE, None
    if not at_output and decided is StepAction.REUSE_OUTPUT:
        return StepAction.COMPUTE, None
    if decided is StepAction.COMPUTE or not cached:
        return StepAction.COMPUTE, None
    if weights != cached_weights:
        return StepAction.COMPUTE, WEIGHTS_CHANGED
    return decided, None
