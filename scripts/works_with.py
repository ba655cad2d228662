"""The README's "Works with" table, made from the code: one row per model class of the running
ComfyUI's `comfy.supported_models`, with the level the pack caches it at, whether a tiny model of
it runs in the test suite, and its published presets.

    python scripts/works_with.py            # print the table
    python scripts/works_with.py --write    # rewrite the table in README.md (run on the newest
                                            # ComfyUI the tests cover)

The diffusion-model class of a config is read by building the config's model on the meta device
(no memory, no weights); where its own settings are not enough to build it (detection fills them
from a checkpoint), the class is read from the frame of ComfyUI's `BaseModel.__init__`, which
holds it as `unet_model` when the construction failed."""
from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tests" / "fixtures")]

import comfy_runtime  # noqa: E402

BEGIN, END = "<!-- works-with: begin", "<!-- works-with: end -->"
WHOLE = "whole model"


def config_classes() -> dict[str, type]:
    """Every model config of this ComfyUI's `comfy.supported_models`, by name."""
    import comfy.supported_models as supported
    import comfy.supported_models_base as base

    return {name: c for name, c in sorted(vars(supported).items())
            if inspect.isclass(c) and issubclass(c, base.BASE) and c.__module__ == supported.__name__}


def diffusion_class(config: type) -> type | None:
    """The class of the diffusion model `config` builds (None: it could not be found)."""
    import comfy.model_base
    import torch

    try:
        model_config = config(dict(config.unet_config))
        model_config.set_inference_dtype(torch.float32, None)
        with torch.device("meta"):
            model = model_config.get_model({}, device=torch.device("meta"))
        return type(model.diffusion_model)
    except Exception as err:   # the config needs a checkpoint's settings: read what it was building
        traceback = err.__traceback__
        while traceback is not None:
            frame = traceback.tb_frame
            if frame.f_code is comfy.model_base.BaseModel.__init__.__code__:
                return frame.f_locals.get("unet_model")
            traceback = traceback.tb_next
    return None


def family_adapter(model_class: type):
    """The block-level adapter of `model_class` (the least refined of those that describe it)."""
    from comfyui_dit_cache.cache_core.adapters import ADAPTERS

    matching = [a for a in ADAPTERS if issubclass(model_class, a.model_class)]
    if not matching:
        return None
    deepest = max(len(a.model_class.__mro__) for a in matching)
    return min((a for a in matching if len(a.model_class.__mro__) == deepest), key=lambda a: len(type(a).__mro__))


def tiny_levels(built: dict | None = None) -> dict[str, tuple[str, type | None]]:
    """The configs the suite's tiny models are built from: the level each name says it is cached
    at (the suite checks that its runs' reports say the same) and its diffusion-model class.
    `built`: tiny models already built, by name."""
    import tiny_models

    built = {} if built is None else built
    levels = {config: ("blocks", None) for config in tiny_models.wan_configs()}   # test_wan_variants: each one
    checks = {name: build for name, (_, build) in tiny_models.acceleration_checks().items()}
    for name, build in [*tiny_models.BUILDERS.items(), *checks.items()]:
        if name not in built:
            built[name] = build()
        model = built[name].patcher.model
        level = tiny_models.tested_level(name) + ("; FORA check" if name in checks else "")
        levels.setdefault(type(model.model_config).__name__, (level, type(model.diffusion_model)))
    return levels


def _concat_input(what: str, channels_in: int, channels_out: int) -> str:
    return (f"no tiny model of its own: {what} joined to the noise ({channels_in} channels in, {channels_out} "
            "out), so it is cached around the model call, as the tested `CogVideoX_I2V` and "
            "`SD15_instructpix2pix` are")


