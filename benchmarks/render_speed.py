"""Render-side speed: label-map extraction frames/s and Stage II render frames/s per output size.

Three numbers an artist or a pipeline TD asks about:

1. **labels** — Stage I label-map extraction for a new frame (encoder → generator → quantizer,
   ``ShotModel.labels_from_image``) on a trained shot, frames/s.
2. **frame** — a whole ``ShotModel.render_frame`` (edit program, Stage II, paste-back into the plate) on
   that shot, frames/s at its render size.
3. **stage2 R** — the Stage II SPADE generator's forward pass alone at output sizes R (the ``cpu`` preset's
   architecture with its ``render_size`` set to R; speed does not depend on the weights, so these are
   freshly built, untrained generators), frames/s.

Without ``--shot`` it first trains the quick demo's tiny shot (``vqedit demo --quick``'s pipeline, about
15 s) in a temporary folder. Threads are set with ``--threads`` (default 2, the development machine).

    .venv/bin/python benchmarks/render_speed.py [--shot OUT/models/demo] [--sizes 64,128,256] [--frames 8]

Prints one line per measurement, then a final line
``render_speed labels X.X fr/s; frame Y.Y fr/s; stage2 64:A 128:B ... fr/s``.

``--device cuda`` runs the shot and the sweep on the GPU (timings synchronise the device);
``--arch paper`` times the paper preset's generator widths instead of the ``cpu`` preset's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _rate(fn, n: int, device: str = "cpu") -> float:
    """Frames per second of ``fn(i)`` over ``n`` calls after two warm-up calls (GPU: synchronised)."""
    fn(0)
    fn(0)
    _sync(device)
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    _sync(device)
    return n / max(time.perf_counter() - t0, 1e-9)


def _tiny_shot(root: Path) -> Path:
    from vq_models.demo.pipeline import resolve_config, run_demo

    run_demo(root, resolve_config(True), progress=False, preset_name="tiny")
    return root / "models" / "demo"


def shot_rates(shot_dir: Path, frames: int, device: str = "cpu") -> tuple[float, float, int]:
    """(label extraction fr/s, full render_frame fr/s, render size) on a trained shot."""
    from vq_models.runtime import ShotModel

    model = ShotModel.load(shot_dir, device)
    fl = model.frames
    crops = [model.shot.aligned(fl[i % len(fl)]) for i in range(min(frames, len(fl)))]
    # each crop labelled as its own frame (that frame's ROI, which a Stage I with the region tap reads)
    labels_fps = _rate(lambda i: model.labels_from_image(crops[i % len(crops)], fl[i % len(crops)]), frames, device)
    frame_fps = _rate(lambda i: model.render_frame(fl[i % len(fl)], None, mode="identity"), frames, device)
    return labels_fps, frame_fps, model.render_size


def stage2_rate(render_size: int, num_codes: int, label_size: int, frames: int, device: str = "cpu",
                arch: str = "cpu") -> float:
    """Forward passes per second of the ``arch`` preset's SPADE generator at ``render_size`` (batch 1)."""
    import dataclasses

    import torch

    from vq_models.stage2_model import build_generator
    from vq_models.train.stage2_config import STAGE2_PRESETS

    cfg = dataclasses.replace(STAGE2_PRESETS[arch], render_size=render_size)
    g = build_generator(cfg, num_codes).eval().to(device)
    seg = torch.zeros(1, 3 * num_codes, label_size, label_size)
    codes = torch.from_numpy(np.random.default_rng(0).integers(0, num_codes, (3, label_size, label_size)))
    for t in range(3):
        seg[0, t * num_codes:(t + 1) * num_codes] = torch.nn.functional.one_hot(codes[t], num_codes).permute(2, 0, 1)
    seg = seg.to(device)
    with torch.no_grad():
        return _rate(lambda i: g(seg), frames, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shot", type=Path, help="trained shot directory (default: train the quick demo's)")
    parser.add_argument("--sizes", default="64,128,256", help="Stage II output sizes to time (default 64,128,256)")
    parser.add_argument("--frames", type=int, default=8, help="timed frames per measurement (default 8)")
    parser.add_argument("--codes", type=int, default=32, help="codes K for the Stage II size sweep (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--arch", default="cpu", choices=("cpu", "paper"), help="Stage II widths of the size sweep")
    parser.add_argument("--label-size", type=int, default=64, help="label map size fed to the size sweep")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        shot = args.shot or _tiny_shot(Path(tmp) / "demo")
        labels_fps, frame_fps, rsize = shot_rates(shot, args.frames, args.device)
    print(f"labels  (Stage I extraction, {shot.name}): {labels_fps:8.1f} frames/s")
    print(f"frame   (render_frame + paste-back at {rsize}px): {frame_fps:8.1f} frames/s")
    rates = {}
    for r in sizes:
        rates[r] = stage2_rate(r, args.codes, args.label_size, args.frames, args.device, args.arch)
        print(f"stage2  {r:5d}px forward ({args.arch}-preset architecture, {args.device}): {rates[r]:8.2f} frames/s "
              f"({1000 / rates[r]:.1f} ms)")
    sweep = " ".join(f"{r}:{v:.1f}" for r, v in rates.items())
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu x{args.threads}"
    print(f"render_speed [{where}] labels {labels_fps:.1f} fr/s; frame {frame_fps:.1f} fr/s; stage2 {sweep} fr/s")


if __name__ == "__main__":
    main()
