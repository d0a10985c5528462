"""A small CPU triangle rasterizer with a z-buffer, in vectorised numpy.

Why our own: the 3D face overlay (:mod:`vq_models.face.overlay`) renders a few hundred triangles at the
crop's resolution for every frame of ``prep`` and at edit time, on render-farm and laptop CPUs without a
display. The rasterizers on PyPI either need an OpenGL context (pyrender, moderngl: EGL/OSMesa) or pull
in a GPU framework; what the overlay needs is a z-buffer, barycentric coordinates and determinism, which
fit in a page of numpy.

How: each triangle's barycentric coordinates are affine edge functions of the pixel position, so on
every row of its bounding box "all three >= 0" is an interval of x; all rows of all triangles get their
interval at once, the pixel centres inside are enumerated with ``np.repeat``, each keeps its
interpolated depth, and one stable sort by pixel then depth leaves the nearest surface at each pixel.
Ties in depth go to the lower triangle index, so the same input gives the same bytes. Coordinates are
pixel centres on integers (the project's convention); a pixel is covered when its centre is inside the
triangle or on its edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vq_models.errors import InputError


@dataclass(frozen=True)
class Raster:
    """What is visible at each pixel: ``tri`` (H, W) int32 triangle index or -1, ``bary`` (H, W, 3) float32
    barycentric weights of that triangle's vertices, ``depth`` (H, W) float32 (+inf where empty)."""

    tri: np.ndarray
    bary: np.ndarray
    depth: np.ndarray

    @property
    def covered(self) -> np.ndarray:
        return self.tri >= 0

    def interpolate(self, triangles: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Per-vertex ``values`` (N, C) interpolated over the visible surface, (H, W, C) float32 (0 where empty)."""
        vals = np.asarray(values, np.float32)
        out = np.zeros((*self.tri.shape, vals.shape[1]), np.float32)
        hit = self.covered
        corners = np.asarray(triangles)[self.tri[hit]]  # (P, 3)
        w = self.bary[hit]  # (P, 3)
        out[hit] = (vals[corners] * w[..., None]).sum(1)
        return out


def rasterize(vertices: np.ndarray, triangles: np.ndarray, height: int, width: int) -> Raster:
    """Z-buffered rasterization of ``triangles`` (T, 3) over ``vertices`` (N, 3) = (x, y, z) in pixels.

    Smaller z is nearer the camera (MediaPipe's convention, kept through the crop transform). Both
    windings are drawn (no back-face culling: a turned head's far cheek is hidden by depth, not winding).
    """
    v = np.asarray(vertices, np.float64)
    t = np.asarray(triangles)
    if v.ndim != 2 or v.shape[1] != 3:
        raise InputError(f"rasterize: vertices must be (N, 3) x, y, z, got shape {v.shape}")
    if t.ndim != 2 or t.shape[1] != 3 or (t.size and (t.min() < 0 or t.max() >= len(v))):
        raise InputError(f"rasterize: triangles must be (T, 3) indices into {len(v)} vertices")
    if not np.isfinite(v).all():
        raise InputError("rasterize: vertices contain NaN or infinity")
    h, w = int(height), int(width)
    out = Raster(
        np.full((h, w), -1, np.int32), np.zeros((h, w, 3), np.float32), np.full((h, w), np.inf, np.float32)
    )
    if not len(t) or h <= 0 or w <= 0:
        return out
    p0, p1, p2 = v[t[:, 0]], v[t[:, 1]], v[t[:, 2]]
    area = (p1[:, 0] - p0[:, 0]) * (p2[:, 1] - p0[:, 1]) - (p1[:, 1] - p0[:, 1]) * (p2[:, 0] - p0[:, 0])
    xs, ys = np.stack([p0[:, 0], p1[:, 0], p2[:, 0]], 1), np.stack([p0[:, 1], p1[:, 1], p2[:, 1]], 1)
    x0 = np.maximum(np.ceil(xs.min(1)), 0).astype(np.int64)
    x1 = np.minimum(np.floor(xs.max(1)), w - 1).astype(np.int64)
    y0 = np.maximum(np.ceil(ys.min(1)), 0).astype(np.int64)
    y1 = np.minimum(np.floor(ys.max(1)), h - 1).astype(np.int64)
    keep = np.flatnonzero((np.abs(area) > 1e-12) & (x1 >= x0) & (y1 >= y0))
    if not len(keep):
        return out
    # per-triangle affine edge functions: bary_i(x, y) = a_i * x + b_i * y + c_i
    pa, pb, pc, ar = p0[keep], p1[keep], p2[keep], area[keep]
    coef = np.empty((len(keep), 3, 3))
    for i, (u, q) in enumerate(((pb, pc), (pc, pa), (pa, pb))):  # bary of vertex i from the opposite edge
        coef[:, i, 0] = (u[:, 1] - q[:, 1]) / ar
        coef[:, i, 1] = (q[:, 0] - u[:, 0]) / ar
        coef[:, i, 2] = (u[:, 0] * q[:, 1] - q[:, 0] * u[:, 1]) / ar
    # scanline spans: on row y each bary is a_i * x + r_i, so "all three >= 0" is an interval of x
    bh = (y1 - y0 + 1)[keep]
    rk = np.repeat(np.arange(len(keep)), bh)  # row -> kept triangle
    ry = y0[keep][rk] + np.arange(int(bh.sum())) - np.repeat(np.cumsum(bh) - bh, bh)
    a = coef[rk, :, 0]  # (R, 3)
    r = coef[rk, :, 1] * ry[:, None] + coef[rk, :, 2]
    eps = 1e-9  # a pixel centre on a shared edge belongs to both triangles: no cracks from rounding
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = (-eps - r) / a
    lo = np.max(np.where(a > 0, bound, -np.inf), axis=1)
    hi = np.min(np.where(a < 0, bound, np.inf), axis=1)
    blocked = ((a == 0) & (r < -eps)).any(1)
    xl = np.maximum(np.ceil(lo), x0[keep][rk]).astype(np.int64)
    xr = np.minimum(np.floor(hi), x1[keep][rk]).astype(np.int64)
    counts = np.where(blocked, 0, np.maximum(xr - xl + 1, 0))
    rows = np.repeat(np.arange(len(rk)), counts)  # candidate -> row
    px = xl[rows] + np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    py = ry[rows]
    k = rk[rows]
    bary = a[rows] * px[:, None] + r[rows]
    zs = np.stack([pa[:, 2], pb[:, 2], pc[:, 2]], 1)[k]
    depth = (bary * zs).sum(1)
    pix = py * w + px
    # nearest first within a pixel: one stable sort on pixel + depth rank in [0, 1); equal depths keep
    # candidate order, i.e. the lower triangle index wins
    rank = np.empty(len(depth), np.float64)
    rank[np.argsort(depth, kind="stable")] = np.arange(len(depth)) / max(len(depth), 1)
    order = np.argsort(pix + rank, kind="stable")
    first = order[np.r_[True, pix[order][1:] != pix[order][:-1]]] if len(order) else order
    tri = out.tri.reshape(-1)
    tri[pix[first]] = keep[k[first]]
    bary_out = out.bary.reshape(-1, 3)
    bary_out[pix[first]] = np.clip(bary[first], 0.0, 1.0)
    depth_out = out.depth.reshape(-1)
    depth_out[pix[first]] = depth[first]
    return out
