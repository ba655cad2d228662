"""Full-size speed benchmark: FLUX.1-dev, Wan2.1-T2V-1.3B, HunyuanVideo, ..., MiniMax H3 at their
real sizes (random weights, bf16), each written as a diffusion-model checkpoint in a temporary
folder and loaded as a user's download is, through ComfyUI's own loader (`UNETLoader`'s
`comfy.sd.load_diffusion_model`: detection, dtype, and ModelPatcherDynamic where dynamic VRAM is
on; bench/checkpoint_file.py), then sampled through `comfy.sample.sample` with every method at a
fixed schedule. Prints, per method: wall time, achieved speedup, ideal speedup
(block evaluations / blocks computed), their ratio, and the cache's extra peak GPU memory.

Two `floor` rows replace every block by a hook that returns its input: what a step costs when
only the work outside the blocks is left (embeddings, final layer, sampler, ComfyUI's calls). From
it, *ceiling* is the speedup a cache with no cost of its own would reach on the method's schedule
(the blocks' share of the uncached time divided by the ideal, plus the floor), and
achieved/ceiling is what the cache's own work leaves of it. The floor rows and the row
"uncached, conditioning handed over on the GPU" get the prompt already on the GPU, as the pack's
cached runs have it (cache_core/attachment/conditioning.py); that row shows what the move alone is worth.
The row "FORA interval 3, the model call as one block" caches the same schedule around the model
call (the whole-model cache's call level, cache_core/attachment/call_level.py, forced onto a family that has
its block adapter): what skipping the whole call costs or gains against skipping the blocks.

Run on a GPU through the device tool (see bench/README.md); `--scale tiny` runs the same code on tiny
configs on CPU to check it.
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import bench_paths  # noqa: E402,F401  (puts scripts/ and reference/ on the path)

import checkpoint_file  # noqa: E402
import comfy_runtime  # noqa: E402
import node_runner  # noqa: E402


@dataclass
class Case:
    name: str
    config: str
    unet: dict
    latent: tuple[int, ...]
    steps: int
    cfg: float
    context: tuple[int, int, int]
    extra: dict
    checkpoint: str      # the tiny test checkpoint of the same format, for what this ComfyUI's classes add ("": none)
    tiny: dict = field(default_factory=dict)   # unet settings of the CPU dry run (--scale tiny), beyond the usual
    audio: tuple[int, ...] | None = None       # a second latent sampled with the first (LTX-2's audio)
    # a tiny dry run's sizes, which the loader's detection is told (its checkpoint cannot tell
    # them all: checkpoint_file.detection_with); a full-size case is detected as it is
    sizes_told: bool = False


FULL = [
    Case("FLUX.1-dev 1024x1024", "Flux",
         dict(image_model="flux", guidance_embed=True, in_channels=16, out_channels=16, vec_in_dim=768,
              context_in_dim=4096, hidden_size=3072, mlp_ratio=4.0, num_heads=24, depth=19, depth_single_blocks=38,
              axes_dim=[16, 56, 56], theta=10000, patch_size=2, qkv_bias=True),
         (1, 16, 128, 128), 28, 1.0, (1, 512, 4096), {"pooled": 768, "guidance": 3.5}, "flux"),
    Case("Wan2.1-T2V-1.3B 832x480x33f", "WAN21_T2V",
         dict(image_model="wan2.1", model_type="t2v", dim=1536, ffn_dim=8960, num_heads=12, num_layers=30,
              text_dim=4096, in_dim=16, out_dim=16, text_len=512, freq_dim=256, eps=1e-6, patch_size=(1, 2, 2)),
         (1, 16, 9, 60, 104), 30, 5.0, (1, 512, 4096), {}, "wan_t2v"),
    Case("HunyuanVideo 848x480x17f", "HunyuanVideo",
         dict(image_model="hunyuan_video", in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096,
              hidden_size=3072, mlp_ratio=4.0, num_heads=24, depth=20, depth_single_blocks=40, axes_dim=[16, 56, 56],
              theta=256, patch_size=[1, 2, 2], qkv_bias=True, guidance_embed=True, byt5=False, meanflow=False,
              use_cond_type_embedding=False, vision_in_dim=None),
         (1, 16, 5, 60, 106), 30, 1.0, (1, 256, 4096), {"pooled": 768, "guidance": 6.0}, "hunyuan_video"),
    Case("Qwen-Image 1024x1024", "QwenImage",
         dict(image_model="qwen_image", patch_size=2, in_channels=64, out_channels=16, num_layers=60,
              attention_head_dim=128, num_attention_heads=24, joint_attention_dim=3584, axes_dims_rope=(16, 56, 56)),
         (1, 16, 1, 128, 128), 20, 4.0, (1, 256, 3584), {}, "qwen_image",
         tiny=dict(attention_head_dim=32, num_attention_heads=4, joint_attention_dim=64, axes_dims_rope=(8, 12, 12))),
    Case("FLUX.2-dev 1024x1024", "Flux2",
         dict(image_model="flux2", in_channels=128, out_channels=128, vec_in_dim=None, context_in_dim=15360,
              hidden_size=6144, mlp_ratio=3.0, num_heads=48, depth=8, depth_single_blocks=48, axes_dim=[32, 32, 32, 32],
              theta=2000, patch_size=1, qkv_bias=False, guidance_embed=True, global_modulation=True, mlp_silu_act=True,
              ops_bias=False, default_ref_method="index"),
         (1, 128, 64, 64), 28, 1.0, (1, 512, 15360), {"pooled": 768, "guidance": 4.0}, "flux2_c128",
         tiny=dict(axes_dim=[8, 8, 8, 8])),
    Case("Wan2.2-T2V-A14B (one expert) 832x480x17f", "WAN21_T2V",
         dict(image_model="wan2.1", model_type="t2v", dim=5120, ffn_dim=13824, num_heads=40, num_layers=40,
              text_dim=4096, in_dim=16, out_dim=16, text_len=512, freq_dim=256, eps=1e-6, patch_size=(1, 2, 2)),
         (1, 16, 5, 60, 104), 20, 4.0, (1, 512, 4096), {}, "wan_t2v"),
    Case("HunyuanVideo 1.5 848x480x33f", "HunyuanVideo15",
         dict(image_model="hunyuan_video", in_channels=65, out_channels=32, vec_in_dim=None, context_in_dim=3584,
              hidden_size=2048, mlp_ratio=4.0, num_heads=16, depth=54, depth_single_blocks=0, axes_dim=[16, 56, 56],
              theta=256, patch_size=[1, 1, 1], qkv_bias=True, guidance_embed=False, byt5=False, meanflow=False,
              use_cond_type_embedding=True, vision_in_dim=1152),
         (1, 32, 9, 30, 53), 20, 6.0, (1, 256, 3584), {"pooled": 768}, "hunyuan_video_15_c32",
         tiny=dict(in_channels=65, out_channels=32)),
    # LTX-2 19B (ComfyUI 0.26 on; its class's defaults are the released sizes): 768x512, 97 frames
    # (VAE 32x spatial, 8x temporal) with about 4 s of audio (25 latent frames a second)
    Case("LTX-2 19B 768x512x97f with audio", "LTXAV", dict(image_model="ltxav"),
         (1, 128, 13, 16, 24), 20, 4.0, (1, 256, 3840), {}, "",
         tiny=dict(num_layers=2, attention_head_dim=16, num_attention_heads=4, audio_attention_head_dim=8,
                   audio_num_attention_heads=4, cross_attention_dim=64, audio_cross_attention_dim=32,
                   caption_channels=64, connector_attention_head_dim=16, connector_num_attention_heads=4,
                   connector_num_layers=1),
         audio=(1, 8, 100, 16)),
    # MiniMax H3 (ComfyUI 0.33 on; its class's defaults are the released sizes: 33.1 B parameters,
    # a 61.7 GiB checkpoint in bf16, the patch projections in fp32): a 480x832 clip of 22 frames at 24 fps (VAE 16x spatial, patch 2:
    # 15x26 tokens a frame, 7 latent frames) with its 0.9 s of stereo audio (40 latent frames a
    # second), sampled as ComfyUI's nested [video, audio] latent; Qwen3-VL-32B text (5120 wide).
    # At CFG ComfyUI calls it once per condition (it runs one latent at a time).
    Case("MiniMax H3 832x480x22f with audio", "MiniMaxH3", dict(image_model="minimax_h3"),
         (1, 24, 7, 30, 52), 20, 5.0, (1, 256, 5120), {}, "",
         tiny=dict(hidden_size=128, num_layers=3, token_refiner_num_layers=1, num_attention_heads=1,
                   attention_head_dim=128, ffn_hidden_size=256, text_dim=64, timestep_input_dim=32,
                   time_embed_hidden_size=64, time_embed_dim=64),
         audio=(1, 32, 2, 37)),
]


def tiny_cases() -> list[Case]:
    cases = []
    for case in FULL:
        unet = dict(case.unet)
        for key, value in dict(hidden_size=128, num_heads=4, depth=1, depth_single_blocks=2, dim=128, ffn_dim=256,
                               num_layers=3, axes_dim=[8, 12, 12], context_in_dim=64, text_dim=64, vec_in_dim=64).items():
            if unet.get(key) is not None:
                unet[key] = value
        unet.update(case.tiny)
        latent = case.latent[:2] + tuple(min(d, 8) for d in case.latent[2:])
        extra = {k: (64 if k == "pooled" else v) for k, v in case.extra.items()}
        audio = None if case.audio is None else case.audio[:2] + (min(case.audio[2], 5),) + case.audio[3:]
        cases.append(Case(case.name + " (tiny)", case.config, unet, latent, 6, case.cfg, (1, 8, 64), extra,
                          case.checkpoint, audio=audio, sizes_told=True))
    return cases


UNCACHED_CONDS_ON_GPU = "uncached, conditioning handed over on the GPU"
CALL_LEVEL_ROW = "FORA interval 3, the model call as one block (call level)"
CHECKPOINT_SHAPES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "checkpoint_shapes.json"


# The calibrated rows' plans: the shapes calibration chose on the reference models (PlanShape fields).
CALIBRATED_SHAPES = {4.0: dict(last_computed=True, stand_in="2"), 6.0: dict(last_computed=True, stand_in="V")}


# method label -> node class name and inputs (fixed schedules; TeaCache at an unreachable-by-
# threshold setting with max_consecutive_reuse=2, which makes its pattern C R R C ...)
def methods():
    from comfyui_dit_cache.nodes import (ApplyFORA, BlockCache, CalibratedCache, MagnitudeThreshold,
                                         TaylorSeerForecast, TeaCacheThreshold)
    common = dict(start_percent=0.0, end_percent=1.0, cache_device="model device")

    def taylorseer(guard: float = 0.0) -> tuple:
        return TaylorSeerForecast, dict(interval=4, warmup_steps=3, order=2, guard_tolerance=guard, **common)

    return {
        "FORA interval 3": (ApplyFORA, dict(interval=3, warmup_steps=1, **common)),
        "FORA interval 3, cache on CPU": (ApplyFORA, dict(interval=3, warmup_steps=1, **{**common, "cache_device": "cpu"})),
        # the same schedule around the model call (the whole-model cache's call level, forced)
        CALL_LEVEL_ROW: (ApplyFORA, dict(interval=3, warmup_steps=1, **common)),
        "TeaCache-style, reuse 2 of 3": (TeaCacheThreshold, dict(rel_l1_thresh=10.0, coefficients="auto",
                                                                  max_consecutive_reuse=2, **common)),
        # the policy reads only its curve, so the schedule is fixed whatever the (random) weights
        "Magnitude-Ratio, family preset, 0.24 / max_skip 3": (
            MagnitudeThreshold, dict(threshold=0.24, max_skip=3, retention_ratio=0.2, curve="auto", **common)),
        "TaylorSeer interval 4, order 2": taylorseer(),
        # tolerance 10 accepts every forecast: the row shows what the guard's probe costs
        "TaylorSeer interval 4, guard probing": taylorseer(guard=10.0),
        # plans of the shapes calibration finds on the reference models (calibration_for builds them)
        "Calibrated 4x: last step computed, Taylor order 2": (
            CalibratedCache, dict(speedup=4.0, cache_device="model device")),
        "Calibrated 6x: last step computed, model output reused": (
            CalibratedCache, dict(speedup=6.0, cache_device="model device")),
        # the 4x plan's shape with the papers' solvers on its skipped steps: FoCa, HyCa's solver per
        # hidden channel (every solver on a quarter of the channels), ERTACache's residual gains
        "Calibrated 4x: last step computed, FoCa": (
            CalibratedCache, dict(speedup=SOLVER_PLAN_SPEEDUPS["P"], cache_device="model device")),
        "Calibrated 4x: last step computed, HyCa per-channel solvers": (
            CalibratedCache, dict(speedup=SOLVER_PLAN_SPEEDUPS["H"], cache_device="model device")),
        "Calibrated 4x: last step computed, Taylor order 2, residual gains": (
            CalibratedCache, dict(speedup=SOLVER_PLAN_SPEEDUPS["gains"], cache_device="model device")),
        # a per-block plan: the 4x plan's shape with the first and last two blocks computed on its
        # skipped steps, fewer steps computed in full at the same block computes
        "Calibrated 4x per-block: 2 first and 2 last blocks on every step": (
            CalibratedCache, dict(speedup=PER_BLOCK_PLAN_SPEEDUP, cache_device="model device")),
        # a per-block schedule (calibration_for gives the profile and the threshold of 3x)
        "Block Cache, per-block schedule, 3x block computes": (
            BlockCache, dict(max_skip=BLOCK_CACHE_MAX_SKIP, **common)),
    }


PER_BLOCK_PLAN_SPEEDUP = 4.5   # the profile's key for that plan (a plan is picked within 0.25x)
SOLVER_PLAN_SPEEDUPS = {"P": 5.0, "H": 5.5, "gains": 6.5}   # the keys of the 4x plans with the papers' solvers
BLOCK_CACHE_MAX_SKIP = 5
BLOCK_CACHE_SPEEDUP = 3.0


def block_cache_profile(adapter, blocks: list, steps: int) -> dict:
    """A profile whose blocks change at five different steady rates (0.03 to 0.15 per step), so
    that each block runs its own rhythm, as on a profiled model: the per-block schedule's costs,
    whatever the random weights do."""
    rows = [[None] * len(blocks)] + [[0.03 * (1 + b % 5) for b in range(len(blocks))] for _ in range(steps - 1)]
    return {"name": "bench", "family": adapter.family, "steps": steps,
            "blocks": [f"{kind}.{index}" for kind, index in (spec.key for spec in blocks)], "block_rel_l1": rows}


def calibration_for(patcher, node, steps: int) -> dict:
    """A family with no published TeaCache polynomial or magnitude curve gets a chosen one as a
    profile (the rows run fixed schedules: TeaCache's never reaches its threshold, the magnitude
    curve is flat), so that every family runs the same rows; Calibrated Cache gets a profile with
    the plans of `CALIBRATED_SHAPES` at the case's step count (timing needs no search)."""
    from comfyui_dit_cache.cache_core.attachment.attach import adapter_for
    from comfyui_dit_cache.cache_core.calibration.plan_search import PlanShape, computes_for, computes_with_kept
    from comfyui_dit_cache.nodes import BlockCache, CalibratedCache, MagnitudeThreshold, TeaCacheThreshold

    adapter = adapter_for(patcher)
    if node is BlockCache:
        from block_schedule import threshold_for

        profile = block_cache_profile(adapter, adapter.blocks(patcher.model.diffusion_model), steps)
        changes = tuple(tuple(float("nan") if v is None else v for v in row) for row in profile["block_rel_l1"])
        return {"profile": profile, "threshold": threshold_for(changes, steps, BLOCK_CACHE_SPEEDUP,
                                                               BLOCK_CACHE_MAX_SKIP)}
    if node is CalibratedCache:
        plans = [{"speedup": speedup, "computes": computes_for(steps, speedup), "psnr_worst": 0.0,
                  "plan": PlanShape(**shape).plan(steps, computes_for(steps, speedup))}
                 for speedup, shape in CALIBRATED_SHAPES.items()]
        blocks = len(adapter.blocks(patcher.model.diffusion_model))
        kept = sorted({0, 1, blocks - 2, blocks - 1})   # on a tiny dry run: every block
        fewer = max(1, computes_with_kept(steps, computes_for(steps, 4.0), blocks, len(kept)))   # tiny dry run: 1
        plans.append({"speedup": PER_BLOCK_PLAN_SPEEDUP, "computes": fewer, "psnr_worst": 0.0, "kept_blocks": kept,
                      "plan": PlanShape(**CALIBRATED_SHAPES[4.0]).plan(steps, fewer)})
        four = plans[0]
        for key, speedup in SOLVER_PLAN_SPEEDUPS.items():
            plan = four["plan"].replace("2", key) if key in "PH" else four["plan"]
            gains = [1.0 if letter == "C" else 0.95 for letter in plan] if key == "gains" else None
            plans.append({**four, "speedup": speedup, "plan": plan, **({"residual_gains": gains} if gains else {})})
        width = hidden_width(patcher.model.diffusion_model)
        calibration = {"plans": plans, "channel_solvers": {"solvers": "".join("R12P"[c % 4] for c in range(width))}}
        return {"profile": {"name": "bench", "family": adapter.family, "steps": steps,
                            "blocks": [f"{kind}.{index}" for kind, index in
                                       (spec.key for spec in adapter.blocks(patcher.model.diffusion_model))],
                            "calibration": calibration}}
    if node is TeaCacheThreshold and not adapter.teacache_presets:
        return {"profile": {"name": "bench", "family": adapter.family, "teacache_coefficients": [1.0, 0.0]}}
    if node is MagnitudeThreshold and not adapter.magnitude_presets:
        return {"profile": {"name": "bench", "family": adapter.family, "residual_magnitude_ratio": [1.0] * 28}}
    return {}


