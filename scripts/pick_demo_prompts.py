"""Which prompts the uncached reference FLUX draws recognisably, sampled exactly as `make demo`
samples (scripts/demo.py: 28 steps, CFG 1, euler/simple, the column's noise seed) and read back
by reference/recognise.py. The reference is small and draws only some prompts well; this counts how
many (the README quotes the count) and suggests demo columns it does draw: every shape, no shape
colour or background twice, the clearest seed of each prompt.

    .venv/bin/python scripts/pick_demo_prompts.py [--seeds 10]   # ~15 min on one CPU core
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reference"))

import reference_data as rd  # noqa: E402
import reference_models as refs  # noqa: E402
from recognise import Reading, described, recognise  # noqa: E402

Drawn = tuple[rd.Prompt, int, Reading]


def image_prompts() -> list[rd.Prompt]:
    """Every image prompt of the world: a shape colour, a shape and another background colour."""
    return [rd.Prompt(colour, shape, background) for shape in rd.SHAPES for colour in rd.COLOURS
            for background in rd.COLOURS if background != colour]


def suggest_columns(drawn: list[Drawn], count: int = 4) -> list[Drawn]:
    """`count` drawn samples, clearest (best shape overlap) first: a shape not yet shown while one
    is drawn, no shape colour or background used twice, one seed per prompt."""
    chosen: list[Drawn] = []
    while len(chosen) < count:
        free = [d for d in sorted(drawn, key=lambda d: -d[2].iou)
                if all(d[0].colour != p.colour and d[0].background != p.background for p, _, _ in chosen)]
        unshown = [d for d in free if d[0].shape not in {p.shape for p, _, _ in chosen}]
        if not (unshown or free):
            break
        chosen.append((unshown or free)[0])
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="noise seeds 0..N-1 per prompt")
    args = parser.parse_args()
    import demo  # boots ComfyUI (which takes over sys.argv) and loads the pack

    flux = refs.load("flux")
    prompts, seeds = image_prompts(), range(args.seeds)
    start, drawn, right = time.perf_counter(), [], Counter()
    for prompt in prompts:
        marks = []
        for seed in seeds:
            reading = recognise(demo.sample(flux, flux.patcher, prompt, seed))
            right.update(part for part, ok in (("background", reading.background == prompt.background),
                                               ("colour", reading.colour == prompt.colour),
                                               ("shape", reading.shape == prompt.shape)) if ok)
            if reading.shows(prompt):
                drawn.append((prompt, seed, reading))
                marks.append(f"{seed}: drawn ({reading.iou:.2f})")
            else:
                marks.append(f"{seed}: {reading.caption()}")
        print(f"{described(prompt)}\n    " + "\n    ".join(marks), flush=True)

    samples = len(prompts) * len(seeds)
    any_seed = {d[0] for d in drawn}
    print(f"\n{len(prompts)} prompts x seeds {seeds.start}..{seeds.stop - 1}, sampled as make demo samples "
          f"({time.perf_counter() - start:.0f}s)")
    print(f"samples drawn recognisably (shape colour, shape and background read as prompted): {len(drawn)}/{samples}")
    print("  read right: " + ", ".join(f"{part} {right[part]}/{samples}" for part in ("background", "colour", "shape")))
    for shape in rd.SHAPES:
        print(f"  {shape}: {sum(d[0].shape == shape for d in drawn)}/{samples // len(rd.SHAPES)} samples")
    print(f"prompts drawn at seed 0: {sum(seed == 0 for _, seed, _ in drawn)}/{len(prompts)}; "
          f"at one seed of {len(seeds)} at least: {len(any_seed)}/{len(prompts)}")
    print("\nsuggested demo COLUMNS (scripts/demo.py):")
    for prompt, seed, reading in suggest_columns(drawn):
        print(f"    (rd.Prompt({prompt.colour!r}, {prompt.shape!r}, {prompt.background!r}), {seed}),"
              f"  # shape overlap {reading.iou:.2f}")
    current = {(p, s) for p, s, _ in drawn}
    missing = [f"{described(p)} (seed {s})" for p, s in demo.COLUMNS if (p, s) not in current and s in seeds]
    print("the demo's current columns: " + ("all drawn" if not missing else "NOT drawn: " + ", ".join(missing)))


if __name__ == "__main__":
    main()
