"""The one thing every caching node does: check the model, build the engine, attach it to a
clone, and route the run report to the log and the graph editor."""
from __future__ import annotations

from typing import Any, Callable

from ..cache_core.attachment.attach import UnsupportedModelError, adapter_for, attach_engine
from ..cache_core.run.engine import CacheEngine
from ..cache_core.support.log import get_logger
from ..cache_core.policies import CachePolicy
from ..cache_core.run.report import RunReport

log = get_logger(__name__)

REPORT_EVENT = "dit_cache.report"


def publish_report(node_id: str | None, report: RunReport) -> None:
    """Send the run report to the browser that queued the prompt (ComfyUI's executor sets the
    server's `client_id` for the prompt it runs; a prompt queued without one reaches every
    browser), with the prompt's id. `node_id` is the execution id: "12", or "12:5" for a node
    inside a subgraph."""
    if node_id is None:
        return
    try:
        from server import PromptServer
    except ImportError:  # headless use (scripts, tests): nobody to tell
        return
    server = getattr(PromptServer, "instance", None)
    if server is not None:
        payload = {"node": str(node_id), "prompt_id": getattr(server, "last_prompt_id", None), "report": report.to_dict()}
        server.send_sync(REPORT_EVENT, payload, getattr(server, "client_id", None))


def apply_cache(model: Any, method: str, make_policy: Callable[[Any], CachePolicy], *, node_id: str | None,
                start_percent: float = 0.0, end_percent: float = 1.0, cache_device: str = "model device",
                observer_factory: Callable | None = None,
                listeners: tuple[Callable[[RunReport], None], ...] = (),
                run_note: Callable[[Any], str | None] | None = None,
                run_info: Callable[[Any], str | None] | None = None) -> Any:
    """A clone of `model` that samples through `method`; `model` itself unchanged if the family
    is not supported. `make_policy(adapter)` builds the policy once the family is known;
    `run_note(adapter)` is what every run's report then warns of the setting, `run_info(adapter)`
    what it tells of it (None: nothing)."""
    try:
        adapter = adapter_for(model)
    except UnsupportedModelError as err:
        log.warning("%s: %s", method, err)
        return model
    policy = make_policy(adapter)
    if adapter.level == "model" and policy.guard() is not None:
        log.warning("%s: %s is cached as a whole model, which has no first block for the forecast guard to probe; "
                    "the model is passed through without caching (set guard_tolerance to 0 to cache it)",
                    method, adapter.display_name)
        return model
    engine = CacheEngine(
        method=method,
        adapter=adapter,
        policy=policy,
        blocks=adapter.blocks(model.model.diffusion_model),
        start_percent=start_percent,
        end_percent=end_percent,
        offload_cache=cache_device == "cpu",
        observer_factory=observer_factory,
        notes=tuple(n for n in [run_note(adapter) if run_note else None] if n),
        info_notes=tuple(n for n in [run_info(adapter) if run_info else None] if n),
        report_listeners=[*listeners, lambda report: publish_report(node_id, report)],
    )
    return attach_engine(model, engine)
