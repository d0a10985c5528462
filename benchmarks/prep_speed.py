"""Benchmark `vqedit prep` on a 1080p plate (target: >= 5 frames/s on 2 CPU cores).

Builds a 1920x1080 plate in a temporary folder from a real clip (lp_d13, the portrait phone clip,
scaled to 1080 lines and centred on a grey canvas) as a video (mp4v) and optionally as a 16-bit PNG
sequence, then times the whole prep (decode, track, smooth, crop, masks, overlay, PNG writes).

    .venv/bin/python benchmarks/prep_speed.py [--frames 60] [--size 256] [--threads 2] [--sequence]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build_plate(clip: Path, out: Path, frames: int, sequence: bool) -> str:
    import cv2
    import numpy as np

    from vq_models.io.images import write_image

    cap = cv2.VideoCapture(str(clip))
    video = out / "plate_1080p.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25, (1920, 1080))
    for i in range(frames):
        ok, bgr = cap.read()
        if not ok:
            break
        small = cv2.resize(bgr, (608, 1080), interpolation=cv2.INTER_AREA)
        canvas = np.full((1080, 1920, 3), 96, np.uint8)
        canvas[:, 656 : 656 + 608] = small
        writer.write(canvas)
        if sequence:
            write_image(out / "seq" / f"plate.{i + 1:04d}.png", canvas[..., ::-1].astype(np.float32) / 255, dtype="uint16")
    writer.release()
    return str(out / "seq" / "plate.%04d.png") if sequence else str(video)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sequence", action="store_true", help="time a 16-bit PNG sequence instead of mp4")
    parser.add_argument("--clip", default=str(REPO.parent / "shared" / "clips" / "lp_d13.mp4"))
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import cv2

    cv2.setNumThreads(args.threads)
    from vq_models.face.prep import PRESETS, PrepConfig, run_prep

    config: PrepConfig = PRESETS["cpu"].__class__(**{**PRESETS["cpu"].__dict__, "crop_size": args.size})
    with tempfile.TemporaryDirectory() as tmp:
        plate = build_plate(Path(args.clip), Path(tmp), args.frames, args.sequence)
        t0, c0 = time.perf_counter(), time.process_time()
        res = run_prep(plate, Path(tmp) / "shot", config=config, progress=False)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = len(res.shot.frames)
    kind = "16-bit PNG sequence" if args.sequence else "mp4"
    print(f"prep 1920x1080 {kind}: {n} frames in {dt:.2f} s = {n / dt:.1f} frames/s "
          f"(crop {args.size}, {args.threads} threads, eye jitter {res.eye_std_pct:.2f}%); "
          f"CPU {cpu / n * 1000:.0f} ms/frame, i.e. {n / cpu:.1f} frames/s even on one free core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
