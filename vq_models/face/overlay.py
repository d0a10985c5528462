"""Local face overlay: the lower face rendered with flat per-region albedo over the aligned crop.

This is our stand-in for the paper's 3DMM albedo render (h_i overlaid on c_i to give ĉ_i). Flat,
illumination-free colours for the lower-face skin, the lips and the mouth interior make the overlay
carry only mouth *articulation* into Stage I, which is what expression transfer and label edits drive.
It is rasterised from the tracking contours (mesh-derived or from the tracking file), so a transferred
mesh/contour set re-renders the same way.
"""

from __future__ import annotations

import numpy as np

from vq_models.face.masks import polygon_mask

SKIN_ALBEDO = (0.80, 0.62, 0.52)
LIPS_ALBEDO = (0.66, 0.28, 0.30)
MOUTH_ALBEDO = (0.12, 0.03, 0.04)


def lower_face_polygon(contours: dict[str, np.ndarray], landmarks5: np.ndarray) -> np.ndarray | None:
    """The part of the face oval below the nose (cut just under the nose tip, across the face's axis)."""
    oval = contours.get("face_oval")
    if oval is None or len(oval) < 3:
        return None
    lm = np.asarray(landmarks5, np.float64).reshape(5, 2)
    eyes, mouth = (lm[0] + lm[1]) / 2, (lm[3] + lm[4]) / 2
    down = mouth - eyes
    down /= max(np.hypot(*down), 1e-9)
    cut = float((lm[2] + 0.3 * (mouth - lm[2])) @ down)
    depth = oval @ down - cut
    below = depth >= 0
    if below.sum() < 2:
        return None
    if below.all():
        return oval.copy()
    # the points below the cut form one run around the closed oval; start it just after an 'above' point
    n = len(oval)
    start = next((i for i in range(n) if below[i] and not below[i - 1]), 0)
    idx = []
    for k in range(n):  # the contiguous run only
        j = (start + k) % n
        if not below[j]:
            break
        idx.append(j)
    pts = oval[idx]
    # close with the points where the oval crosses the cut line, so the region spans the full width
    a_prev, b_next = (idx[0] - 1) % n, (idx[-1] + 1) % n

    def crossing(i: int, j: int) -> np.ndarray:
        t = depth[i] / (depth[i] - depth[j])
        return oval[i] + t * (oval[j] - oval[i])

    return np.vstack([crossing(a_prev, idx[0]), pts, crossing(idx[-1], b_next)])


def overlay_masks(contours: dict[str, np.ndarray], landmarks5: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Per-region coverage in crop space: ``skin`` (lower face), ``lips`` and ``mouth`` (interior)."""
    lower = lower_face_polygon(contours, landmarks5)
    skin = polygon_mask([lower], size) if lower is not None else np.zeros((size, size), np.float32)
    lips = polygon_mask([contours["lips_outer"]], size) if "lips_outer" in contours else np.zeros_like(skin)
    mouth = polygon_mask([contours["lips_inner"]], size) if "lips_inner" in contours else np.zeros_like(skin)
    return {"skin": np.maximum(skin, lips), "lips": lips, "mouth": mouth}


def render_overlay(aligned: np.ndarray, contours: dict[str, np.ndarray], landmarks5: np.ndarray,
                   opacity: float = 1.0) -> np.ndarray:
    """ĉ: the aligned crop (S, S, 3) with the flat-albedo lower face composited over it (crop coords)."""
    img = np.asarray(aligned, np.float32)[..., :3].copy()
    masks = overlay_masks(contours, landmarks5, img.shape[0])
    for name, colour in (("skin", SKIN_ALBEDO), ("lips", LIPS_ALBEDO), ("mouth", MOUTH_ALBEDO)):
        a = (masks[name] * opacity)[..., None]
        img = img * (1.0 - a) + np.asarray(colour, np.float32) * a
    return img