def hidden_width(diffusion_model) -> int:
    """The hidden states' width (the channels HyCa assigns solvers to), from the model's own size
    attribute; 1 where it names none (the HyCa row then runs its majority solver)."""
    for name in ("hidden_size", "dim", "inner_dim", "hidden_dim", "model_channels"):
        value = getattr(diffusion_model, name, None)
        if isinstance(value, int):
            return value
    return 1


def unet_config(case: Case) -> dict:
    """The case's configuration on this ComfyUI: what detection finds in the tiny test checkpoint
    of the same format (constructor arguments a newer ComfyUI adds, such as FLUX's `txt_ids_dims`),
    then the case's own sizes on top."""
    import torch
    import comfy.model_detection
    import model_from_weights

    if not case.checkpoint:   # a class newer than the tiny checkpoints (read from its own defaults)
        return dict(case.unet)
    shapes = model_from_weights.read_shapes(CHECKPOINT_SHAPES)[case.checkpoint]
    meta = {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}
    return {**(comfy.model_detection.detect_unet_config(meta, "") or {}), **case.unet}


def build(case: Case, device, dtype, folders: list[str]):
    """The case's model as a user's is made: a diffusion-model checkpoint of random weights (its
    class's own tensors, in `dtype`) written to a temporary file in the first of `folders` with
    room, then loaded by ComfyUI's `UNETLoader` path (`comfy.sd.load_diffusion_model`, default
    options), which detects the configuration back, chooses the dtype and makes the patcher
    ComfyUI makes (ModelPatcherDynamic where dynamic VRAM is on). Where no folder has room (a
    65 GB model on a 64 GiB disk), the same tensors go to the loader's in-memory entry,
    `comfy.sd.load_diffusion_model_state_dict`, which the file loader calls after reading the file.
    The patcher and its file (None: in memory), to delete once the case is done."""
    import comfy.supported_models

    sizes = unet_config(case)
    config = getattr(comfy.supported_models, case.config)(sizes)
    config.set_inference_dtype(dtype, None)
    geometry = checkpoint_file.checkpoint_geometry(config)
    with checkpoint_file.detection_with(sizes if case.sizes_told else {}):
        patcher, path, where, written = load_random_checkpoint(case, config, geometry, device, folders)
    loaded = {k: tuple(v.shape) for k, v in patcher.model.diffusion_model.state_dict().items()}
    if type(patcher.model.model_config) is not type(config) or loaded != {k: g[0] for k, g in geometry.items()}:
        raise SystemExit(f"[dit-cache] {case.name}: the loader built {type(patcher.model.model_config).__name__} "
                         f"with other tensors than the checkpoint's")
    print(f"[dit-cache] {case.name}: {sum(math.prod(g[0]) for g in geometry.values()) / 1e6:,.1f} M parameters, "
          f"checkpoint of {checkpoint_file.checkpoint_bytes(geometry) / 2**30:.1f} GiB {where} in {written:.0f} s, "
          f"loaded as {type(patcher).__name__} ({patcher.model.get_dtype()})", flush=True)
    return patcher, path


