"""Contact sheet for a prepared shot: a person checks crops, masks, overlay and landmarks at a glance.

One row per sampled frame, four tiles per row: aligned crop with the tracked landmarks and contours
drawn on it, the overlaid input ĉ, the foreground mask tinted over the crop, and the ROI mask tinted.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vq_models.shot import Shot
from vq_models.tracking.schema import load_tracking


def _tint(rgb: np.ndarray, mask: np.ndarray, colour: tuple[float, float, float]) -> np.ndarray:
    a = 0.55 * mask[..., None]
    return rgb * (1 - a) + np.asarray(colour, np.float32) * a


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    img = (np.clip(tile, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)  # OpenCV draws text on 8-bit only
    scale = max(0.3, tile.shape[0] / 400)
    cv2.putText(img, text, (4, int(14 * scale / 0.4)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 50), 1, cv2.LINE_AA)
    return img.astype(np.float32) / 255.0


def write_contact_sheet(shot: Shot, path: str | Path, max_frames: int = 6) -> Path:
    """Write the contact sheet PNG (sRGB 8-bit) and return its path."""
    from vq_models.io.images import write_image

    frames = shot.frames
    pick = sorted({frames[int(round(i))] for i in np.linspace(0, len(frames) - 1, min(max_frames, len(frames)))})
    tracking = load_tracking(shot.tracking_path) if shot.tracking_path.is_file() else None
    rows = []
    for f in pick:
        aligned = shot.aligned(f)
        marked = np.ascontiguousarray(aligned.copy())
        if tracking is not None and f in tracking.frames:
            t = shot.transform(f)
            tr = tracking.frames[f]
            for poly in tr.contours.values():
                pts = np.round(t.to_crop(poly) * 16).astype(np.int32)
                cv2.polylines(marked, [pts], True, (0.2, 0.9, 1.0), 1, cv2.LINE_AA, shift=4)
            for x, y in t.to_crop(tr.landmarks5):
                cv2.circle(marked, (int(round(x * 16)), int(round(y * 16))), 3 * 16, (1.0, 0.2, 0.2), -1,
                           cv2.LINE_AA, shift=4)
        tiles = [
            _label(marked, f"{f} landmarks"),
            _label(shot.overlay(f), "overlay"),
            _label(_tint(aligned, shot.fg_mask(f), (0.1, 1.0, 0.1)), "fg mask"),
            _label(_tint(aligned, shot.roi_mask(f), (1.0, 0.1, 1.0)), "roi mask"),
        ]
        rows.append(np.hstack(tiles))
    sheet = np.clip(np.vstack(rows), 0.0, 1.0).astype(np.float32)
    out = Path(path)
    write_image(out, sheet, dtype="uint8")
    return out
