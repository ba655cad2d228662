"""How much one skipped step costs, prompt by prompt, on a reference model (CPU).

For each chosen step it samples the bench's prompts with only that step reused from the step
before (everything else computed) and prints the pixel error against the uncached output, pooled
and per prompt. It is the evidence behind the bench's per-prompt PSNR column: on the reference
models the same single skip costs some prompts a thousand times more than others (the image
"decides" something at that step for them), so a PSNR pooled over a few prompts is decided by
whichever schedule happens to skip such a step, and a comparison of two policies at equal computes
can flip sign with the prompt set.

    python bench/skip_sensitivity.py --family hunyuan_video --steps 7,8,9,12 --prompts 8
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import bench_paths  # noqa: E402,F401  (puts scripts/ and reference/ on the path)

import comfy_runtime  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="flux", choices=("flux", "wan", "hunyuan_video"))
    parser.add_argument("--steps", default="", help="comma-separated steps to skip one at a time (default: 3..19)")
    parser.add_argument("--prompts", type=int, default=8)
    args = parser.parse_args()
    comfy_runtime.boot()
    comfy_runtime.load_pack()

    import torch

    import reference_models as refs
    from image_metrics import psnr
    from quality import CFG, STEPS, bench_prompts, decoded, sample_prompt

    from comfyui_dit_cache.cache_core.attachment.attach import adapter_for, attach_engine
    from comfyui_dit_cache.cache_core.run.engine import CacheEngine
    from comfyui_dit_cache.cache_core.policies.base import CachePolicy, StepAction

    @dataclass(frozen=True)
    class SkipOneStep(CachePolicy):
        """Reuses the previous step's stack residual at `step`, computes every other step."""
        step: int = 0
        name = "SkipOneStep"

        def decide(self, ctx, memory) -> StepAction:
            return StepAction.REUSE if ctx.step == self.step else StepAction.COMPUTE

    model = refs.load(args.family)
    cases = bench_prompts(model, args.prompts)

    def sample(patcher) -> list[torch.Tensor]:
        return [decoded(sample_prompt(model, patcher, i, prompt)) for i, prompt in enumerate(cases)]

    reference = sample(model.patcher)
    adapter = adapter_for(model.patcher)
    blocks = adapter.blocks(model.patcher.model.diffusion_model)
    steps = [int(s) for s in args.steps.split(",")] if args.steps else list(range(3, STEPS))
    print(f"{args.family}: {args.prompts} prompts, {STEPS} euler steps, CFG {CFG}; pixel MSE per prompt")
    for step in steps:
        policy = SkipOneStep(step=step)
        patched = attach_engine(model.patcher, CacheEngine(policy.name, adapter, policy, blocks))
        pixels = sample(patched)
        per_prompt = [float(((a - b) ** 2).mean()) for a, b in zip(pixels, reference)]
        pooled = psnr(torch.cat(pixels), torch.cat(reference), 2.0)
        spread = max(per_prompt) / max(min(per_prompt), 1e-12)
        print(f"skip step {step:2d}: pooled PSNR {pooled:5.1f} dB, max/min MSE {spread:8.0f}x | "
              + " ".join(f"{v:.1e}" for v in per_prompt), flush=True)


if __name__ == "__main__":
    main()