# Sampled configs with no tiny model of their own, and why (the table's tiny-model column).
NO_TINY_MODEL = {
    "ACEStep": "no: its lyric encoder is fixed by the class (6 conformer blocks 1024 wide, about 90M weights), "
               "too big for a tiny model",
    "CogVideoX_Inpaint": _concat_input("the image and mask latents are", 48, 16),
    "CosmosI2V": _concat_input("the conditioning mask is", 17, 16),
    "SDXL_instructpix2pix": _concat_input("the image latent is", 8, 4),
    "SD_X4Upscaler": _concat_input("the low-resolution image is", 7, 4),
    "SVD_img2vid": _concat_input("the image latent is", 8, 4),
    "SV3D_u": _concat_input("the image latent is", 8, 4),
    "SV3D_p": _concat_input("the image latent is", 8, 4),
    "Ideogram4": "no: its config fixes the width (18 heads of 256, a 12288-wide MLP, a 53248-wide text input), "
                 "too big for a tiny model",
    "MiniMaxMusic3": "no: its class fixes its widths (a 4096-to-2048 conditioning convolution and its transformer), "
                     "too big for a tiny model",
    "HiDreamO1": "no: its conditioning is built from the token ids of its own Qwen3-VL language model "
                 "(`text_input_ids`); no tiny model of it yet",
    "Trellis2": "no: it samples the structured 3D latents its Trellis 2 nodes lay out (image embeddings, voxel "
                "coordinates per stage); no tiny model of it yet",
    "TripoSplat": "no: it samples a nested latent and camera (`latent_shapes`) from DINOv3 image tokens, as its "
                  "TripoSplat nodes make them; no tiny model of it yet",
    # configs that build their model only from a checkpoint's settings (this script cannot name their class)
    "SD20": "no tiny model of its own: an SD2 `UNetModel` (its config needs a checkpoint), cached whole as the tested "
            "`SD15`",
    "SD21UnclipH": "no tiny model of its own: an SD2 `UNetModel` with an image embedding (its config needs a "
                   "checkpoint), cached whole as the tested `SD15`",
    "SD21UnclipL": "no tiny model of its own: an SD2 `UNetModel` with an image embedding (its config needs a "
                   "checkpoint), cached whole as the tested `SD15`",
    "Stable_Zero123": "no tiny model of its own: a `UNetModel` with the image latent joined to the noise (8 channels "
                      "in, 4 out; its config needs a checkpoint), cached around the model call as the tested "
                      "`SD15_instructpix2pix`",
}


def sampled(config: type) -> bool:
    """Whether ComfyUI samples this config's model (it has a latent format: detection and
    segmentation models in supported_models have none)."""
    import comfy.supported_models_base as base

    return config.latent_format is not base.BASE.latent_format


def presets(adapter) -> str:
    """The family's published presets: how many of each, and the default."""
    kinds = [(label, found) for label, found in (("TeaCache", adapter.teacache_presets if adapter else ()),
                                                 ("MagCache", adapter.magnitude_presets if adapter else ())) if found]
    if not kinds:
        return "none: defaults until profiled"
    return ", ".join(f"{label} {len(found)} (default `{found[0].name}`)" for label, found in kinds)


def tiny_column(name: str, classes: dict[str, type | None], tested: dict[str, tuple[str, type | None]]) -> str:
    """What the table says of `name`'s tiny model: the level its own is tested at, why it has none,
    or the config whose tiny model is of the same diffusion-model class (`classes`: each config's)."""
    tested_level = tested.get(name, (None, None))[0]
    if tested_level:
        return f"yes ({tested_level})"
    if name in NO_TINY_MODEL:
        return NO_TINY_MODEL[name]
    same = sorted(other for other in tested if classes[name] is not None and classes.get(other) is classes[name])
    return f"as `{same[0]}` (same class)" if same else "no"


def rows(tested: dict[str, tuple[str, type | None]]) -> list[tuple[str, str, str, str, str]]:
    configs = config_classes()
    classes = {name: diffusion_class(config) or tested.get(name, (None, None))[1] for name, config in configs.items()}
    out = []
    for name, config in configs.items():
        model_class = classes[name]
        adapter = family_adapter(model_class) if model_class is not None else None
        if not sampled(config):
            level = "not sampled (no latent format)"
        elif adapter is not None:
            level = f"blocks ({adapter.display_name})"
        else:
            level = WHOLE if model_class is not None else "found from the checkpoint"
        found = f"`{model_class.__name__}`" if model_class is not None else "(read from a checkpoint)"
        out.append((f"`{name}`", found, level, tiny_column(name, classes, tested), presets(adapter)))
    return out


def table(tested: dict[str, tuple[str, type | None]]) -> str:
    import comfyui_version

    lines = [f"{BEGIN} made by scripts/works_with.py on ComfyUI {comfyui_version.__version__} -->",
             "| ComfyUI config | diffusion model | level | tiny model in the suite | published presets |",
             "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows(tested)]
    lines.append(END)
    return "\n".join(lines)


def readme_table(readme: str) -> str:
    found = re.search(re.escape(BEGIN) + r".*?" + re.escape(END), readme, re.S)
    return found.group(0) if found else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite the table in README.md")
    args = parser.parse_args()
    comfy_runtime.boot()
    comfy_runtime.load_pack()
    made = table(tiny_levels())
    if not args.write:
        print(made)
        return
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text()
    current = readme_table(readme)
    if not current:
        raise SystemExit("[dit-cache] README.md has no works-with markers")
    readme_path.write_text(readme.replace(current, made))
    print(f"[dit-cache] README.md: {len(made.splitlines()) - 4} rows")


if __name__ == "__main__":
    main()
