"""HunyuanVideo (`comfy.ldm.hunyuan_video.model.HunyuanVideo`): FLUX-style double and single
blocks; its single blocks join image and text in an order that ComfyUI 0.26 reversed (read
from the call)."""
from comfy.ldm.hunyuan_video.model import HunyuanVideo

from .double_single_stream import DoubleSingleStreamAdapter
from .presets import MagnitudePreset, TeaCachePreset


class HunyuanVideoAdapter(DoubleSingleStreamAdapter):
    family = "hunyuan_video"
    display_name = "HunyuanVideo"
    model_class = HunyuanVideo
    # TeaCache authors; threshold 0.15 is their ~1.9x setting.
    teacache_presets = (
        TeaCachePreset("hunyuan_video",
                       (7.33226126e02, -4.01131952e02, 6.75869174e01, -3.14987800e00, 9.61237896e-02), 0.15),
    )
    # MagCache authors, 50 steps.
    magnitude_presets = (
        MagnitudePreset("hunyuan_video", (
            1.0, 1.0754, 1.27807, 1.11596, 1.09504, 1.05188, 1.00844, 1.05779, 1.00657, 1.04142, 1.03101, 1.00679,
            1.02556, 1.00908, 1.06949, 1.05438, 1.02214, 1.02321, 1.03019, 1.00779, 1.03381, 1.01886, 1.01161,
            1.02968, 1.00544, 1.02822, 1.00689, 1.02119, 1.0105, 1.01044, 1.01572, 1.02972, 1.0094, 1.02368, 1.0226,
            0.98965, 1.01588, 1.02146, 1.0018, 1.01687, 0.99436, 1.00283, 1.01139, 0.97122, 0.98251, 0.94513,
            0.97656, 0.90943, 0.85703, 0.75456), 0.24, 6),
    )
