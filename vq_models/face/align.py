"""FFHQ-style alignment: the oriented quad from 5 landmarks, temporal smoothing, crop and paste-back.

The quad follows the FFHQ recipe (eye and mouth landmarks give an oriented square a bit larger than the
face) that StyleGAN/e4e expect. On video the raw quad jitters with landmark noise, so — as STIT does —
its centre, log-scale and (unwrapped) rotation are low-passed over time before crops are taken.

Convention: all points are pixel coordinates with pixel centres on integers (OpenCV's), in the plate
and in the crop alike; :class:`~vq_models.shot.CropTransform` holds the exact similarity both ways, and
:func:`crop` / :func:`paste` warp with exactly those matrices, so geometry round-trips to float precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vq_models.shot import CropTransform


@dataclass(frozen=True)
class Quad:
    """An oriented square: centre (plate px), half-side length (px) and rotation (radians, x axis)."""

    cx: float
    cy: float
    half: float
    angle: float

    def corners(self) -> np.ndarray:
        """Corners in FFHQ order: top-left, bottom-left, bottom-right, top-right (plate px)."""
        c = np.array([self.cx, self.cy])
        x = self.half * np.array([np.cos(self.angle), np.sin(self.angle)])
        y = np.array([-x[1], x[0]])
        return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def ffhq_quad(landmarks5: np.ndarray) -> Quad:
    """FFHQ's oriented crop square from the 5 points (eyes, nose, mouth corners; image-left first)."""
    lm = np.asarray(landmarks5, dtype=np.float64).reshape(5, 2)
    eye_left, eye_right = lm[0], lm[1]
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (lm[3] + lm[4]) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    norm = np.hypot(*x)
    if not np.isfinite(norm) or norm < 1e-6:
        raise ValueError("degenerate landmarks: eyes and mouth coincide")
    x /= norm
    half = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    c = eye_avg + eye_to_mouth * 0.1
    return Quad(float(c[0]), float(c[1]), float(half), float(np.arctan2(x[1], x[0])))


def _gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """1-D Gaussian low-pass along axis 0 with edge values held (no shrinking towards zero at the ends)."""
    if sigma <= 0 or len(values) < 2:
        return values.copy()
    radius = int(np.ceil(3 * sigma))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([np.repeat(values[:1], radius, 0), values, np.repeat(values[-1:], radius, 0)])
    return np.stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(values.shape[1])], 1)


def smooth_quads(quads: list[Quad], sigma: float) -> list[Quad]:
    """Low-pass a sequence of quads: centre and log-scale and the unwrapped angle, each Gaussian(sigma).

    ``sigma`` is in frames; 0 disables smoothing. Scale is smoothed in log space so that zooms stay
    multiplicative; the angle is unwrapped first so a ±π crossing does not average to zero.
    """
    if not quads or sigma <= 0:
        return list(quads)
    arr = np.array([[q.cx, q.cy, np.log(q.half), q.angle] for q in quads], dtype=np.float64)
    arr[:, 3] = np.unwrap(arr[:, 3])
    out = _gaussian_smooth(arr, sigma)
    return [Quad(float(r[0]), float(r[1]), float(np.exp(r[2])), float(r[3])) for r in out]


def quad_transform(quad: Quad, size: int) -> CropTransform:
    """The similarity mapping the quad onto a ``size`` x ``size`` crop (quad edges = crop's outer edges).

    With pixel centres on integers the crop's centre is at ((size-1)/2, (size-1)/2) and the quad's side
    ``2*half`` spans ``size`` pixels, so ``u = (size-1)/2 + k R(-angle) (p - c)`` with ``k = size/(2 half)``.
    """
    k = size / (2.0 * quad.half)
    ca, sa = np.cos(quad.angle), np.sin(quad.angle)
    rot = k * np.array([[ca, sa], [-sa, ca]])
    centre = (size - 1) / 2.0
    t = np.array([centre, centre]) - rot @ np.array([quad.cx, quad.cy])
    return CropTransform.from_plate_to_crop(np.hstack([rot, t[:, None]]))


