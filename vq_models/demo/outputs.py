"""What a person looks at after the demo: a before/after movie and a contact sheet PNG.

Both are display sRGB 8-bit. The movie shows plate | edited composite side by side for every frame
(MP4 through OpenCV, or a GIF when no encoder is present); the contact sheet shows a few frames as rows of
plate | composite | edit alpha | |difference| ×4, with column titles, so the edit and its locality can be
judged at a glance.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from vq_models.io.colour import to_network

COLUMNS = ("plate", "edited", "alpha", "|diff| x4")


def _srgb8(linear: np.ndarray) -> np.ndarray:
    rgb = np.clip(to_network(np.asarray(linear, np.float32)[..., :3], "lin_rec709"), 0.0, 1.0)
    return (rgb * 255.0 + 0.5).astype(np.uint8)


def _upscale(img: np.ndarray, min_height: int) -> np.ndarray:
    """Nearest-neighbour upscale by an integer factor so small demo frames are still visible."""
    k = max(1, int(np.ceil(min_height / img.shape[0])))
    return np.repeat(np.repeat(img, k, axis=0), k, axis=1) if k > 1 else img


def _title(img: np.ndarray, text: str) -> np.ndarray:
    out = np.ascontiguousarray(img.copy())
    scale = max(0.35, img.shape[0] / 400.0)
    cv2.putText(out, text, (4, int(14 * scale / 0.35 * 0.9)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 0), 1,
                cv2.LINE_AA)
    return out


def before_after_frames(plates: Sequence[np.ndarray], comps: Sequence[np.ndarray], min_height: int = 256) -> list[np.ndarray]:
    """uint8 frames: plate | edited, side by side, labelled (linear inputs → display sRGB)."""
    frames = []
    for p, c in zip(plates, comps, strict=True):
        left = _title(_upscale(_srgb8(p), min_height), "plate")
        right = _title(_upscale(_srgb8(c), min_height), "edited")
        frames.append(np.concatenate([left, right], axis=1))
    return frames


def write_before_after(path: Path, plates: Sequence[np.ndarray], comps: Sequence[np.ndarray], fps: float) -> Path:
    """Write the movie; returns the path actually written (``.gif`` beside it when MP4 cannot be encoded)."""
    from vq_models.io.video import write_video

    return write_video(path, before_after_frames(plates, comps), fps=fps)


def contact_sheet(rows: Sequence[tuple[int, np.ndarray, np.ndarray, np.ndarray]], min_height: int = 160) -> np.ndarray:
    """uint8 sheet from (frame, plate linear, comp linear, alpha) rows."""
    out_rows = []
    for frame, plate, comp, alpha in rows:
        p8, c8 = _srgb8(plate), _srgb8(comp)
        a8 = np.repeat((np.clip(alpha, 0, 1) * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2)
        diff = np.abs(p8.astype(np.int16) - c8.astype(np.int16)) * 4
        d8 = np.clip(diff, 0, 255).astype(np.uint8)
        cells = [_upscale(x, min_height) for x in (p8, c8, a8, d8)]
        cells[0] = _title(cells[0], f"{frame}")
        out_rows.append(np.concatenate(cells, axis=1))
    sheet = np.concatenate(out_rows, axis=0)
    cell_w = sheet.shape[1] // len(COLUMNS)
    header = np.zeros((24, sheet.shape[1], 3), np.uint8)
    for i, name in enumerate(COLUMNS):
        cv2.putText(header, name, (i * cell_w + 6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([header, sheet], axis=0)


def write_contact_sheet(path: Path, rows: Sequence[tuple[int, np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    from vq_models.io.images import write_image

    sheet = contact_sheet(rows)
    write_image(path, sheet.astype(np.float32) / 255.0, dtype="uint8")
    return sheet
