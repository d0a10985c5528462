"""A tiny drawn shot for the Stage I tests (crop space drawn directly, known plate placement)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vq_models.shot import CropTransform, Shot, ShotWriter

PLATE_W, PLATE_H = 90, 70
CROP = 40
OFFSET = (20.0, 12.0)  # crop pixel (0, 0) sits at plate pixel (20, 12); scale 1


def draw_frame(i: int, size: int = CROP) -> dict[str, np.ndarray]:
    """Face ellipse, two eyes, a mouth whose opening changes with ``i``."""
    import cv2

    img = np.full((size, size, 3), (0.35, 0.40, 0.45), np.float32)
    fg = np.zeros((size, size), np.float32)
    roi = np.zeros((size, size), np.float32)
    c = size // 2
    cv2.ellipse(img, (c, c), (int(size * 0.32), int(size * 0.42)), 0, 0, 360, (0.85, 0.65, 0.55), -1)
    cv2.ellipse(fg, (c, c), (int(size * 0.32), int(size * 0.42)), 0, 0, 360, 1.0, -1)
    for ex in (c - size // 7, c + size // 7):
        cv2.circle(img, (ex, c - size // 8), max(1, size // 16), (0.1, 0.1, 0.1), -1)
        cv2.circle(roi, (ex, c - size // 8), max(2, size // 10), 1.0, -1)
    mouth_h = 1 + (i % 3)
    cv2.ellipse(img, (c, c + size // 5), (size // 7, mouth_h), 0, 0, 360, (0.6, 0.1, 0.15), -1)
    cv2.ellipse(roi, (c, c + size // 5), (size // 6, mouth_h + 2), 0, 0, 360, 1.0, -1)
    overlay = img.copy()
    overlay[roi > 0] = overlay[roi > 0] * 0.8 + 0.2 * np.array([0.9, 0.3, 0.3], np.float32)
    return {"aligned": img, "overlay": overlay, "fg": fg, "roi": roi}


def make_shot(root: Path, frames=(1001, 1002, 1003, 1004), size: int = CROP) -> Shot:
    writer = ShotWriter(root, size, {"width": PLATE_W, "height": PLATE_H, "source": "drawn"}, name="drawn")
    m = np.array([[1.0, 0.0, -OFFSET[0]], [0.0, 1.0, -OFFSET[1]]])
    for k, f in enumerate(frames):
        d = draw_frame(k, size)
        writer.write_frame(f, d["aligned"], d["overlay"], d["fg"], d["roi"], CropTransform.from_plate_to_crop(m))
    return writer.finish()
