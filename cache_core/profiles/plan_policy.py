"""A profile's calibrated plan as the policy that runs it, with everything the calibration fitted
for it (the `V` steps' output scales, the residual gains, HyCa's channel solvers): one place for
the node that runs a plan and the report that describes the plans just saved."""
from __future__ import annotations

from typing import Any

from ..policies import PlannedSchedule
from .profile_io import ProfileError, profiled_part


def planned_schedule(profile: dict[str, Any], entry: dict[str, Any], blocks: int) -> PlannedSchedule:
    """The policy of `entry`, one of `profile`'s calibrated plans, on a model of `blocks` blocks."""
    solvers = ((profile.get("calibration") or {}).get("channel_solvers") or {}).get("solvers", "")
    hybrid = "H" in entry["plan"]
    if hybrid and not solvers:
        raise ProfileError(f"profile '{profile.get('name', '?')}' has a plan with H steps but no "
                           "calibration.channel_solvers for them (the file was edited or cut): profile again")
    return PlannedSchedule(entry["plan"], profiled_part(profile), tuple(entry.get("kept_blocks") or ()), blocks,
                           tuple(profile.get("sigmas") or ()), tuple(entry.get("output_scales") or ()),
                           solvers if hybrid else "", tuple(entry.get("residual_gains") or ()))
