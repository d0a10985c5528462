"""How smoothly a keyframed gaze moves the iris at plate resolution: the iris's displacement per gaze value.

A compositor animates ``gaze`` with keys (0 at one frame, 0.3 twenty frames later, ``smooth``). Label maps
are whole pixels, and a label pixel is several plate pixels (2.6 on a 512² plate with a 330-pixel face, 13 on a
4K plate with a 1,500-pixel face), so a gaze that only moved label pixels would hold still for several frames
and then jump. This benchmark renders one frame at a ramp of gaze values (``edit-only`` with plate detail,
composited over the plate, as the compositor sees it) and finds each iris in the composite by template matching
(the unedited iris, sub-pixel peak) against the plate. It reports, per value, the horizontal displacement
in plate pixels (both eyes' mean) and for the ramp:

- ``max_step_px`` / ``mean_step_px``: the largest and the mean move between consecutive values (a stepping
  gaze shows steps of a label pixel between runs of zeros);
- ``still_steps``: consecutive values whose iris moved less than a tenth of the mean step;
- ``fit_rms_px``: RMS distance from the straight line through the displacements (a smooth ramp is near 0).

    .venv/bin/python benchmarks/gaze_steps.py --shot RUN/shot [--frame F] [--max 0.3] [--steps 16]
        [--strip PATH] [--json PATH]

``--strip`` writes the left eye at each value side by side, one strip pixel per plate pixel (PNG).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import cv2
import numpy as np

from vq_models.io.colour import luma


def iris_boxes(model, frame: int) -> list[tuple[np.ndarray, tuple[int, int, int, int], int]]:
    """Per tracked eye: the iris centre (plate px), the eye's box grown by its height (x0, y0, x1, y1) and
    the template's half size (the iris's radius and a third)."""
    from vq_models.tracking.schema import load_tracking

    contours = load_tracking(model.shot.tracking_path).frames[frame].contours or {}
    out = []
    for side in ("left", "right"):
        eye, iris = contours.get(f"{side}_eye"), contours.get(f"{side}_iris")
        if eye is None or iris is None:
            continue
        e = np.asarray(eye, np.float64)[:, :2]
        i = np.asarray(iris, np.float64)[:, :2]
        c = i.mean(axis=0)
        radius = max(3, int(round(0.66 * np.ptp(i[:, 0]))))
        pad = float(np.ptp(e[:, 1])) + 4
        x0, y0 = e.min(axis=0) - pad
        x1, y1 = e.max(axis=0) + pad
        out.append((c, (int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))), radius))
    if not out:
        raise SystemExit(f"frame {frame}: the shot's tracking has no eye and iris contours")
    return out


def _peak(scores: np.ndarray) -> tuple[float, float]:
    """Sub-pixel position of the maximum (a parabola through the peak and its neighbours, per axis)."""
    y, x = np.unravel_index(int(np.argmax(scores)), scores.shape)

    def refine(a: float, b: float, c: float) -> float:
        d = a - 2 * b + c
        return 0.0 if d >= 0 else 0.5 * (a - c) / d

    dx = refine(scores[y, x - 1], scores[y, x], scores[y, x + 1]) if 0 < x < scores.shape[1] - 1 else 0.0
    dy = refine(scores[y - 1, x], scores[y, x], scores[y + 1, x]) if 0 < y < scores.shape[0] - 1 else 0.0
    return x + dx, y + dy


def displacement(plate: np.ndarray, comp: np.ndarray, centre: np.ndarray, box: tuple[int, int, int, int],
                 radius: int) -> float:
    """Horizontal shift (plate px) of the plate's iris patch around ``centre`` found in ``comp`` within ``box``."""
    cx, cy = int(round(centre[0])), int(round(centre[1]))
    template = luma(plate[cy - radius:cy + radius + 1, cx - radius:cx + radius + 1])
    x0, y0, x1, y1 = box
    scores = cv2.matchTemplate(luma(comp[y0:y1, x0:x1]), template, cv2.TM_CCOEFF_NORMED)
    px, _ = _peak(scores)
    return float(x0 + px + radius - cx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shot", type=Path, required=True, help="trained shot directory (plate source readable)")
    parser.add_argument("--frame", type=int, help="frame to render (default: the shot's middle frame)")
    parser.add_argument("--max", type=float, default=0.3, help="largest gaze value (fraction of the eye width)")
    parser.add_argument("--steps", type=int, default=16, help="values from 0 to --max (default 16)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--strip", type=Path, help="write the left eye at each value here (PNG)")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args()

    import torch

    from vq_models.evaluation.plate import render_on_plate
    from vq_models.runtime import ShotModel

    torch.set_num_threads(args.threads)
    model = ShotModel.load(args.shot)
    frame = args.frame if args.frame is not None else model.frames[len(model.frames) // 2]
    eyes = iris_boxes(model, frame)
    values = [args.max * i / (args.steps - 1) for i in range(args.steps)]
    shifts, crops = [], []
    for v in values:
        program = {"version": 1, "edits": [{"op": "gaze", "keys": [[frame, [v, 0.0]]]}]}
        out = render_on_plate(model, frame, program, mode="edit-only")
        shifts.append(statistics.mean(displacement(out.plate, out.comp, c, box, r) for c, box, r in eyes))
        x0, y0, x1, y1 = eyes[0][1]
        crops.append(np.clip(out.comp[y0:y1, x0:x1], 0.0, 1.0))
        print(f"gaze {v:.4f}: iris moved {shifts[-1]:+.2f} px", flush=True)
    steps = np.abs(np.diff(shifts))
    mean = float(np.mean(steps))
    slope = float(np.dot(values, shifts) / max(np.dot(values, values), 1e-12))
    report = {
        "shot": str(args.shot), "frame": frame, "values": values, "shift_px": [round(s, 3) for s in shifts],
        "max_step_px": round(float(steps.max()), 3), "mean_step_px": round(mean, 3),
        "still_steps": int(np.count_nonzero(steps < 0.1 * mean)),
        "fit_rms_px": round(float(np.sqrt(np.mean((np.asarray(shifts) - slope * np.asarray(values)) ** 2))), 3),
    }
    print(json.dumps({k: v for k, v in report.items() if k not in ("values", "shift_px")}))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.strip:
        from vq_models.io.images import write_image

        write_image(args.strip, np.concatenate(crops, axis=1), dtype="uint8")


if __name__ == "__main__":
    main()
