"""What a Block Profiler run leaves behind: the profile and its heatmap saved, and the report told
where, with the plans it calibrated."""
from __future__ import annotations

import io
from pathlib import Path

from ..run.report import RunReport
from ..support.log import get_logger
from .heatmap import render_heatmap
from .plan_policy import planned_schedule
from .profile_io import save_profile, write_file_in

log = get_logger(__name__)


def save_profile_of_run(report: RunReport, name: str, directory: Path, output_root: Path) -> None:
    """A Block Profiler run's report: its profile JSON and heatmap PNG written to `directory`
    (under ComfyUI's output folder `output_root`), and the calibrated plans described in the
    report. A save that fails (disk full, no permission) is said in the log and the report; the
    sampled image is kept."""
    profile = report.extras.get("profile")
    if profile is None or report.interrupted:
        log.warning("Block Profiler: the run did not finish, no profile saved")
        return
    try:
        path, replaced = save_profile(profile, directory, name)
        heatmap = io.BytesIO()
        render_heatmap(profile).save(heatmap, format="PNG")
        write_file_in(directory, path.with_suffix(".png").name, heatmap.getvalue())
    except OSError as err:
        message = (f"the profile could not be saved as {name}.json in {directory} ({err.strerror or err}); the image "
                   "is kept: free space or fix the folder's permissions and profile again")
        log.error("Block Profiler: %s", message)
        report.notes.append(message)
        return
    report.extras["profile_path"] = str(path)
    # where the graph editor fetches the heatmap from (ComfyUI's /view route, output folder)
    report.extras["heatmap"] = {"filename": path.with_suffix(".png").name,
                                "subfolder": str(path.parent.relative_to(output_root)),
                                "type": "output"}
    saved = f"profile saved to {path}" + (" (it replaced the profile of that name)" if replaced else "")
    log.info("Block Profiler: %s; suggested FORA interval %s", saved, profile["suggested_fora_interval"])
    report.notes.append(saved)
    for plan in (profile.get("calibration") or {}).get("plans", []):
        runs = planned_schedule(profile, plan, len(profile["blocks"]))
        report.notes.append(f"calibrated {plan['speedup']:g}x (runs {runs.speedup:.2f}x: {runs.describe()}): "
                            f"worst case {plan['psnr_worst']:.1f} dB on the calibration noise")
