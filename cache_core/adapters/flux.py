"""FLUX (`comfy.ldm.flux.model.Flux`): double-stream blocks, then single blocks over the joined text and image."""
from comfy.ldm.flux.model import Flux

from .double_single_stream import DoubleSingleStreamAdapter
from .presets import MagnitudePreset, TeaCachePreset


class FluxAdapter(DoubleSingleStreamAdapter):
    family = "flux"
    display_name = "FLUX"
    model_class = Flux
    # TeaCache authors, FLUX.1-dev; threshold 0.4 is their ~2x setting.
    teacache_presets = (
        TeaCachePreset("flux", (4.98651651e02, -2.83781631e02, 5.58554382e01, -3.82021401e00, 2.64230861e-01), 0.4),
    )
    # MagCache authors: FLUX.1-dev at 28 steps; FLUX.1 Kontext dev at 20 (their recommended 0.05, K 4).
    # FLUX.2 shares the model class; nothing is published for it: profile it.
    magnitude_presets = (
        MagnitudePreset("flux", (1.0, 1.21094, 1.11719, 1.07812, 1.0625, 1.03906, 1.03125, 1.03906, 1.02344, 1.03125,
                                 1.02344, 0.98047, 1.01562, 1.00781, 1.0, 1.00781, 1.0, 1.00781, 1.0, 1.0, 0.99609,
                                 0.99609, 0.98047, 0.98828, 0.96484, 0.95703, 0.93359, 0.89062), 0.24, 5),
        MagnitudePreset("flux_kontext", (1.0, 1.21875, 1.0625, 1.03125, 1.03125, 1.0, 1.00781, 1.03906, 0.98047,
                                         1.03125, 0.96875, 1.02344, 1.0, 0.99219, 1.02344, 0.98047, 0.95703, 0.98828,
                                         0.98047, 0.88672), 0.05, 4),
    )
