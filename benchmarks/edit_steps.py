"""How evenly a slowly keyframed edit changes the composite at plate resolution: a squint, a slow jaw.

``eye_open`` and ``mouth_open`` move a lid or a lower lip by a share of each label column, and label maps hold
whole rows (a row is 2.6 plate pixels on a 512² plate with a 330-pixel face, 13 at 4K with a 1,500-pixel face).
An edit that moved only label rows would hold still for several values and then jump. This benchmark renders
one frame at a ramp of values (``edit-only`` with plate detail, composited over the plate, as the compositor
sees it) and measures, between consecutive values, the RMS change of the composite over every pixel any
value changed. For an even ramp the steps are alike; it reports, over the ramp:

- ``max_over_mean``: the largest step over the mean step (a jump shows as a large ratio);
- ``still_steps``: steps under a tenth of the mean (values where nothing moved);
- ``cv``: the steps' standard deviation over their mean.

    .venv/bin/python benchmarks/edit_steps.py --shot RUN/shot --op eye_open [--frame F] [--start 1] [--stop 0.6]
        [--steps 16] [--pull] [--strip PATH] [--json PATH]

``--strip`` writes the changed region at each value, four to a row, one strip pixel per plate pixel (PNG).
``benchmarks/gaze_steps.py`` does the same for ``gaze`` by tracking the iris itself.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

#: scalar ops whose value moves an edge per label column (the others change labels wholesale)
OPS = ("eye_open", "mouth_open")


def changed_pixels(comps: list[np.ndarray], plate: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels any composite changed."""
    return np.any([np.abs(comp - plate).max(axis=2) > 0 for comp in comps], axis=0)


def step_report(comps: list[np.ndarray], plate: np.ndarray) -> dict:
    """The per-step RMS change over the pixels any composite changed, and the ramp's evenness."""
    changed = changed_pixels(comps, plate)
    if not changed.any():
        raise SystemExit("no value changed the composite: nothing to measure")
    steps = np.array([np.sqrt(np.mean((b[changed] - a[changed]) ** 2)) for a, b in zip(comps[:-1], comps[1:], strict=True)])
    mean = float(steps.mean())
    return {
        "changed_px": int(changed.sum()),
        "steps_over_mean": [round(float(s) / mean, 3) for s in steps],
        "max_over_mean": round(float(steps.max()) / mean, 3),
        "still_steps": int(np.count_nonzero(steps < 0.1 * mean)),
        "cv": round(float(steps.std()) / mean, 3),
    }


def strip(comps: list[np.ndarray], plate: np.ndarray, per_row: int = 4, pad: int = 6) -> np.ndarray:
    """The changed region (grown by ``pad``) of each composite, ``per_row`` to a row."""
    ys, xs = np.nonzero(changed_pixels(comps, plate))
    y0, x0 = max(0, ys.min() - pad), max(0, xs.min() - pad)
    y1, x1 = ys.max() + pad + 1, xs.max() + pad + 1
    tiles = [np.clip(c[y0:y1, x0:x1], 0.0, 1.0) for c in comps]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % per_row)
    return np.concatenate([np.concatenate(tiles[i:i + per_row], axis=1) for i in range(0, len(tiles), per_row)], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shot", type=Path, required=True, help="trained shot directory (plate source readable)")
    parser.add_argument("--op", choices=OPS, default="eye_open")
    parser.add_argument("--frame", type=int, help="frame to render (default: the shot's middle frame)")
    parser.add_argument("--start", type=float, default=1.0, help="first value (default 1: as shot)")
    parser.add_argument("--stop", type=float, default=0.6, help="last value (default 0.6)")
    parser.add_argument("--steps", type=int, default=16, help="values from --start to --stop (default 16)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--strip", type=Path, help="write the changed region at each value here (PNG)")
    parser.add_argument("--pull", action="store_true", help="ask for the frame's own lid or lip, moved (pull: true)")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args()
    if args.steps < 3:
        parser.error("--steps must be at least 3")

    import torch

    from vq_models.evaluation.plate import render_on_plate
    from vq_models.runtime import ShotModel

    torch.set_num_threads(args.threads)
    model = ShotModel.load(args.shot)
    frame = args.frame if args.frame is not None else model.frames[len(model.frames) // 2]
    values = [args.start + (args.stop - args.start) * i / (args.steps - 1) for i in range(args.steps)]
    comps = []
    for value in values:
        program = {"version": 1, "edits": [{"op": args.op, "keys": [[frame, value]], "pull": args.pull}]}
        out = render_on_plate(model, frame, program, mode="edit-only")
        comps.append(np.asarray(out.comp, np.float32))
        plate = np.asarray(out.plate, np.float32)
        print(f"{args.op} {value:.4f}: {int(np.count_nonzero(out.alpha > 0))} px under the alpha", flush=True)
    report = {"shot": str(args.shot), "op": args.op, "frame": frame, "values": [round(v, 4) for v in values],
              **step_report(comps, plate)}
    print(json.dumps({k: v for k, v in report.items() if k not in ("values", "steps_over_mean")}))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.strip:
        from vq_models.io.images import write_image

        write_image(args.strip, strip(comps, plate), dtype="uint8")


if __name__ == "__main__":
    main()
