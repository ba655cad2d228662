"""HunyuanVideo (`comfy.ldm.hunyuan_video.model.HunyuanVideo`): the single blocks see
`cat(img, txt)`."""
from comfy.ldm.hunyuan_video.model import HunyuanVideo

from .double_single_stream import DoubleSingleStreamAdapter


class HunyuanVideoAdapter(DoubleSingleStreamAdapter):
    family = "hunyuan_video"
    model_class = HunyuanVideo
    text_first = False
