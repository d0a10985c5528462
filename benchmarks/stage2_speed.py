"""Stage II speed / quality benchmark on a synthetic shot.

Builds a synthetic talking-head shot (vq_models.synth) with its ground-truth part labels standing in for
Stage I codes, trains the Stage II renderer with a preset, and prints seconds per iteration, the
projected time of the preset's full run, render time per frame and the held-out SSIM / PSNR in the face
region.  Why ground-truth labels: it isolates the renderer from Stage I, so a low SSIM here is the
renderer's fault.

    .venv/bin/python benchmarks/stage2_speed.py --preset cpu --iterations 30      # speed only
    .venv/bin/python benchmarks/stage2_speed.py --preset cpu --full               # the ≤20 min SSIM check
    .venv/bin/python benchmarks/stage2_speed.py --preset cpu --versus lambda_ssim=0  # what a knob costs a step

``--versus KEY=VALUE ...`` times the preset's step against the same step with those overrides, on one network,
alternating blocks of steps so that both see the same machine load: medians over the blocks and their ratio.
Only knobs a step reads (losses, augmentations, batch size) can be compared this way; architecture knobs
need two runs.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def build_synthetic_shot(root: Path, frames: int, crop: int, label_size: int, seed: int = 0) -> None:
    from vq_models.io.atomic import atomic_write_json
    from vq_models.io.images import write_label_map
    from vq_models.shot import FRAME_NAME, CropTransform, ShotWriter
    from vq_models.synth.draw import render
    from vq_models.synth.face_model import PART_ID, PARTS
    from vq_models.synth.performance import performance

    face_parts = [i for n, i in PART_ID.items() if n not in ("background", "hair")]
    roi_parts = [PART_ID[n] for n in ("eye_whites", "irises", "pupils", "upper_lip", "lower_lip",
                                      "mouth_interior", "upper_teeth", "lower_teeth", "tongue") if n in PART_ID]
    writer = ShotWriter(root, crop, plate={"frames": [1001, 1000 + frames]})
    ident = CropTransform.from_plate_to_crop(np.eye(2, 3))
    step = crop // label_size
    for i, state in enumerate(performance(frames, seed=seed)):
        f = render(state, crop)
        fg = np.isin(f.labels, face_parts).astype(np.float32)
        roi = np.isin(f.labels, roi_parts).astype(np.float32)
        writer.write_frame(1001 + i, f.rgb, f.rgb, fg, roi, ident)
        write_label_map(root / "stage1" / "labels" / FRAME_NAME.format(1001 + i), f.labels[step // 2 :: step, step // 2 :: step])
    atomic_write_json(root / "stage1" / "meta.json", {"num_codes": len(PARTS)})
    writer.finish()


def peak_memory_mib(device: str) -> float:
    """Peak GPU memory allocated by torch (cuda) or the process's peak resident set (cpu), MiB."""
    import resource

    import torch

    if device.startswith("cuda"):
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# knobs that shape the networks: a --versus pair must agree on them, because both configs step one network
ARCHITECTURE_FIELDS = ("render_size", "const_size", "ch_max", "ch_min", "spade_hidden", "spade_shared",
                       "spade_upsample_params", "spatial_bias_from", "label_embed", "spectral_norm", "temporal_window",
                       "d_channels", "d_layers", "num_d", "d_conditional", "d_spectral_norm", "perceptual")


def versus(args: argparse.Namespace) -> dict:
    """Seconds per step of the preset (with ``args.overrides``) and of the same with ``args.versus`` on top,
    in alternating blocks of ``args.iterations`` steps on one network; medians and their ratio."""
    import statistics

    import torch

    from vq_models.shot import Shot
    from vq_models.train.distributed import init_distributed
    from vq_models.train.stage2 import build_stage2_nets, load_stage2_config, load_stage2_data
    from vq_models.train.stage2_step import train_step

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    base = load_stage2_config(args.preset, overrides=list(args.overrides))
    other = load_stage2_config(args.preset, overrides=list(args.overrides) + list(args.versus))
    differ = [f for f in ARCHITECTURE_FIELDS if getattr(base, f) != getattr(other, f)]
    if differ:
        raise SystemExit(f"--versus changes the networks ({', '.join(differ)}): time those with two runs")
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="stage2_bench_"))
    build_synthetic_shot(root, args.frames, base.render_size, args.label_size)
    data = load_stage2_data(Shot.open(root), base)
    info = init_distributed(args.device)
    nets, _ = build_stage2_nets(base, data, info)
    step = 0
    for _ in range(3):  # warm-up: first steps allocate
        step += 1
        train_step(step, base, nets, data.train_set, info, info.device)
    times: dict[str, list[float]] = {"base": [], "versus": []}
    for _ in range(args.blocks):
        for name, config in (("base", base), ("versus", other)):
            t = time.perf_counter()
            for _ in range(args.iterations):
                step += 1
                train_step(step, config, nets, data.train_set, info, info.device)
            times[name].append((time.perf_counter() - t) / args.iterations)
    med = {name: statistics.median(v) for name, v in times.items()}
    return {"preset": args.preset, "overrides": list(args.overrides), "versus": list(args.versus),
            "threads": args.threads, "blocks": args.blocks, "steps_per_block": args.iterations,
            "seconds_per_step": {k: round(v, 4) for k, v in med.items()},
            "ratio_versus_to_base": round(med["versus"] / med["base"], 3),
            "load_average": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--iterations", type=int, default=30, help="iterations to time (ignored with --full)")
    ap.add_argument("--full", action="store_true", help="run the preset's full iteration count")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--label-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="keep the shot here (default: a temp dir)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--versus", nargs="+", default=None, metavar="KEY=VALUE",
                    help="time the step against the same step with these overrides (ratio in one run)")
    ap.add_argument("--blocks", type=int, default=5, help="with --versus: alternating blocks per config")
    ap.add_argument("overrides", nargs="*", help="KEY=VALUE config overrides")
    args = ap.parse_args()
    if args.versus:
        print(json.dumps(versus(args), indent=2))
        return

    import torch

    from vq_models.train.stage2 import STAGE2_PRESETS, load_stage2_config, train_stage2

    torch.set_num_threads(args.threads)
    full_iters = STAGE2_PRESETS[args.preset].iterations
    over = list(args.overrides) + [f"num_threads={args.threads}"]
    if not args.full:
        over += [f"iterations={args.iterations}", f"checkpoint_every={args.iterations}"]
    config = load_stage2_config(args.preset, overrides=over)
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="stage2_bench_"))
    t = time.monotonic()
    build_synthetic_shot(root, args.frames, config.render_size, args.label_size)
    print(f"synthetic shot: {args.frames} frames at {config.render_size}^2 in {time.monotonic() - t:.1f}s -> {root}")
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    out = train_stage2(root, config, device=args.device)
    meta = json.loads((out / "meta.json").read_text())
    spi = meta["timings"]["seconds_per_iter"]
    print(json.dumps({
        "preset": args.preset,
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu x{args.threads}",
        "peak_memory_mib": peak_memory_mib(args.device),
        "iterations": meta["steps"],
        "seconds_per_iter": round(spi, 4),
        "projected_full_run_minutes": round(spi * full_iters / 60, 1),
        "render_ms_per_frame": meta["timings"]["render_ms_per_frame"],
        "val_ssim": meta["val"]["ssim"],
        "val_psnr": meta["val"]["psnr"],
        "perceptual_backend": meta["perceptual_backend"],
        "preview": str(out / "val_preview.png"),
    }, indent=2))


if __name__ == "__main__":
    main()
