"""`make demo`: the bundled reference FLUX (trained, reference/reference_models.py) sampled through
DiT Cache at its default speed and each other caching node next to the uncached run, at CFG 1 with
the guidance embedding as FLUX-dev workflows sample. Calibrated Cache runs the plans a calibrating
Block Profiler found on a batch of three other prompts. Checks that the uncached reference draws
each column's caption (reference/recognise.py), prints each node's run report (block computes
counted on the real blocks), wall time and PSNR against the uncached image, and saves the images
side by side to demo_output.png."""
from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reference"))

import comfy_runtime  # noqa: E402
import node_runner  # noqa: E402

comfy_runtime.boot()
comfy_runtime.load_pack()

import comfy.sample  # noqa: E402
import folder_paths  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import reference_data as rd  # noqa: E402
from image_metrics import psnr  # noqa: E402
from workflow_format import input_specs  # noqa: E402
import reference_models as refs  # noqa: E402
from recognise import described, recognise  # noqa: E402
from comfyui_dit_cache.cache_core.attachment.attach import attached_engine  # noqa: E402
from comfyui_dit_cache.cache_core.policies import StepAction  # noqa: E402
from comfyui_dit_cache.cache_core.speeds.speed_choices import short_name  # noqa: E402
from comfyui_dit_cache.nodes import (ApplyFORA, BlockCache, BlockProfiler, CalibratedCache, LoadCacheProfile,  # noqa: E402
                                     DiTCacheSpeed, TaylorSeerForecast, TeaCacheThreshold)

STEPS = 28
CFG = 1.0
# (prompt, noise seed) per column, ones the uncached reference draws as captioned: it draws a
# recognisable shape at few prompts and seeds (scripts/pick_demo_prompts.py counts them, suggested these)
COLUMNS = [(rd.Prompt("green", "circle", "white"), 9), (rd.Prompt("black", "square", "yellow"), 8),
           (rd.Prompt("yellow", "triangle", "red"), 1), (rd.Prompt("white", "circle", "purple"), 6)]
PROMPTS = [prompt for prompt, _ in COLUMNS]
CALIBRATION_PROMPTS = [rd.Prompt("green", "square", "white"), rd.Prompt("purple", "triangle", "yellow"),
                       rd.Prompt("blue", "circle", "orange")]
WINDOW = dict(start_percent=0.0, end_percent=1.0, cache_device="model device")
OUTPUT = Path(__file__).resolve().parent.parent / "demo_output.png"


def node(cls, **inputs):
    """The node's output MODEL; inputs not given take the node's own defaults, as on a node just
    added in the editor (so a new input never breaks the demo)."""
    for spec in input_specs(cls):
        if spec.name not in inputs and not spec.optional and "default" in spec.options:
            inputs[spec.name] = spec.options["default"]
    return node_runner.run_node(cls, "demo", **inputs)[0]


def sample(model, patcher, prompt: rd.Prompt, seed: int) -> torch.Tensor:
    """One decoded image [3, 32, 32] in -1..1: the demo's sampling, one prompt at one noise seed."""
    noise = torch.randn(model.latent_shape(), generator=torch.Generator().manual_seed(seed))
    out = comfy.sample.sample(patcher, noise, STEPS, CFG, "euler", "simple", model.conditioning(prompt),
                              model.empty_conditioning(), torch.zeros(model.latent_shape()), seed=seed,
                              disable_pbar=True)
    return rd.decode(model.patcher.model.latent_format.process_in(out))[0].clamp(-1, 1)


def sample_prompts(model, patcher) -> torch.Tensor:
    return torch.stack([sample(model, patcher, prompt, seed) for prompt, seed in COLUMNS])


def check_captions(reference: torch.Tensor) -> None:
    """Each column's caption read back from the uncached image; stops the demo where the reference
    no longer draws one (a retrained model), so the picture never captions what is not there."""
    wrong = []
    for (prompt, seed), image in zip(COLUMNS, reference):
        reading = recognise(image)
        print(f"  column '{described(prompt)}' (seed {seed}): drawn as {reading.caption()}"
              + ("" if reading.shows(prompt) else "  <- NOT AS CAPTIONED"))
        if not reading.shows(prompt):
            wrong.append(f"'{described(prompt)}' (seed {seed})")
    if wrong:
        raise SystemExit(f"[dit-cache demo] the uncached reference FLUX no longer draws {', '.join(wrong)} "
                         "recognisably (reference/recognise.py); the picture would caption what is not there. "
                         "Run scripts/pick_demo_prompts.py and put prompts it draws in COLUMNS (scripts/demo.py)")


def calibrated(model) -> dict:
    """Calibrated Cache at 4x and 6x and Block Cache, from one calibrating Block Profiler run on a
    batch of the calibration prompts (the queue run a user makes once)."""
    profiler = node(BlockProfiler, model=model.patcher, profile_name="demo-calibrated", calibrate_speedups="4, 6")
    shape = model.latent_shape(len(CALIBRATION_PROMPTS))
    comfy.sample.sample(profiler, torch.randn(shape, generator=torch.Generator().manual_seed(99)), STEPS, CFG, "euler",
                        "simple", model.batch_conditioning(CALIBRATION_PROMPTS), model.empty_conditioning(),
                        torch.zeros(shape), seed=99, disable_pbar=True)
    profile = node(LoadCacheProfile, profile="demo-calibrated.json")
    return {**{f"Calibrated Cache ({speedup:g}x)": node(CalibratedCache, model=model.patcher, profile=profile,
                                                        speedup=speedup) for speedup in (4.0, 6.0)},
            "Block Cache (profiled, 0.15)": node(BlockCache, model=model.patcher, profile=profile, threshold=0.15,
                                                 **WINDOW)}


