"""Contact-sheet building blocks: equal-shaped zoom boxes, rows of cells, a labelled sheet as an 8-bit PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from vq_models.io.images import write_image


def zoom_box(box: tuple[int, int, int, int], size: tuple[int, int], aspect: float = 2.0) -> tuple[int, int, int, int]:
    """Grow a (x0, y0, x1, y1) box to ``aspect`` width/height around its centre, inside a (w, h) image, so
    every contact-sheet cell has the same shape."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    h = max(y1 - y0, (x1 - x0) / aspect)
    w = h * aspect
    w, h = min(w, size[0]), min(h, size[1])
    nx0 = int(round(min(max(cx - w / 2, 0), size[0] - w)))
    ny0 = int(round(min(max(cy - h / 2, 0), size[1] - h)))
    return nx0, ny0, nx0 + int(round(w)), ny0 + int(round(h))


def sheet_row(cells: Sequence[np.ndarray], height: int = 96) -> np.ndarray:
    """sRGB float cells → one uint8 row, each cell resized to ``height`` (nearest, so pixels stay honest)."""
    out = []
    for c in cells:
        c = np.clip(np.asarray(c, np.float32)[..., :3], 0.0, 1.0)
        w = max(1, int(round(c.shape[1] * height / c.shape[0])))
        out.append((cv2.resize(c, (w, height), interpolation=cv2.INTER_NEAREST) * 255.0 + 0.5).astype(np.uint8))
        out.append(np.full((height, 2, 3), 255, np.uint8))
    return np.concatenate(out[:-1], axis=1)


def write_sheet(path: str | Path, rows: Sequence[tuple[str, np.ndarray]], columns: Sequence[str]) -> np.ndarray:
    """Stack labelled rows (all the same width) under a header of column titles; write an 8-bit PNG."""
    width = max(r.shape[1] for _, r in rows)
    blocks = []
    header = np.zeros((20, width + 120, 3), np.uint8)
    cell = width / max(len(columns), 1)
    for i, name in enumerate(columns):
        cv2.putText(header, name, (120 + int(i * cell) + 4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1,
                    cv2.LINE_AA)
    blocks.append(header)
    for label, row in rows:
        pad = np.zeros((row.shape[0], width + 120, 3), np.uint8)
        pad[:, 120:120 + row.shape[1]] = row
        for j, line in enumerate(label.split("\n")):
            cv2.putText(pad, line, (4, 16 + 15 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
        blocks.append(pad)
        blocks.append(np.zeros((3, width + 120, 3), np.uint8))
    sheet = np.concatenate(blocks, axis=0)
    write_image(path, sheet.astype(np.float32) / 255.0, dtype="uint8")
    return sheet