def load_random_checkpoint(case: Case, config, geometry: dict, device, folders: list[str]):
    """The checkpoint written and loaded (or held in memory and loaded): the patcher, the file
    (None: in memory), where it went and the seconds its weights took to make."""
    import comfy.sd

    problems = checkpoint_file.detection_mismatches(geometry, config)
    if problems:
        raise SystemExit(f"[dit-cache] {case.name}: ComfyUI's detection does not read the checkpoint back as "
                         f"written: {'; '.join(problems)}")
    size = checkpoint_file.checkpoint_bytes(geometry)
    folder = checkpoint_file.checkpoint_directory(size, folders)
    start = time.perf_counter()
    path = None
    if folder is None:
        where = f"held in memory (no folder of {folders} has room)"
        weights = dict(checkpoint_file.random_tensors(geometry, device))
        written = time.perf_counter() - start
        patcher = comfy.sd.load_diffusion_model_state_dict(weights)
        del weights
        if patcher is None:
            raise SystemExit(f"[dit-cache] {case.name}: ComfyUI's loader found no model in the state dict")
    else:
        handle, name = tempfile.mkstemp(prefix="dit-cache-bench-", suffix=".safetensors", dir=folder)
        os.close(handle)
        path = Path(name)
        where = f"written to {folder}"
        try:
            checkpoint_file.write_random_checkpoint(path, geometry, device)
            written = time.perf_counter() - start
            patcher = comfy.sd.load_diffusion_model(str(path))
        except BaseException:
            path.unlink()
            raise
    return patcher, path, where, written


