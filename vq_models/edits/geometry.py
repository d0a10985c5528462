"""Geometry on label maps and boolean masks: the small, exact building blocks edit operations share.

Label maps are categorical, so every resampling here is nearest-neighbour and every fill copies an
existing code: an edit never invents a code that is not in the codebook, and pixels an operation does
not touch keep their exact value.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

_SUBPIXEL_BITS = 4


def disk(radius: int) -> np.ndarray:
    """Elliptical structuring element of the given radius (1 + 2r pixels across)."""
    r = max(0, int(radius))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return mask.astype(bool).copy()
    return cv2.dilate(mask.astype(np.uint8), disk(radius)).astype(bool)


def grow_square(mask: np.ndarray, reach: int) -> np.ndarray:
    """``mask`` grown by ``reach`` pixels in every direction, corners included (a square neighbourhood)."""
    return cv2.dilate(np.asarray(mask, np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)).astype(bool)


def erode(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return mask.astype(bool).copy()
    # Border pixels outside the image count as "inside" so erosion does not eat masks touching the edge.
    return cv2.erode(mask.astype(np.uint8), disk(radius), borderType=cv2.BORDER_REPLICATE).astype(bool)


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) inclusive bounds of a mask, None when empty."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def centroid(mask: np.ndarray) -> tuple[float, float] | None:
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return float(xs.mean()), float(ys.mean())


def shift(array: np.ndarray, dx: int, dy: int, fill: int | bool = 0) -> np.ndarray:
    """Integer translation without wrap-around; uncovered pixels get ``fill``."""
    out = np.full_like(array, fill)
    h, w = array.shape[:2]
    dx, dy = int(dx), int(dy)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    ys_dst = slice(max(dy, 0), h + min(dy, 0))
    xs_dst = slice(max(dx, 0), w + min(dx, 0))
    ys_src = slice(max(-dy, 0), h + min(-dy, 0))
    xs_src = slice(max(-dx, 0), w + min(-dx, 0))
    out[ys_dst, xs_dst] = array[ys_src, xs_src]
    return out


def scale_about(array: np.ndarray, sx: float, sy: float, cx: float, cy: float, fill: int = 0) -> np.ndarray:
    """Nearest-neighbour scaling of a 2-D uint8/bool array about (cx, cy) in pixel-centre coordinates."""
    is_bool = array.dtype == bool
    src = array.astype(np.uint8)
    m = np.array([[sx, 0.0, cx - sx * cx], [0.0, sy, cy - sy * cy]], dtype=np.float64)
    h, w = array.shape[:2]
    out = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=int(fill))
    return out.astype(bool) if is_bool else out.astype(array.dtype)


def rasterize_polygon(points: np.ndarray | Sequence[Sequence[float]], size: tuple[int, int]) -> np.ndarray:
    """Fill a closed polygon given in pixel-centre coordinates into a boolean (H, W) mask (sub-pixel exact
    vertices via cv2's fixed-point ``shift``)."""
    h, w = size
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    mask = np.zeros((h, w), np.uint8)
    if len(pts) >= 3 and np.all(np.isfinite(pts)):
        fixed = np.round(pts * (1 << _SUBPIXEL_BITS)).astype(np.int32)
        cv2.fillPoly(mask, [fixed], 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return mask.astype(bool)


#: how finely :func:`polygon_coverage` samples each pixel (per axis)
COVERAGE_SUPERSAMPLE = 4


def polygon_coverage(points: np.ndarray | Sequence[Sequence[float]], size: tuple[int, int]) -> np.ndarray:
    """The share of each pixel of an (H, W) = ``size`` grid that a closed polygon (pixel-centre coordinates)
    covers, float32 in [0, 1]: the centres of a :data:`COVERAGE_SUPERSAMPLE`-times finer grid around the
    polygon tested for inside (even-odd rule), area-averaged. For an edge drawn at the resolution of the pixels
    themselves (a tracked contour on the plate) rather than at a coarser grid's."""
    h, w = size
    out = np.zeros((h, w), np.float32)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3 or not np.all(np.isfinite(pts)):
        return out
    x0, y0 = np.maximum(np.floor(pts.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(pts.max(axis=0)).astype(int) + 2, (w, h))
    if x1 <= x0 or y1 <= y0:
        return out
    n = COVERAGE_SUPERSAMPLE
    fine = _inside_samples((pts - (x0, y0) + 0.5) * n - 0.5, ((y1 - y0) * n, (x1 - x0) * n))
    out[y0:y1, x0:x1] = fine.reshape(y1 - y0, n, x1 - x0, n).mean(axis=(1, 3))
    return out


def _inside_samples(pts: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: which pixel centres lie inside the polygon ``pts`` (even-odd rule, one scanline per row).
    Exact at the centres, unlike cv2.fillPoly, which also fills the pixels its outline passes through."""
    h, w = size
    start, end = pts, np.roll(pts, -1, axis=0)
    out = np.zeros((h, w), bool)
    columns = np.arange(w, dtype=np.float64)
    for y in range(h):
        crosses = (start[:, 1] > y) != (end[:, 1] > y)
        if not crosses.any():
            continue
        a, b = start[crosses], end[crosses]
        xs = np.sort(a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1]))
        out[y] = (np.searchsorted(xs, columns, side="right") % 2).astype(bool)
    return out


def components(mask: np.ndarray) -> list[np.ndarray]:
    """Connected components (8-connected), largest first."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    order = sorted(range(1, n), key=lambda i: -int(stats[i, cv2.CC_STAT_AREA]))
    return [lab == i for i in order]


def _width(mask: np.ndarray) -> int:
    xs = np.nonzero(mask.any(axis=0))[0]
    return int(xs[-1] - xs[0] + 1) if xs.size else 0


def split_left_right(mask: np.ndarray, hints: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Split a two-part feature (eyes, brows) into the part on the image's left and on its right.

    With tracked region hints (left, right) each pixel goes to the nearer hint, and a pixel farther from
    its hint than half the hint's width goes to neither: an unsupervised code is rarely pure, and an iris
    code that also marks a few dark hair pixels at the temple must not make an eye edit touch the temple
    (it did on the demo shot: a stray alpha blob beside the eye). Without hints, the two largest components
    set a vertical split line half-way between their centroids (a lone component goes to the side of the
    image centre it lies on).
    """
    mask = mask.astype(bool)
    h, w = mask.shape
    left_hint, right_hint = hints
    if left_hint is not None and right_hint is not None and left_hint.any() and right_hint.any():
        d_left = cv2.distanceTransform((~left_hint).astype(np.uint8), cv2.DIST_L2, 5)
        d_right = cv2.distanceTransform((~right_hint).astype(np.uint8), cv2.DIST_L2, 5)
        to_left = d_left <= d_right
        near_left = d_left <= max(2.0, 0.5 * _width(left_hint))
        near_right = d_right <= max(2.0, 0.5 * _width(right_hint))
        return mask & to_left & near_left, mask & ~to_left & near_right
    parts = components(mask)
    if not parts:
        return mask.copy(), mask.copy()
    if len(parts) == 1:
        cx = centroid(parts[0])[0]  # type: ignore[index]
        if cx >= w / 2.0:
            return np.zeros_like(mask), mask.copy()
        return mask.copy(), np.zeros_like(mask)
    c0 = centroid(parts[0])[0]  # type: ignore[index]
    c1 = centroid(parts[1])[0]  # type: ignore[index]
    split = (c0 + c1) / 2.0
    xs = np.arange(w)[None, :]
    return mask & (xs < split), mask & (xs >= split)


def nearest_fill(labels: np.ndarray, hole: np.ndarray, source: np.ndarray, fallback: int) -> np.ndarray:
    """Return ``labels`` with every ``hole`` pixel set to the code of the nearest ``source`` pixel.

    Used wherever something is removed (a brow, a translated segment): the vacated area continues what
    surrounds it, e.g. forehead skin above and cheek skin below. Without any source pixel the hole gets
    ``fallback``.
    """
    out = labels.copy()
    hole = hole.astype(bool)
    source = source.astype(bool) & ~hole
    if not hole.any():
        return out
    if not source.any():
        out[hole] = fallback
        return out
    _, idx = cv2.distanceTransformWithLabels((~source).astype(np.uint8), cv2.DIST_L2, 5,
                                             labelType=cv2.DIST_LABEL_PIXEL)
    code_of = np.zeros(int(idx.max()) + 1, dtype=labels.dtype)
    code_of[idx[source]] = labels[source]
    out[hole] = code_of[idx[hole]]
    return out


def column_extents(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column: first row, last row (−1 where empty) and pixel count of a mask."""
    mask = mask.astype(bool)
    h = mask.shape[0]
    any_col = mask.any(axis=0)
    top = np.where(any_col, mask.argmax(axis=0), -1)
    bottom = np.where(any_col, h - 1 - mask[::-1].argmax(axis=0), -1)
    return top, bottom, mask.sum(axis=0)


def upper_half(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: the rows at or above the middle of ``mask``'s extent in each column (none in a column the
    mask misses). The upper half of a mouth's opening is the upper row of teeth's."""
    top, bottom, _ = column_extents(mask)
    middle = np.where(top >= 0, 0.5 * (top + bottom), -1.0)
    return np.arange(np.shape(mask)[0])[:, None] <= middle[None, :]


def band_mode(labels: np.ndarray, x: int, rows: range, exclude: np.ndarray) -> int | None:
    """Most frequent code in column ``x`` over ``rows`` that is not excluded (ties → smallest code)."""
    h = labels.shape[0]
    vals = [int(labels[y, x]) for y in rows if 0 <= y < h and not exclude[y, x]]
    if not vals:
        return None
    counts = np.bincount(vals)
    return int(counts.argmax())


def polygon_column_edges(points: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column x = 0..width-1 (pixel centres at integers), where a closed polygon (N, 2) crosses that column
    first and last: its top and bottom edge rows (fractional; NaN where it does not span the column)."""
    pts = np.asarray(points, np.float64)
    p, q = pts, np.roll(pts, -1, axis=0)
    top = np.full(int(width), np.nan)
    bottom = np.full(int(width), np.nan)
    for x in range(int(width)):
        cross = (p[:, 0] - x) * (q[:, 0] - x) <= 0.0
        cross &= p[:, 0] != q[:, 0]
        if np.count_nonzero(cross) < 2:
            continue
        a, b = p[cross], q[cross]
        ys = a[:, 1] + (x - a[:, 0]) * (b[:, 1] - a[:, 1]) / (b[:, 0] - a[:, 0])
        top[x], bottom[x] = float(ys.min()), float(ys.max())
    return top, bottom


def polygon_column_span(points: np.ndarray, width: int) -> np.ndarray:
    """Per column x = 0..width-1 (pixel centres at integers), how far a closed polygon (N, 2) reaches from its
    top edge to its bottom edge along that column (fractional; NaN where it does not span the column)."""
    top, bottom = polygon_column_edges(points, width)
    return bottom - top
