"""Foreground and ROI masks in crop space, built from the tracking contours.

Both real footage (MediaPipe mesh contours) and synthetic shots (contours in the tracking file) go
through the same code. When a tracking file has only the 5 points, :func:`template_contours` places
generic shapes (ellipses for eyes, lips and face) by those points so the pipeline still produces masks;
prep records that in shot.json because such masks are approximate.
"""

from __future__ import annotations

import cv2
import numpy as np

_SHIFT = 4  # fillPoly sub-pixel bits: coordinates are placed to 1/16 pixel


def polygon_mask(polygons: list[np.ndarray], size: int, supersample: int = 4) -> np.ndarray:
    """Anti-aliased filled polygons (pixel-centre coordinates), float32 (size, size) in [0, 1].

    Rasterised at ``supersample``x and box-filtered down, which gives coverage close to the true area
    (OpenCV's own LINE_AA fill grows shapes by about half a pixel).
    """
    k = int(supersample)
    mask = np.zeros((size * k, size * k), np.uint8)
    pts = [np.round((np.asarray(p, np.float64)[:, :2] * k + (k - 1) / 2.0) * (1 << _SHIFT)).astype(np.int32)
           for p in polygons if p is not None and len(p) >= 3]
    if pts:
        cv2.fillPoly(mask, pts, 255, lineType=cv2.LINE_8, shift=_SHIFT)
    if k > 1:
        return cv2.resize(mask.astype(np.float32) / 255.0, (size, size), interpolation=cv2.INTER_AREA)
    return mask.astype(np.float32) / 255.0


def _soften(mask: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return mask
    return cv2.GaussianBlur(mask, (0, 0), sigma)


#: the person matte may trim the face oval only this close to its edge (a share of the oval's width): the cheek
#: past a profile's silhouette is background there, but the inner face is face whatever the matte says
MATTE_RIM_SHARE = 0.12
#: a person matte that keeps less than this share of the oval failed on the frame and is not used: MediaPipe's
#: selfie segmenter keeps only the eyes and teeth of a dark face on a dark background (synthetic variant 707:
#: median 0.19 of the oval), where real footage and lighter faces keep 0.99-1.0
MATTE_MIN_COVER = 0.5


def person_matte_usable(oval: np.ndarray, person: np.ndarray) -> bool:
    """Whether the person matte keeps at least :data:`MATTE_MIN_COVER` of the face oval (both soft masks)."""
    inside = np.asarray(oval) >= 0.5
    if not inside.any():
        return False
    return float((np.asarray(person)[inside] >= 0.5).mean()) >= MATTE_MIN_COVER


def fg_mask(contours: dict[str, np.ndarray], size: int, person: np.ndarray | None = None,
            feather: float = 0.01) -> np.ndarray:
    """Face-only foreground: the face oval, trimmed near its edge by the person segmentation, soft-edged
    (``feather`` × size sigma).

    The mesh's oval stops at the upper forehead and runs along the jaw, so hair, neck and clothing fall
    outside it; the person matte removes background that the oval still covers at the cheeks (profile views).
    It may do so only within :data:`MATTE_RIM_SHARE` of the oval's edge, and a matte that fails on the frame
    (:func:`person_matte_usable`) is ignored: everything downstream (Stage I's codes, Stage II's region, the
    compositing alpha) treats pixels outside this mask as background.
    """
    oval = polygon_mask([contours["face_oval"]], size) if "face_oval" in contours else np.zeros((size, size), np.float32)
    if person is not None and person_matte_usable(oval, person):
        person = np.asarray(person, np.float32)
        width = float(np.ptp(np.asarray(contours["face_oval"])[:, 0]))
        r = int(round(MATTE_RIM_SHARE * width))
        inner = (oval >= 0.5).astype(np.uint8)
        if r > 0:
            inner = cv2.erode(inner, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        oval = np.minimum(oval, np.maximum(person, inner.astype(np.float32)))
    return np.clip(_soften(oval, feather * size), 0.0, 1.0)


def roi_mask(contours: dict[str, np.ndarray], size: int, grow: float = 0.015, feather: float = 0.008) -> np.ndarray:
    """Eyes, lips and mouth interior as one soft mask (the paper's M_roi, used to weight the losses).

    The eye and lip outlines are grown by ``grow`` × size so lashes and the lip border count as ROI.
    """
    polys = [contours[k] for k in ("left_eye", "right_eye", "lips_outer", "lips_inner") if k in contours]
    mask = polygon_mask(polys, size)
    radius = int(round(grow * size))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        mask = cv2.dilate(mask, kernel)
    return np.clip(_soften(mask, feather * size), 0.0, 1.0)


# --- template shapes for 5-point-only tracking -------------------------------------------------------

def _ellipse(cx: float, cy: float, ax: float, ay: float, n: int = 24) -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], 1)


# Canonical frame: image-left eye at (-1, 0), image-right eye at (1, 0), y down (units: half the eye
# distance, ~31 mm on an adult). Proportions from average adult faces.
_TEMPLATE = {
    "face_oval": _ellipse(0.0, 0.85, 2.25, 3.0, 36),
    "left_brow": np.array([[-1.55, -0.45], [-1.0, -0.7], [-0.4, -0.6], [-0.4, -0.45], [-1.0, -0.55], [-1.5, -0.35]]),
    "right_brow": np.array([[1.55, -0.45], [1.0, -0.7], [0.4, -0.6], [0.4, -0.45], [1.0, -0.55], [1.5, -0.35]]),
    "left_eye": _ellipse(-1.0, 0.0, 0.45, 0.17, 16),
    "right_eye": _ellipse(1.0, 0.0, 0.45, 0.17, 16),
    "left_iris": _ellipse(-1.0, 0.0, 0.17, 0.17, 8),
    "right_iris": _ellipse(1.0, 0.0, 0.17, 0.17, 8),
    "nose": np.array([[0.0, 0.0], [-0.35, 1.1], [-0.4, 1.35], [0.0, 1.45], [0.4, 1.35], [0.35, 1.1]]),
}


def template_contours(landmarks5: np.ndarray) -> dict[str, np.ndarray]:
    """Generic contours placed by the 5 points (same coordinates as the points).

    Eyes, brows, nose and face oval follow the eye-to-eye similarity; the lips are an ellipse spanning
    the two mouth corners so the mouth's width and tilt follow the tracking.
    """
    lm = np.asarray(landmarks5, np.float64).reshape(5, 2)
    centre = (lm[0] + lm[1]) / 2
    axis = (lm[1] - lm[0]) / 2  # maps canonical (1, 0)
    rot = np.array([[axis[0], -axis[1]], [axis[1], axis[0]]])
    out = {name: poly @ rot.T + centre for name, poly in _TEMPLATE.items()}
    m_c = (lm[3] + lm[4]) / 2
    m_ax = (lm[4] - lm[3]) / 2
    m_rot = np.array([[m_ax[0], -m_ax[1]], [m_ax[1], m_ax[0]]])
    out["lips_outer"] = _ellipse(0.0, 0.0, 1.05, 0.4, 20) @ m_rot.T + m_c
    out["lips_inner"] = _ellipse(0.0, 0.0, 0.85, 0.06, 20) @ m_rot.T + m_c
    return out