def enable_dynamic_vram() -> bool:
    """Dynamic VRAM as ComfyUI's main.py turns it on for a CUDA GPU (comfy-aimdo, ComfyUI 0.26
    on), in its order: the allocator before any ComfyUI model module is imported (they bind to
    it at import), the devices after. Whether it is on."""
    import comfy_aimdo.control
    from comfy.cli_args import args

    headroom = None if args.reserve_vram is None else int(args.reserve_vram * 1024 ** 3)
    # main.py's protocols, newest first: NVML memory pressure (comfy-aimdo 0.4.13, ComfyUI 0.33),
    # the headroom (0.4.10), neither (0.4.9)
    for settings in (dict(simple_vram_headroom=headroom, nvml_pressure=not getattr(args, "disable_nvml_pressure", False)),
                     dict(simple_vram_headroom=headroom), {}):
        try:
            comfy_aimdo.control.init(**settings)
            break
        except TypeError:
            continue
    comfy_runtime.load_pack()
    import comfy.cli_args
    import comfy.memory_management
    import comfy.model_management
    import comfy.model_patcher

    devices = comfy.model_management.get_all_torch_devices()
    try:
        ready = comfy_aimdo.control.init_devices((d.index, int(comfy.cli_args.args.vram_headroom * 1024 ** 3))
                                                 for d in devices)
    except TypeError:
        ready = comfy_aimdo.control.init_devices(d.index for d in devices)
    if ready:
        comfy.model_patcher.CoreModelPatcher = comfy.model_patcher.ModelPatcherDynamic
        comfy.memory_management.aimdo_enabled = True
    return bool(ready)