def timed(model, patcher) -> tuple[torch.Tensor, float]:
    """Images and the best wall time of two runs after a warm-up run."""
    sample_prompts(model, patcher)
    best, images = math.inf, None
    for _ in range(2):
        start = time.perf_counter()
        images = sample_prompts(model, patcher)
        best = min(best, time.perf_counter() - start)
    return images, best


def main() -> None:
    flux = refs.load("flux")
    folder_paths.set_output_directory(tempfile.mkdtemp(prefix="dit-cache-demo-"))
    reference, base_time = timed(flux, flux.patcher)
    print(f"reference FLUX ({flux.meta['parameters'] / 1e6:.1f} M parameters, trained {flux.meta['steps']} steps), "
          f"{STEPS} steps x {len(PROMPTS)} prompts, CFG {CFG}: uncached {base_time:.2f}s")
    check_captions(reference)
    speed = next(spec.options["default"] for spec in input_specs(DiTCacheSpeed) if spec.name == "speed")
    candidates = {
        f"DiT Cache ({short_name(speed)})": node(DiTCacheSpeed, model=flux.patcher, speed=speed),
        "Apply FORA (interval 3)": node(ApplyFORA, model=flux.patcher, interval=3, warmup_steps=1, **WINDOW),
        "TeaCache-style (0.4, flux preset)": node(TeaCacheThreshold, model=flux.patcher, rel_l1_thresh=0.4,
                                                  coefficients="flux", max_consecutive_reuse=3, **WINDOW),
        "TaylorSeer (interval 2, order 2)": node(TaylorSeerForecast, model=flux.patcher, interval=2,
                                                 warmup_steps=3, order=2, **WINDOW),
        "Block Profiler": node(BlockProfiler, model=flux.patcher, profile_name="demo"),
        **calibrated(flux),
    }
    rows, row_labels = [reference], ["uncached", "every block computed"]
    for label, patched in candidates.items():
        reports = []
        attached_engine(patched).report_listeners.append(reports.append)
        images, seconds = timed(flux, patched)
        report = reports[-1]
        rows.append(images)
        quality = psnr(images, reference, 2.0)
        row_labels += [label, f"computes {report.blocks_computed / report.block_evaluations:.2f}, "
                              + ("exact" if math.isinf(quality) else f"PSNR {quality:.1f} dB")]
        print(f"\n{label}\n  {report.summary_line()}")
        print(f"  blocks computed {report.blocks_computed}/{report.block_evaluations}, wall {seconds:.2f}s "
              f"({base_time / seconds:.2f}x), PSNR vs uncached {psnr(images, reference, 2.0):.1f} dB")
        print(f"  steps: {''.join(StepAction(a).letter for a in report.step_actions())}")
        if "profile_path" in report.extras:
            print(f"  profile: {report.extras['profile_path']} (suggested FORA interval "
                  f"{report.extras['profile']['suggested_fora_interval']})")
    labelled_grid(rows, row_labels).save(OUTPUT)
    print(f"\nrows: uncached, then each node in the order above, labelled -> {OUTPUT}")


def labelled_grid(rows: list[torch.Tensor], row_labels: list[str], zoom: int = 4) -> Image.Image:
    """The images in a grid, prompts across and runs down, with each run's name, block computes
    (over the uncached run's) and PSNR on its left and each prompt above its column."""
    from PIL import ImageDraw

    from comfyui_dit_cache.cache_core.profiles.heatmap import label_font as font

    grid = torch.cat([torch.cat(list(row), dim=2) for row in rows], dim=1)
    pixels = ((grid + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    images = Image.fromarray(pixels).resize((pixels.shape[1] * zoom, pixels.shape[0] * zoom), Image.NEAREST)
    left, top = 360, 60
    canvas = Image.new("RGB", (images.width + left, images.height + top), (24, 24, 24))
    canvas.paste(images, (left, top))
    draw, size = ImageDraw.Draw(canvas), images.height // len(rows)
    for i, prompt in enumerate(PROMPTS):
        x = left + (i + 0.5) * images.width / len(PROMPTS)
        draw.text((x, top / 2 - 11), f"{prompt.colour} {prompt.shape}", fill=(235, 235, 235), font=font(17), anchor="mm")
        draw.text((x, top / 2 + 11), f"on {prompt.background}", fill=(180, 180, 180), font=font(17), anchor="mm")
    for r in range(len(rows)):
        y = top + r * size + size / 2
        draw.text((left - 12, y - 14), row_labels[2 * r], fill=(235, 235, 235), font=font(20), anchor="rm")
        draw.text((left - 12, y + 14), row_labels[2 * r + 1], fill=(180, 180, 180), font=font(17), anchor="rm")
    return canvas


if __name__ == "__main__":
    main()
