"""Cache Quality Check: what the cache cost, as numbers and a picture, inside the graph."""
from comfy_api.latest import io, ui

from ..cache_core.support.containment import GraphError
from ..cache_core.support.image_quality import DIFFERENCE_GAIN, ImageMismatchError, difference_image, scores
from .common_inputs import CATEGORY


class QualityInputError(GraphError):
    """The two images cannot be compared."""


class CacheQualityCheck(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DiTCacheQualityCheck",
            display_name="Cache Quality Check",
            category=CATEGORY,
            description="Compares the images of a cached run with those of the same run uncached (same model, "
                        "prompt, seed, sampler, steps and size): PSNR and SSIM per frame, their mean and worst, "
                        "and where the two differ.",
            inputs=[
                io.Image.Input("cached", tooltip="The decoded images (or video frames) of the run with the cache"),
                io.Image.Input("uncached", tooltip="The decoded images (or video frames) of the same run without "
                                                   "the cache"),
            ],
            outputs=[
                io.Image.Output(display_name="difference",
                                tooltip=f"Where the images differ: brighter is more different (the largest channel "
                                        f"difference times {DIFFERENCE_GAIN:g}: a difference of "
                                        f"{1 / DIFFERENCE_GAIN:g} or more is white). Preview it"),
                io.String.Output(display_name="summary",
                                 tooltip="PSNR and SSIM: mean over the frames and the worst frame (higher: closer "
                                         "to the uncached images)"),
            ],
        )

    @classmethod
    def execute(cls, cached, uncached) -> io.NodeOutput:
        try:
            measured = scores(cached, uncached)
            difference = difference_image(cached, uncached)
        except ImageMismatchError as err:
            raise QualityInputError(str(err)) from None
        summary = measured.summary()
        return io.NodeOutput(difference, summary, ui=ui.PreviewText(summary))