def conditioning(case: Case):
    import torch
    g = torch.Generator().manual_seed(1)

    def one():
        extra = {}
        if "pooled" in case.extra:
            extra["pooled_output"] = torch.randn(1, case.extra["pooled"], generator=g)
        if "guidance" in case.extra:
            extra["guidance"] = case.extra["guidance"]
        return [[torch.randn(*case.context, generator=g), extra]]
    return one(), one()


def conditioning_on(device, *conds) -> tuple:
    """The same conditioning lists with their tensors on `device`."""
    import torch
    return tuple([[c.to(device), {k: v.to(device) if torch.is_tensor(v) else v for k, v in extra.items()}]
                  for c, extra in cond] for cond in conds)


def split_over_gpus(patcher, gpus: int):
    """The model through ComfyUI's MultiGPU CFG Split node (0.26 on), as a workflow puts it after
    the loader: one device clone per extra GPU, rebuilt from the checkpoint through the record
    ComfyUI's loader sets (`cached_patcher_init`), each step's conditionings run at once, one
    thread per GPU. Every row of the case, the uncached ones too, then runs split."""
    from comfy_extras.nodes_multigpu import MultiGPUCFGSplitNode

    split = node_runner.run_node(MultiGPUCFGSplitNode, "bench", model=patcher, max_gpus=gpus)[0]
    clones = len(split.get_additional_models_with_key("multigpu"))
    if clones != gpus - 1:
        raise SystemExit(f"[dit-cache] asked for {gpus} GPUs, ComfyUI made {clones} device clones")
    return split


