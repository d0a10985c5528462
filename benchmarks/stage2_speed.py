"""Stage II speed / quality benchmark on a synthetic shot.

Builds a synthetic talking-head shot (vq_models.synth) with its ground-truth part labels standing in for
Stage I codes, trains the Stage II renderer with a preset, and prints seconds per iteration, the
projected time of the preset's full run, render time per frame and the held-out SSIM / PSNR in the face
region.  Why ground-truth labels: it isolates the renderer from Stage I, so a low SSIM here is the
renderer's fault.

    .venv/bin/python benchmarks/stage2_speed.py --preset cpu --iterations 30      # speed only
    .venv/bin/python benchmarks/stage2_speed.py --preset cpu --full               # the ≤20 min SSIM check
"""

from __future__ import annotations

import argparse
import json
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
    ap.add_argument("overrides", nargs="*", help="KEY=VALUE config overrides")
    args = ap.parse_args()

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
