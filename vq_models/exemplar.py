"""The artist's guide to a shot's codes (paper Fig. 4): which code covers which part of the face.

Edits are written as "replace codes 12 and 40 with 7 in the mouth", so the artist needs to *see* each
code: one frame with every code's region tinted in its own colour, its index printed where the region
is, and a legend of colour swatches with each code's share of the pixels.
"""

from __future__ import annotations

import colorsys

import numpy as np

__all__ = ["palette", "colourise", "detail_boxes", "render_exemplar"]

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


def detail_boxes(roi_mask: np.ndarray, label_size: int, max_boxes: int = 3, pad: float = 0.25,
                 min_fraction: float = 0.0005) -> list[tuple[str, tuple[int, int, int, int]]]:
    """Square boxes (x0, y0, x1, y1) in label-map pixels around the ROI's largest blobs (two eyes and the
    mouth on a tracked shot), named by position ("eye L", "eye R", "mouth"), sorted left to right, top to
    bottom. Why: at K=255 the codes in the eyes and mouth are a few pixels each and their numbers pile up
    on the full frame; the artist reads them on these zoomed insets instead."""
    import cv2

    m = np.asarray(roi_mask, dtype=np.float32)
    if m.ndim == 3:
        m = m[..., 0]
    m = cv2.resize(m, (label_size, label_size), interpolation=cv2.INTER_AREA) >= 0.5
    n, _, stats, centroids = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    blobs = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_fraction * label_size * label_size]
    blobs = sorted(blobs, key=lambda i: -stats[i, cv2.CC_STAT_AREA])[:max_boxes]
    if not blobs:
        return []
    mid_y = float(np.mean([centroids[i][1] for i in blobs]))
    boxes = []
    for i in blobs:
        x, y, w, h = (int(v) for v in stats[i, :4])
        side = int(np.ceil(max(w, h) * (1.0 + 2.0 * pad)))
        side = max(8, min(side, label_size))
        cx, cy = x + w / 2.0, y + h / 2.0
        x0 = int(np.clip(round(cx - side / 2.0), 0, label_size - side))
        y0 = int(np.clip(round(cy - side / 2.0), 0, label_size - side))
        boxes.append((float(cx), float(cy), (x0, y0, x0 + side, y0 + side)))
    eyes = sorted((b for b in boxes if b[1] < mid_y), key=lambda b: b[0])
    rest = sorted((b for b in boxes if b[1] >= mid_y), key=lambda b: b[0])
    out: list[tuple[str, tuple[int, int, int, int]]] = []
    if len(eyes) == 2:  # image left is the subject's right eye
        out += [("eye R", eyes[0][2]), ("eye L", eyes[1][2])]
    else:
        out += [(f"detail {k + 1}", b[2]) for k, b in enumerate(eyes)]
    out += [("mouth" if len(rest) == 1 else f"detail {len(out) + k + 1}", b[2]) for k, b in enumerate(rest)]
    return out


def _tinted_panel(image: np.ndarray, labels: np.ndarray, num_codes: int, size: int, alpha: float,
                  min_share: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (uint8 RGB) and ``labels`` scaled to ``size`` (labels nearest-neighbour), each code region
    tinted, outlined and numbered where it covers at least ``min_share`` of the panel; returns (panel, per
    code pixel counts of ``labels``)."""
    import cv2

    img = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
    lab = cv2.resize(labels, (size, size), interpolation=cv2.INTER_NEAREST)
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
    font = cv2.FONT_HERSHEY_SIMPLEX
    fscale = max(0.3, size / 1400.0)
    for k in np.nonzero(counts)[0]:
        region = lab == k
        if region.sum() < size * size * min_share:
            continue
        x, y = _anchor(region)
        text = str(int(k))
        (tw, th), _ = cv2.getTextSize(text, font, fscale, 1)
        org = (int(np.clip(x - tw // 2, 0, size - tw)), int(np.clip(y + th // 2, th, size - 1)))
        cv2.putText(panel, text, org, font, fscale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(panel, text, org, font, fscale, (255, 255, 255), 1, cv2.LINE_AA)
    return panel, counts


def render_exemplar(
    image: np.ndarray,
    labels: np.ndarray,
    num_codes: int,
    *,
    alpha: float = 0.55,
    panel_size: int = 512,
    title: str | None = None,
    details: list[tuple[str, tuple[int, int, int, int]]] | None = None,
) -> np.ndarray:
    """Image with code regions tinted and numbered, plus a legend; returns uint8 RGB (H, W, 3).

    ``image`` is the aligned frame (float [0, 1] or uint8, any size), ``labels`` uint8 (L, L) codes
    (255 = outside, left untinted). Both are scaled to ``panel_size`` (labels nearest-neighbour).
    ``details`` (name, (x0, y0, x1, y1) in label pixels, e.g. from :func:`detail_boxes`) adds a row of
    zoomed insets, each ``panel_size`` square and numbered at its own scale, below the frame and legend.
    """
    import cv2

    labels = np.asarray(labels, dtype=np.uint8)
    p = max(int(panel_size), labels.shape[0])
    rgb = _to_uint8_rgb(image)
    panel, counts = _tinted_panel(rgb, labels, num_codes, p, alpha, min_share=0.0004)
    font = cv2.FONT_HERSHEY_SIMPLEX
    out = np.concatenate([panel, _legend(palette(num_codes), counts, max(1, int(counts.sum())), p, font)], axis=1)
    if details:
        sy, sx = rgb.shape[0] / labels.shape[0], rgb.shape[1] / labels.shape[1]
        tiles = []
        for name, (x0, y0, x1, y1) in details:
            if not (0 <= x0 < x1 <= labels.shape[1] and 0 <= y0 < y1 <= labels.shape[0]):
                raise ValueError(f"detail box {name!r} {(x0, y0, x1, y1)} outside the {labels.shape} label map")
            crop = rgb[int(y0 * sy) : max(int(y0 * sy) + 1, int(y1 * sy)), int(x0 * sx) : max(int(x0 * sx) + 1, int(x1 * sx))]
            inset, _ = _tinted_panel(crop, labels[y0:y1, x0:x1], num_codes, p - 4, alpha, min_share=0.001)
            tile = np.full((p, p, 3), 24, np.uint8)
            tile[2:-2, 2:-2] = inset
            text = f"{name}  (label px {x0}-{x1}, {y0}-{y1})"
            cv2.putText(tile, text, (8, 20), font, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(tile, text, (8, 20), font, 0.5, (255, 255, 0), 1, cv2.LINE_AA)
            tiles.append(tile)
        row = np.concatenate(tiles, axis=1)
        width = max(out.shape[1], row.shape[1])
        out, row = (np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0)), constant_values=24) for a in (out, row))
        out = np.concatenate([out, row], axis=0)
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