def at_call_level(patcher, inputs: dict):
    """Apply FORA with `inputs` on `patcher` as on a model with no family adapter whose forward
    runs no DIFFUSION_MODEL wrapper (PixArt's, ERNIE-Image's): an engine with the whole-model
    adapter, without the wrapper it would run inside the forward, so the run's first call settles
    the call level and the model call (APPLY_MODEL) is the one block."""
    import comfy.patcher_extension
    from comfyui_dit_cache.cache_core.adapters.whole_model import WholeModelAdapter
    from comfyui_dit_cache.cache_core.attachment.attach import WRAPPER_KEY, attach_engine
    from comfyui_dit_cache.cache_core.run.engine import CacheEngine
    from comfyui_dit_cache.cache_core.policies import ReuseSchedule

    adapter = WholeModelAdapter(type(patcher.model.diffusion_model))
    policy = ReuseSchedule(interval=inputs["interval"], warmup_steps=inputs["warmup_steps"])
    engine = CacheEngine("FORA", adapter, policy, adapter.blocks(patcher.model.diffusion_model))
    patched = attach_engine(patcher, engine)
    patched.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY)
    return patched


def run_case(case: Case, device, dtype, repeats: int, only: tuple[str, ...] = (), gpus: int = 1,
             consecutive: bool = False, folders: tuple[str, ...] = ("temp",)) -> list[dict]:
    patcher, checkpoint = build(case, device, dtype, list(folders))
    try:
        return sample_case(case, patcher, device, repeats, only, gpus, consecutive)
    finally:
        import comfy.model_management

        del patcher
        comfy.model_management.unload_all_models()   # the next case's model gets the GPU (and the file's mapping goes)
        gc.collect()
        comfy.model_management.soft_empty_cache()
        if checkpoint is not None:
            checkpoint.unlink()


