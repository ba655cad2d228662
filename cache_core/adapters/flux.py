"""FLUX (`comfy.ldm.flux.model.Flux`): the single blocks see `cat(txt, img)`."""
from comfy.ldm.flux.model import Flux

from .double_single_stream import DoubleSingleStreamAdapter


class FluxAdapter(DoubleSingleStreamAdapter):
    family = "flux"
    model_class = Flux
    text_first = True
