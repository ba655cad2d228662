"""ComfyUI's UI workflow format (the JSON people drag into the graph editor and share) read
against the real node definitions: which inputs are widgets, in which order their values are
stored, and the conversion to the API prompt format that ComfyUI executes.

Works on whatever node classes are registered in `nodes.NODE_CLASS_MAPPINGS` (ComfyUI's own,
comfy_extras and custom nodes), so it needs a booted runtime.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
# The graph editor stores one extra value after an INT input flagged control_after_generate
# (the "fixed / increment / randomize" choice); it is not an input of the node.
CONTROL_AFTER_GENERATE = "control_after_generate"
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
# LoadImage-style combos flagged image_upload get an "upload" button whose value is stored too.
UPLOAD = "upload"


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str                  # "INT", "COMBO", "MODEL", ...
    options: dict[str, Any]
    choices: tuple | None      # combo choices
    optional: bool

    @property
    def is_widget(self) -> bool:
        return self.type in WIDGET_TYPES


def node_class(class_type: str):
    import nodes

    if class_type not in nodes.NODE_CLASS_MAPPINGS:
        raise KeyError(f"node type {class_type!r} is not installed")
    return nodes.NODE_CLASS_MAPPINGS[class_type]


def input_specs(class_type: str | type) -> list[InputSpec]:
    """Inputs in definition order (required, then optional), hidden ones left out; of a
    registered node type, or of a node class itself."""
    definition = (node_class(class_type) if isinstance(class_type, str) else class_type).INPUT_TYPES()
    out = []
    for section in ("required", "optional"):
        for name, spec in definition.get(section, {}).items():
            kind, options = spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
            if isinstance(kind, (list, tuple)):
                out.append(InputSpec(name, "COMBO", options, tuple(kind), section == "optional"))
            elif str(kind) == "COMBO":
                out.append(InputSpec(name, "COMBO", options, tuple(options.get("options", ())), section == "optional"))
            else:
                out.append(InputSpec(name, str(kind), options, None, section == "optional"))
    return out


def widget_slots(class_type: str) -> list[tuple[str, InputSpec | None]]:
    """What each entry of a node's `widgets_values` holds: (input name, spec), or (marker,
    None) for the editor's extra values (control_after_generate, upload)."""
    slots: list[tuple[str, InputSpec | None]] = []
    for spec in input_specs(class_type):
        if not spec.is_widget:
            continue
        slots.append((spec.name, spec))
        if spec.type == "INT" and spec.options.get(CONTROL_AFTER_GENERATE):
            slots.append((CONTROL_AFTER_GENERATE, None))
        if spec.type == "COMBO" and spec.options.get("image_upload"):
            slots.append((UPLOAD, None))
    return slots


def output_types(class_type: str) -> list[str]:
    return [str(t) for t in node_class(class_type).RETURN_TYPES]


def output_names(class_type: str) -> list[str]:
    cls = node_class(class_type)
    names = getattr(cls, "RETURN_NAMES", None)
    return [str(n) for n in names] if names else output_types(class_type)


# Nodes of the graph editor alone (notes): never sent to the server.
EDITOR_ONLY_TYPES = {"MarkdownNote", "Note"}


def ui_to_api(workflow: dict) -> dict[str, dict]:
    """The API prompt ComfyUI's executor runs: widget values by input name, links as
    [source node id, output slot]. Muted and bypassed nodes and notes are left out."""
    links = {link[0]: link for link in workflow["links"]}
    prompt: dict[str, dict] = {}
    for node in workflow["nodes"]:
        if node.get("mode", 0) != 0 or node["type"] in EDITOR_ONLY_TYPES:
            continue
        inputs: dict[str, Any] = {}
        values = list(node.get("widgets_values", []))
        for (name, spec), value in zip(widget_slots(node["type"]), values):
            if spec is not None:
                inputs[name] = value
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                _, source, source_slot, *_ = links[slot["link"]]
                inputs[slot["name"]] = [str(source), source_slot]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs,
                                   "_meta": {"title": node.get("title", node["type"])}}
    return prompt