def sample_case(case: Case, patcher, device, repeats: int, only: tuple[str, ...], gpus: int,
                consecutive: bool) -> list[dict]:
    import torch
    import comfy.sample
    from comfyui_dit_cache.cache_core.adapters.whole_model import CALL_LEVEL
    from comfyui_dit_cache.cache_core.attachment.attach import attached_engine
    from comfyui_dit_cache.cache_core.policies import StepAction

    if gpus > 1:
        patcher = split_over_gpus(patcher, gpus)
    positive, negative = conditioning(case)
    noise = torch.randn(case.latent, generator=torch.Generator().manual_seed(0))
    latent = torch.zeros(case.latent)
    if case.audio is not None:   # sampled together as ComfyUI's nested latent (LTXVConcatAVLatent's form)
        import comfy.nested_tensor
        noise = comfy.nested_tensor.NestedTensor((noise, torch.randn(case.audio, generator=torch.Generator().manual_seed(1))))
        latent = comfy.nested_tensor.NestedTensor((latent, torch.zeros(case.audio)))
    cuda = device.type == "cuda"

    # the same conditioning, already on the GPU: what the pack's move of the conditioning (cache_core/
    # attachment/conditioning.py) alone is worth to an uncached run
    on_gpu = conditioning_on(device, positive, negative)

    def sample(model, conds=(positive, negative)) -> tuple[float, int]:
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        out = comfy.sample.sample(model, noise, case.steps, case.cfg, "euler", "simple", *conds, latent,
                                  seed=0, disable_pbar=True)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        for part in (out.unbind() if getattr(out, "is_nested", False) else (out,)):
            assert torch.isfinite(part).all(), "non-finite output"
        return seconds, torch.cuda.max_memory_allocated() if cuda else 0

    # Every model is timed once per round, round after round, so that a drift of the GPU's clock
    # spreads over all rows instead of falling on some; each row keeps its best round.
    entries: list[tuple[str, object, list]] = [("uncached", patcher, []),
                                               (UNCACHED_CONDS_ON_GPU, patcher, [])]
    entries += [(label, skip_every_block(patcher, synchronize), [])
                for label, synchronize in (("floor: every block an identity hook", False),
                                           ("floor, plus a GPU sync per call", True))]
    for label, (node, inputs) in methods().items():
        if only and not label.startswith(only):
            continue
        if label == CALL_LEVEL_ROW and case.audio is not None:
            print(f"[dit-cache] {case.name}: no call-level row (its latent is two, video and audio: the call level "
                  f"caches one latent tensor)", flush=True)
            continue
        inputs = {**inputs, **calibration_for(patcher, node, case.steps)}
        if label == CALL_LEVEL_ROW:
            patched = at_call_level(patcher, inputs)
        else:
            patched = node_runner.run_node(node, "bench", model=patcher, **inputs)[0]
        reports: list = []
        attached_engine(patched).report_listeners.append(reports.append)
        entries.append((label, patched, reports))
    def conds_for(label: str) -> tuple:
        # the floor stands for a cache with no cost of its own, so it gets the conditioning where
        # the pack's cached runs have it
        return on_gpu if label == UNCACHED_CONDS_ON_GPU or label.startswith("floor") else (positive, negative)

    for label, model, _ in entries:
        sample(model, conds_for(label))  # warm-up (loading, kernels)
    timings: dict[str, list[tuple[float, int]]] = {label: [] for label, _, _ in entries}
    # round after round over every row (a clock drift spreads over all rows), or each row's rounds
    # back to back (as a user queueing the same workflow again runs the same model)
    runs = ([(i, entry) for entry in entries for i in range(repeats)] if consecutive
            else [(i, entry) for i in range(repeats) for entry in entries])
    for round_index, (label, model, _) in runs:
        if round_index and "cache on CPU" in label:
            continue  # a memory option an order of magnitude slower: one timed run
        timings[label].append(sample(model, conds_for(label)))

    def best(label: str) -> tuple[float, int]:
        return min(t for t, _ in timings[label]), max(p for _, p in timings[label])

    base_seconds, base_peak = best("uncached")
    floor_seconds, _ = best("floor: every block an identity hook")
    block_seconds = base_seconds - floor_seconds   # what the blocks cost in the uncached run
    rows = []
    for label, model, reports in entries:
        seconds, peak = best(label)
        if not reports:
            rows.append(dict(case=case.name, method=label, seconds=seconds, achieved=base_seconds / seconds,
                             ideal=None, ratio=None, ceiling=None, extra_mib=0.0, cache_mib=0.0,
                             steps=("C" if label.startswith("uncached") else "-") * case.steps))
            continue
        report = reports[-1]
        if (label == CALL_LEVEL_ROW) != (report.level == CALL_LEVEL):
            raise SystemExit(f"[dit-cache] {case.name}, {label}: the run cached at the {report.level} level")
        ideal = report.estimated_speedup
        ceiling = base_seconds / (floor_seconds + block_seconds / ideal)
        rows.append(dict(case=case.name, method=label, seconds=seconds, achieved=base_seconds / seconds, ideal=ideal,
                         ratio=base_seconds / seconds / ideal, ceiling=ceiling,
                         extra_mib=max(peak - base_peak, 0) / 2**20, cache_mib=report.cache_peak_bytes / 2**20,
                         steps="".join(StepAction(a).letter for a in report.step_actions())))
    return rows


def skip_every_block(patcher, synchronize: bool):
    """The floor of any block cache: a clone whose every block is replaced by a hook that returns
    its input, so a step costs only what lies outside the blocks (embeddings, final layer, the
    sampler, ComfyUI's calls). With `synchronize` the first hook also waits for the GPU, as
    reading a GPU value once per call does."""
    from comfyui_dit_cache.cache_core.attachment.attach import adapter_for

    clone = patcher.clone()
    for position, spec in enumerate(adapter_for(patcher).blocks(patcher.model.diffusion_model)):
        def identity(args: dict, extra: dict, outputs=spec.outputs, first=position == 0) -> dict:
            if first and synchronize:
                img = args["img"][0] if isinstance(args["img"], tuple) else args["img"]   # LTX-2: (video, audio)
                float(img.flatten()[0])   # a read of a GPU value: waits for the queue
            return {k: args[k] for k in outputs}
        clone.set_model_patch_replace(identity, "dit", spec.key[0], spec.key[1])
    return clone