def transform_scale(transform: CropTransform) -> float:
    """Crop pixels per plate pixel (the similarity's uniform scale)."""
    return float(np.sqrt(abs(np.linalg.det(transform.plate_to_crop[:, :2]))))


def crop(plate: np.ndarray, transform: CropTransform, size: int) -> np.ndarray:
    """Resample the plate into crop space (float32 or uint8, any channel count).

    When the crop is much smaller than the face on the plate (4K plate, 256 crop) a plain bilinear warp
    aliases, so the plate is first box-filtered by an integer factor (cv2.INTER_AREA) and the matrix is
    adjusted to the shrunk image's pixel grid — the mapping of pixel centres stays exact.
    """
    img = np.asarray(plate)
    m = transform.plate_to_crop.copy()
    scale = transform_scale(transform)
    shrink = int(np.floor(1.0 / scale)) if scale > 0 else 1
    if shrink >= 2:
        h, w = img.shape[:2]
        sw, sh = max(1, w // shrink), max(1, h // shrink)
        img = cv2.resize(img[: sh * shrink, : sw * shrink], (sw, sh), interpolation=cv2.INTER_AREA)
        # shrunk pixel centre j sits at plate coordinate shrink*j + (shrink-1)/2
        m[:, 2] = m[:, :2] @ np.full(2, (shrink - 1) / 2.0) + m[:, 2]
        m[:, :2] = m[:, :2] * shrink
    out = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if out.ndim == 2 and np.asarray(plate).ndim == 3:
        out = out[..., None]
    return out


def paste(
    crop_image: np.ndarray,
    transform: CropTransform,
    plate_size: tuple[int, int],
    *,
    border: float = 0.0,
    interpolation: int = cv2.INTER_LINEAR,
) -> tuple[np.ndarray, np.ndarray]:
    """Put a crop-space image back into plate space at plate resolution.

    Returns ``(plate_image (H, W, C) float32, coverage_alpha (H, W) float32)``. The colour is *not*
    premultiplied: near the crop's edge it continues the crop's edge pixels, so a compositor computes
    ``plate * (1 - alpha) + image * alpha``. ``border`` feathers the alpha to zero over that many crop
    pixels inside the crop's edge (0: alpha is exactly the crop's footprint, anti-aliased at its edge).
    ``plate_size`` is (width, height).
    """
    img = np.asarray(crop_image, dtype=np.float32)
    squeeze = img.ndim == 2
    if squeeze:
        img = img[..., None]
    w, h = int(plate_size[0]), int(plate_size[1])
    s_h, s_w = img.shape[:2]
    flags = interpolation | cv2.WARP_INVERSE_MAP
    # warpAffine with WARP_INVERSE_MAP takes dst->src, i.e. plate->crop: no matrix inversion round-off.
    chans = [
        cv2.warpAffine(np.ascontiguousarray(img[..., i : i + 4]), transform.plate_to_crop, (w, h),
                       flags=flags, borderMode=cv2.BORDER_REPLICATE)
        for i in range(0, img.shape[2], 4)
    ]
    chans = [c[..., None] if c.ndim == 2 else c for c in chans]
    out = np.concatenate(chans, axis=2)
    cover = np.ones((s_h, s_w), np.float32)
    if border > 0:
        yy, xx = np.mgrid[0:s_h, 0:s_w].astype(np.float32)
        dist = np.minimum.reduce([xx + 0.5, yy + 0.5, s_w - 0.5 - xx, s_h - 0.5 - yy])
        cover = np.clip(dist / float(border), 0.0, 1.0)
        cover = cover * cover * (3.0 - 2.0 * cover)  # smoothstep: no visible kink at the feather's end
    alpha = cv2.warpAffine(cover, transform.plate_to_crop, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return (out[..., 0] if squeeze else out), alpha
