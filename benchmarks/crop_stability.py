"""How still the aligned crop holds the head while the eyes move: the face's shift in crop space across blinks
and glances.

Prep aligns each frame's crop on five tracked points (two eye centres, the nose tip, the mouth corners). If
those points move with the eyes, every blink and glance moves the whole crop, and everything the product
compares or borrows across frames in crop space (a donor frame's plate detail, a borrowed closed eye, the
what-ifs' event frames) is off by that much. This benchmark finds the shot's blinks and glances the way the
what-ifs do (``vq_models.evaluation.plate``), and for each event, and for calm pairs the same number of frames
apart as a control, measures the translation (ECC, sub-pixel) that best maps the event frame's aligned crop
onto the reference frame's over the face *outside* both frames' eyes and mouth (grown by 30 % of each part's
width): the head's own residual motion plus whatever the alignment added.

    .venv/bin/python benchmarks/crop_stability.py SHOT [--json PATH]

Needs only a prepped shot (``vqedit prep``: aligned crops, transforms and tracking), no training. Prints one
line per pair and ``crop_stability SHOT: blinks / glances / calm median |shift| in crop px``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vq_models.evaluation.plate import gaze_offsets, openness, part_boxes  # noqa: E402
from vq_models.events import BLINK_CLOSED, BLINK_GAP, BLINK_OPEN, find_events, gaze_events  # noqa: E402
from vq_models.io.colour import luma  # noqa: E402
from vq_models.shot import Shot  # noqa: E402

PARTS = ("left_eye", "right_eye", "lips_outer")
#: how far around each part its box reaches, as a share of the part's width
PART_GROW = 0.3


def face_shift(shot: Shot, ref: int, event: int) -> tuple[float, float]:
    """(dx, dy) crop pixels: the translation mapping ``event``'s crop onto ``ref``'s outside both frames' eyes
    and mouth, inside the face's middle (the background and hair do not count)."""
    s = shot.crop_size
    a = np.ascontiguousarray(luma(np.asarray(shot.aligned(ref), np.float32)))
    b = np.ascontiguousarray(luma(np.asarray(shot.aligned(event), np.float32)))
    keep = np.zeros((s, s), np.uint8)
    keep[int(0.2 * s):int(0.85 * s), int(0.15 * s):int(0.85 * s)] = 1
    view = SimpleNamespace(shot=shot)
    for f in (ref, event):
        for x0, y0, x1, y1 in part_boxes(view, f, PARTS, PART_GROW):
            keep[y0:y1, x0:x1] = 0
    warp = np.eye(2, 3, dtype=np.float32)
    _, warp = cv2.findTransformECC(a, b, warp, cv2.MOTION_TRANSLATION,
                                   (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5), keep, 5)
    return float(warp[0, 2]), float(warp[1, 2])


def pairs_of(shot: Shot) -> dict[str, list[tuple[int, int]]]:
    """The shot's blink and glance (reference, event) frame pairs, and as many calm pairs a blink's gap apart."""
    view = SimpleNamespace(shot=shot, frames=shot.frames)
    o = openness(view)
    eyes = np.nanmean(np.stack([o["left_eye"], o["right_eye"]]), axis=0)
    med = float(np.nanmedian(eyes))
    offsets = gaze_offsets(view)
    moves = np.nanmean(np.stack([offsets["left"][:, 0], offsets["right"][:, 0]]), axis=0)
    found = {"blinks": find_events(eyes, BLINK_CLOSED * med, BLINK_OPEN * med, BLINK_GAP),
             "glances": gaze_events(moves, eyes, BLINK_GAP)}
    busy = {i for pairs in found.values() for p in pairs for i in range(min(p) - BLINK_GAP, max(p) + BLINK_GAP + 1)}
    calm = [(i, i + BLINK_GAP) for i in range(0, len(eyes) - BLINK_GAP, 2 * BLINK_GAP)
            if not busy & set(range(i, i + BLINK_GAP + 1)) and abs(moves[i + BLINK_GAP] - moves[i]) < 0.03]
    n = max(1, max(len(v) for v in found.values()))
    found["calm"] = calm[:: max(1, len(calm) // n)][:n]
    frames = shot.frames
    return {k: [(frames[i], frames[j]) for i, j in v] for k, v in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shot", help="a prepped shot directory")
    parser.add_argument("--json", default=None, help="also write the figures as JSON")
    args = parser.parse_args()
    shot = Shot.open(args.shot)
    report: dict = {"shot": str(args.shot), "crop_size": shot.crop_size}
    for kind, pairs in pairs_of(shot).items():
        rows = []
        for ref, event in pairs:
            dx, dy = face_shift(shot, ref, event)
            rows.append({"ref": ref, "event": event, "dx": round(dx, 2), "dy": round(dy, 2)})
            print(f"{kind:8s} {ref} -> {event}: dx {dx:+.2f} dy {dy:+.2f} crop px")
        report[kind] = {"pairs": rows, "median_shift_px": round(statistics.median(
            [float(np.hypot(r["dx"], r["dy"])) for r in rows]), 2) if rows else None}
    print(f"crop_stability {args.shot}: " + " / ".join(
        f"{k} {report[k]['median_shift_px']}" for k in ("blinks", "glances", "calm")) + " median |shift| in crop px")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