def table(rows: list[dict], device_name: str) -> str:
    lines = [f"Device: {device_name}", "",
             "| model | method | time (s) | ms per step | achieved | ideal | achieved/ideal | ceiling | "
             "achieved/ceiling | cache held (MiB) | extra peak GPU (MiB) | schedule |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]

    def fmt(value, pattern: str) -> str:
        return "-" if value is None else pattern.format(value)

    for r in rows:
        per_step = 1000 * r["seconds"] / len(r["steps"])
        of_ceiling = None if r["ceiling"] is None else r["achieved"] / r["ceiling"]
        lines.append(f"| {r['case']} | {r['method']} | {r['seconds']:.2f} | {per_step:.1f} | {r['achieved']:.2f}x | "
                     f"{fmt(r['ideal'], '{:.2f}x')} | {fmt(r['ratio'], '{:.2f}')} | {fmt(r['ceiling'], '{:.2f}x')} | "
                     f"{fmt(of_ceiling, '{:.2f}')} | {r['cache_mib']:.0f} | {r['extra_mib']:.0f} | `{r['steps']}` |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=["full", "tiny"], default="full")
    parser.add_argument("--models", default="all", help="comma-separated indexes into the case list, or 'all'")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--methods", default="", help="comma-separated beginnings of method names (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="write the table (markdown) here")
    parser.add_argument("--gpus", type=int, default=1,
                        help="ComfyUI 0.26 on: split each step's conditionings over this many GPUs with ComfyUI's "
                             "MultiGPU CFG Split node (needs CFG above 1: see --cfg)")
    parser.add_argument("--cfg", type=float, default=None, help="every case at this CFG instead of its own")
    parser.add_argument("--consecutive", action="store_true",
                        help="time each row's rounds back to back instead of round after round over all rows")
    parser.add_argument("--dynamic-vram", action="store_true",
                        help="ComfyUI 0.26 on: turn dynamic VRAM (comfy-aimdo) on as main.py does, instead of "
                             "--highvram with the plain ModelPatcher")
    parser.add_argument("--weights-dir", default="temp,/dev/shm",
                        help="comma-separated folders for each case's random-weight checkpoint, the first with room "
                             "taken ('temp': the system's temporary folder); none with room: held in memory")
    args = parser.parse_args()

    boot_args = ("--cpu",) if args.scale == "tiny" else ("--enable-dynamic-vram",) if args.dynamic_vram else ("--highvram",)
    comfy_runtime.boot(boot_args)
    dynamic = enable_dynamic_vram() if args.dynamic_vram else False
    comfy_runtime.load_pack()
    import torch

    import comfyui_version
    print(f"[dit-cache] ComfyUI {comfyui_version.__version__}, dynamic VRAM {'on' if dynamic else 'off'}", flush=True)

    import comfy.model_management

    # the device as ComfyUI names it (cuda:0): dynamic VRAM keys its state by the device index
    device = torch.device("cpu") if args.scale == "tiny" else comfy.model_management.get_torch_device()
    dtype = torch.float32 if args.scale == "tiny" else torch.bfloat16
    cases = tiny_cases() if args.scale == "tiny" else FULL
    if args.models != "all":
        cases = [cases[int(i)] for i in args.models.split(",")]
    if args.cfg is not None:
        cases = [replace(case, cfg=args.cfg) for case in cases]
    device_name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    rows = []
    import comfy.supported_models

    for case in cases:
        if not hasattr(comfy.supported_models, case.config):
            print(f"[dit-cache] {case.name}: ComfyUI {comfyui_version.__version__} has no {case.config}", flush=True)
            continue
        case_rows = run_case(case, device, dtype, args.repeats, tuple(m for m in args.methods.split(",") if m),
                             args.gpus, args.consecutive, tuple(args.weights_dir.split(",")))
        print(table(case_rows, device_name), flush=True)
        rows += case_rows
        if args.out:  # after each model, so a run cut short still leaves what it measured
            methods_arg = (f" --models {args.models}" if args.models != "all" else "") + (
                f" --methods '{args.methods}'" if args.methods else "")
            methods_arg += (f" --gpus {args.gpus}" if args.gpus > 1 else "") + (f" --cfg {args.cfg}" if args.cfg else "")
            methods_arg += (" --consecutive" if args.consecutive else "") + (" --dynamic-vram" if args.dynamic_vram else "")
            args.out.write_text(f"# Full-size speed benchmark\n\n`bench/gpu_speed.py --repeats {args.repeats}{methods_arg}`, "
                                f"ComfyUI {comfyui_version.__version__}, dynamic VRAM {'on' if dynamic else 'off'}, "
                                f"torch {torch.__version__}: every row warmed up, then {args.repeats} rounds of one run per row "
                                f"(the CPU-cache row: one), each row's best\n\n"
                                f"{table(rows, device_name)}\n")


if __name__ == "__main__":
    main()
