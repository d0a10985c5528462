"""How well could colour alone segment one small part? An oracle bound for the Stage I IoU bar.

Why: a part a few label pixels across (a pupil is ~4 px at 128² labels, with a specular glint over it) has
most of its pixels on its boundary, where the crop mixes it with its neighbours. This script cheats on
purpose to measure that limit: inside the *ground-truth* region (e.g. iris ∪ pupil) it labels as the part
every pixel darker (or brighter) than a threshold, picks the best threshold for the whole shot, and
reports that IoU. A clustering that sees only colour cannot beat it; Stage I's features can, through
context, but a bar near this number is a hard bar.

    .venv/bin/python benchmarks/colour_ceiling.py --shot /tmp/s1acc/shot --synth /tmp/s1acc/synth
    .venv/bin/python benchmarks/colour_ceiling.py --shot ... --synth ... --part upper_teeth \\
        --within upper_teeth,lower_teeth,mouth_interior,tongue --bright

Prints ``colour_ceiling PART in WITHIN at L²: IoU X (threshold T, N px/frame)`` per label size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def luminance_maps(shot_dir: Path, synth_dir: Path, size: int) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """(F, size, size) Rec.709 luma of the aligned crops (area-resized), ground-truth parts in crop space
    at ``size`` and the part names."""
    import cv2

    from vq_models.io.colour import luma as rec709_luma
    from vq_models.io.images import read_label_map
    from vq_models.segmentation_eval import load_parts
    from vq_models.shot import Shot
    from vq_models.stage1_model import plate_labels_to_crop

    shot = Shot.open(shot_dir)
    names = load_parts(synth_dir / "parts.json")
    luma, parts = [], []
    for f in shot.frames:
        rgb = shot.aligned(f)
        if rgb.shape[0] != size:
            rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA if rgb.shape[0] > size else cv2.INTER_LINEAR)
        luma.append(rec709_luma(np.asarray(rgb, np.float32)))
        gt = read_label_map(synth_dir / "labels" / f"frame.{f:04d}.png")
        parts.append(plate_labels_to_crop(gt, shot.transform(f).plate_to_crop, shot.crop_size, size))
    return np.stack(luma), np.stack(parts), names


def best_threshold_iou(luma: np.ndarray, region: np.ndarray, part: np.ndarray, bright: bool,
                       steps: int = 200) -> tuple[float, float]:
    """Max over thresholds of IoU(region & (luma <= t) [or >= t], part); returns (IoU, t)."""
    values = luma[region]
    if not values.size or not part.any():
        return 0.0, float("nan")
    best = (0.0, float("nan"))
    for t in np.unique(np.quantile(values, np.linspace(0.0, 1.0, steps))):
        pred = region & ((luma >= t) if bright else (luma <= t))
        union = int((pred | part).sum())
        iou = int((pred & part).sum()) / union if union else 0.0
        best = max(best, (iou, float(t)))
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shot", required=True, type=Path, help="prepped shot directory (aligned crops)")
    ap.add_argument("--synth", required=True, type=Path, help="the `vqedit synth` folder (labels/, parts.json)")
    ap.add_argument("--part", default="pupils")
    ap.add_argument("--within", default="irises,pupils", help="comma-separated ground-truth parts to search in")
    ap.add_argument("--bright", action="store_true", help="the part is the bright end (teeth), not the dark end")
    ap.add_argument("--sizes", default="128,256", help="label sizes to measure at")
    args = ap.parse_args()

    from vq_models.errors import InputError

    for size in (int(s) for s in args.sizes.split(",")):
        luma, parts, names = luminance_maps(args.shot, args.synth, size)
        ids = {v: k for k, v in names.items()}
        missing = [n for n in [args.part, *args.within.split(",")] if n not in ids]
        if missing:
            raise InputError(f"unknown part(s) {', '.join(missing)} (known: {', '.join(sorted(ids))})")
        region = np.isin(parts, [ids[n] for n in args.within.split(",")])
        part = parts == ids[args.part]
        iou, t = best_threshold_iou(luma, region, part, args.bright)
        print(f"colour_ceiling {args.part} in {args.within} at {size}²: IoU {iou:.3f} (threshold {t:.3f}, "
              f"{part.sum() / len(parts):.1f} px/frame)")
    return 0


if __name__ == "__main__":
    from vq_models.errors import VQEditError

    try:
        raise SystemExit(main())
    except VQEditError as exc:
        print(f"colour_ceiling: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
