"""Runs a ComfyUI node the way ComfyUI's executor runs it, on any ComfyUI since 0.3.75: inputs
through `execution.get_input_data` (which also fills the node's hidden inputs, its unique id
among them, in whatever form that ComfyUI hands them to a V3 node), the call through the
executor's own `_async_map_node_over_list`. Used by the tests, the demo and the benchmarks, so
none of them depends on how a ComfyUI release passes hidden inputs."""
from __future__ import annotations

import asyncio
from typing import Any


def run_node(node_class: type, unique_id: str = "1", prompt_id: str = "dit-cache", **inputs: Any) -> tuple:
    """Execute `node_class` with `inputs` (values, not links); its outputs as a tuple."""
    result = execute_node(node_class, unique_id, prompt_id, **inputs)
    return tuple(result.args) if hasattr(result, "args") else tuple(result)


def execute_node(node_class: type, unique_id: str = "1", prompt_id: str = "dit-cache", **inputs: Any) -> Any:
    """Execute `node_class` with `inputs`; what it returned (a V3 node's `NodeOutput`, with its
    `ui` part)."""
    import execution

    inputs = {**widget_defaults(node_class), **inputs}
    input_data_all, _missing, hidden = execution.get_input_data(inputs, node_class, unique_id)

    async def call() -> list:
        results = await execution._async_map_node_over_list(prompt_id, unique_id, node_class, input_data_all,
                                                            node_class.FUNCTION, False, None, None, hidden)
        return await execution.resolve_map_node_over_list_results(results)

    return asyncio.run(call())[0]


def widget_defaults(node_class: type) -> dict[str, Any]:
    """The default of every required widget input, as the graph editor fills a new node: a call
    that names only the inputs it sets keeps working when a release adds an input."""
    required = node_class.INPUT_TYPES().get("required", {})
    return {name: spec[1]["default"] for name, spec in required.items()
            if len(spec) > 1 and isinstance(spec[1], dict) and "default" in spec[1]}
