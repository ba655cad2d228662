"""Inputs every caching node shares, with the same tooltips everywhere."""
from comfy_api.latest import io

from ..cache_core.adapters import supported_families

CATEGORY = "sampling/dit_cache"
CACHE_DEVICES = ["model device", "cpu"]


def model_input(tooltip: str = "The diffusion model to cache") -> io.Model.Input:
    return io.Model.Input("model", tooltip=f"{tooltip}: block by block for {supported_families()}; any other "
                                           "diffusion model is cached whole (inside its forward, or around the "
                                           "model call).")


def cached_model_output() -> io.Model.Output:
    return io.Model.Output(tooltip="The model, cached. The input model is unchanged.")


def window_inputs() -> list:
    return [
        io.Float.Input("start_percent", default=0.0, min=0.0, max=1.0, step=0.01,
                       tooltip="Where in the schedule caching may start (0 = first step). Steps before it are always "
                               "computed. Start at 0.0; raise it if early composition suffers."),
        io.Float.Input("end_percent", default=1.0, min=0.0, max=1.0, step=0.01,
                       tooltip="Where caching stops (1 = last step). Steps after it are always computed. "
                               "Start at 1.0; lower it (e.g. 0.9) to keep the final detail steps exact."),
    ]


def cache_device_input() -> io.Combo.Input:
    return io.Combo.Input("cache_device", options=CACHE_DEVICES, default="model device",
                          tooltip="Where cached features live. Keep 'model device'. 'cpu' frees GPU memory but copies "
                                  "over PCIe every block: measured slower than no cache at all on an H100 with "
                                  "FORA (see README); only for stack-level caches on cards that run out of memory.")
