"""The artist's guide to a shot's codes (paper Fig. 4): which code covers which part of the face.

Edits are written as "replace codes 12 and 40 with 7 in the mouth", so the artist needs to *see* each
code: one frame with every code's region tinted in its own colour, its index printed where the region
is, and a legend of colour swatches with each code's share of the pixels.
"""

from __future__ import annotations

import colorsys

import numpy as np

__all__ = ["palette", "colourise", "render_exemplar"]

OUTSIDE = 255  # plate-space "no label" value; drawn black


def palette(num_codes: int) -> np.ndarray:
    """(num_codes, 3) uint8 colours, pairwise distinct, neighbours far apart in hue (golden-ratio steps
    with three brightness/saturation tiers so large K stays distinguishable)."""
    out = []
    seen: set[tuple[int, int, int]] = set()
    tiers = ((0.70, 0.95), (0.95, 0.75), (0.45, 0.80))
    for k in range(num_codes):
        h = (k * 0.618033988749895) % 1.0
        s, v = tiers[k % 3]
        rgb = tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h, s, v))
        while rgb in seen or rgb == (0, 0, 0):  # rounding collisions at large K: nudge until unique
            rgb = ((rgb[0] + 1) % 256, rgb[1], rgb[2])
        seen.add(rgb)
        out.append(rgb)
    return np.asarray(out, dtype=np.uint8).reshape(num_codes, 3)


def colourise(labels: np.ndarray, num_codes: int) -> np.ndarray:
    """uint8 (H, W) codes → uint8 (H, W, 3) palette colours; codes ≥ num_codes (e.g. 255) are black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:num_codes] = palette(num_codes)
    return lut[np.asarray(labels, dtype=np.uint8)]


def _to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        arr = (np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return arr


def _anchor(mask: np.ndarray) -> tuple[int, int]:
    """A point inside the region near its centroid (the centroid itself can fall outside a ring)."""
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean(), xs.mean()
    i = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
    return int(xs[i]), int(ys[i])


def render_exemplar(
    image: np.ndarray,
    labels: np.ndarray,
    num_codes: int,
    *,
    alpha: float = 0.55,
    panel_size: int = 512,
    title: str | None = None,
) -> np.ndarray:
    """Image with code regions tinted and numbered, plus a legend; returns uint8 RGB (H, W, 3).

    ``image`` is the aligned frame (float [0, 1] or uint8, any size), ``labels`` uint8 (L, L) codes
    (255 = outside, left untinted). Both are scaled to ``panel_size`` (labels nearest-neighbour).
    """
    import cv2

    labels = np.asarray(labels, dtype=np.uint8)
    p = max(int(panel_size), labels.shape[0])
    img = cv2.resize(_to_uint8_rgb(image), (p, p), interpolation=cv2.INTER_LINEAR)
    lab = cv2.resize(labels, (p, p), interpolation=cv2.INTER_NEAREST)
    colours = palette(num_codes)
    inside = lab < num_codes
    tint = colourise(lab, num_codes).astype(np.float32)
    panel = img.astype(np.float32)
    panel[inside] = (1 - alpha) * panel[inside] + alpha * tint[inside]
    panel = np.clip(panel + 0.5, 0, 255).astype(np.uint8)

    # region boundaries, so neighbouring codes with similar tints stay apart
    edges = np.zeros(lab.shape, bool)
    edges[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    edges[1:, :] |= lab[1:, :] != lab[:-1, :]
    panel[edges] = (panel[edges] * 0.4).astype(np.uint8)

    valid = labels[labels < num_codes]
    counts = np.bincount(valid.ravel(), minlength=num_codes)[:num_codes]
    total = max(1, int(counts.sum()))
    font = cv2.FONT_HERSHEY_SIMPLEX
    fscale = max(0.3, p / 1400.0)
    min_pixels = (p * p) * 0.0004
    for k in np.nonzero(counts)[0]:
        region = lab == k
        if region.sum() < min_pixels:
            continue
        x, y = _anchor(region)
        text = str(int(k))
        (tw, th), _ = cv2.getTextSize(text, font, fscale, 1)
        org = (int(np.clip(x - tw // 2, 0, p - tw)), int(np.clip(y + th // 2, th, p - 1)))
        cv2.putText(panel, text, org, font, fscale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(panel, text, org, font, fscale, (255, 255, 255), 1, cv2.LINE_AA)

    legend = _legend(colours, counts, total, p, font)
    out = np.concatenate([panel, legend], axis=1)
    if title:
        bar = np.full((28, out.shape[1], 3), 24, np.uint8)
        cv2.putText(bar, title, (8, 19), font, 0.5, (235, 235, 235), 1, cv2.LINE_AA)
        out = np.concatenate([bar, out], axis=0)
    return out


def _legend(colours: np.ndarray, counts: np.ndarray, total: int, height: int, font: int) -> np.ndarray:
    """Columns of 'swatch  code  share%' rows, every code listed (unused ones show 0.0%)."""
    import cv2

    k = len(colours)
    row = 18
    rows_per_col = max(1, (height - 8) // row)
    cols = (k + rows_per_col - 1) // rows_per_col
    col_w = 118
    legend = np.full((height, max(1, cols) * col_w + 8, 3), 32, np.uint8)
    for i in range(k):
        c, r = divmod(i, rows_per_col)
        x0, y0 = 8 + c * col_w, 6 + r * row
        legend[y0 : y0 + row - 4, x0 : x0 + 24] = colours[i]
        share = 100.0 * counts[i] / total
        text = f"{i:3d} {share:5.1f}%"
        cv2.putText(legend, text, (x0 + 30, y0 + row - 6), font, 0.4, (230, 230, 230), 1, cv2.LINE_AA)
    return legend
