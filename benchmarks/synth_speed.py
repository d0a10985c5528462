"""How fast is `vqedit synth`? Writes a 120-frame 256x256 shot (plate + 4 what-ifs + labels + tracking)
to a temporary folder and prints the wall time and frames per second (the target: under 30 s on
2 CPU cores). Also times drawing alone, to separate it from file writing.

    .venv/bin/python benchmarks/synth_speed.py [--frames 120] [--size 256]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()

    import cv2

    from vq_models.synth import WHATIFS, performance, render, render_whatif
    from vq_models.synth.writer import write_synth_shot

    cv2.setNumThreads(2)
    states = performance(args.frames, seed=0)
    render(states[0], args.size)  # warm the per-identity texture cache
    t0 = time.perf_counter()
    for st in states:
        frame = render(st, args.size)
        for edit in WHATIFS.values():
            render_whatif(frame, edit(st))
    draw = time.perf_counter() - t0
    print(
        f"drawing only: {args.frames} frames + {len(WHATIFS)} what-ifs each in {draw:.1f} s "
        f"({args.frames / draw:.1f} frames/s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = write_synth_shot(tmp, args.frames, args.size, seed=0, progress=False)
    print(
        f"vqedit synth: {args.frames} frames at {args.size}x{args.size} in {result.seconds:.1f} s "
        f"({result.fps:.1f} frames/s, target < 30 s for 120 frames at 256x256)"
    )


if __name__ == "__main__":
    main()
