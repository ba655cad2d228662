"""DiT Cache: training-free feature caching for diffusion transformers in ComfyUI.

ComfyUI imports this folder as a custom node package and calls `comfy_entrypoint`.
"""
from comfy_api.latest import ComfyExtension, io

from .nodes import NODE_LIST

# Served to the graph editor: run reports and the profiler heatmap on the nodes (web/dit_cache.js).
WEB_DIRECTORY = "./web"


class DiTCacheExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODE_LIST)


async def comfy_entrypoint() -> DiTCacheExtension:
    return DiTCacheExtension()
