"""Paste-back: the alpha of an edit in plate space and the render-over-plate composite (paper Sec. 4.3).

The paper finds plain alpha blending of the re-rendered face into the footage sufficient, because the
renderer in essence in-paints the edited region. For a compositor the important property is the
converse: pixels the edit did not touch must come back from the plate *bit for bit*, so the alpha is
built from the exact changed mask of the label edit and :func:`composite_over` selects the plate
wherever alpha is exactly 0 instead of blending there.

Scaling convention. A shot's :class:`~vq_models.shot.CropTransform` maps plate pixels to a crop of
``crop_size`` pixels. Label maps (``L``) and renders (``R``) may have another size; their transform is
the crop transform rescaled with the pixel-centre rule ``u_size = (u_crop + 0.5) * size / crop_size - 0.5``
(:func:`scale_transform`). Functions below take ``crop_size`` and do that rescaling for you; pass
``crop_size=None`` when ``transform`` is already at the image's own scale.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import cv2
import numpy as np

from vq_models.io.images import ImageData
from vq_models.shot import CropTransform

# Stage II draws an edit a little beyond the labels that changed: its convolutions shade the skin next to a
# closed lid or a moved pupil too. An edit's alpha therefore starts from the changed labels grown by this many
# label pixels (a render-scale distance, so it follows the face's size on the plate), before the plate-pixel
# feather. lp_d13's blink what-if gains from it (benchmarks/RESULTS.md).
RENDER_REACH_PX = 2


def scale_transform(transform: CropTransform, crop_size: int, size: int) -> CropTransform:
    """The crop transform for a square image of ``size`` pixels covering the same crop as ``crop_size``."""
    k = float(size) / float(crop_size)
    m = np.asarray(transform.plate_to_crop, dtype=np.float64) * k
    m[:, 2] += 0.5 * k - 0.5
    return CropTransform.from_plate_to_crop(m)


def _at_scale(transform: CropTransform, crop_size: int | None, size: int) -> CropTransform:
    return transform if crop_size is None or int(crop_size) == int(size) else scale_transform(transform, crop_size, size)


def paste_to_plate(crop_image: np.ndarray, transform: CropTransform, plate_size: tuple[int, int],
                   crop_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Crop-space image (S', S', C) → (plate-space image (H, W, C), coverage (H, W)), bilinear.

    Delegates to :func:`vq_models.face.align.paste` so crop and paste share one resampling convention.
    """
    from vq_models.face.align import paste

    img = np.asarray(crop_image, dtype=np.float32)
    return paste(img, _at_scale(transform, crop_size, img.shape[0]), plate_size)


def distance_inside(mask: np.ndarray) -> np.ndarray:
    """Per pixel of ``mask`` (bool), the distance in pixels to the nearest pixel outside it (0 outside), float32.

    OpenCV's 5×5 chamfer, not its exact ``DIST_MASK_PRECISE``: the exact transform gave a different float32
    in a few pixels from one call to the next within one process (2 of 60 calls, after renders had run), so
    two renders of one frame differed in alpha by one ULP. The chamfer runs two sequential passes and is
    within 2 % of the Euclidean distance, plenty for a feather ramp."""
    return cv2.distanceTransform(np.asarray(mask, bool).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)


def _smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3.0 - 2.0 * t)


def changed_mask_to_plate(changed_crop_mask: np.ndarray, transform: CropTransform, plate_size: tuple[int, int],
                          crop_size: int | None = None) -> np.ndarray:
    """Boolean plate mask of every plate pixel whose bilinear footprint touches a changed crop pixel
    (conservative: a changed crop pixel is never lost, even when the crop is much finer than the plate)."""
    mask = np.asarray(changed_crop_mask, dtype=bool)
    if not mask.any():
        w, h = int(plate_size[0]), int(plate_size[1])
        return np.zeros((h, w), bool)
    tf = _at_scale(transform, crop_size, mask.shape[0])
    per_plate_px = float(np.sqrt(abs(np.linalg.det(tf.plate_to_crop[:, :2]))))
    if per_plate_px > 1.0:
        # Mask finer than the plate: a one-pixel change could fall between bilinear samples, so grow it by
        # one plate pixel's worth of mask pixels first.
        r = int(np.ceil(per_plate_px))
        mask = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r + 1, 2 * r + 1)))
    warped, cover = paste_to_plate(mask.astype(np.float32), tf, plate_size)
    return (warped * cover) > 1e-4


def edit_alpha(
    changed_crop_mask: np.ndarray,
    transform: CropTransform,
    plate_size: tuple[int, int],
    feather_px: float,
    face_mask_plate: np.ndarray | None = None,
    crop_size: int | None = None,
    reach_px: int = 0,
) -> np.ndarray:
    """Alpha (H, W) float32 for an edit: 1 on the changed pixels (mapped to the plate), falling smoothly
    to 0 over ``feather_px`` plate pixels outside them (0 beyond: the mask dilated by ``feather_px`` is the
    support), multiplied by the face mask when given so the edit never bleeds into the background.
    ``reach_px`` first grows the changed mask by that many of its own pixels (see :data:`RENDER_REACH_PX`).

    ``changed_crop_mask`` is (L, L) at label (or render) scale; ``crop_size`` is the size ``transform``
    was made for (None when they agree). ``plate_size`` is (width, height).
    """
    mask = np.asarray(changed_crop_mask, dtype=bool)
    if reach_px > 0 and mask.any():
        r = int(reach_px)
        grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        mask = cv2.dilate(mask.astype(np.uint8), grow).astype(bool)
    changed = changed_mask_to_plate(mask, transform, plate_size, crop_size)
    h, w = changed.shape
    if not changed.any():
        return np.zeros((h, w), np.float32)
    f = max(0.0, float(feather_px))
    if f <= 0:
        alpha = changed.astype(np.float32)
    else:
        dist = distance_inside(~changed)
        ramp = 1.0 - _smoothstep(np.clip(dist / (f + 1.0), 0.0, 1.0))
        alpha = np.where(dist <= f, ramp, 0.0).astype(np.float32)
    if face_mask_plate is not None:
        face = np.asarray(face_mask_plate, dtype=np.float32)
        if face.shape != alpha.shape:
            raise ValueError(f"face mask {face.shape} does not match the plate {alpha.shape}")
        alpha = alpha * np.clip(face, 0.0, 1.0)
    return alpha.astype(np.float32)


def face_alpha(
    face_mask_crop: np.ndarray,
    transform: CropTransform,
    plate_size: tuple[int, int],
    feather_px: float,
    crop_size: int | None = None,
) -> np.ndarray:
    """Alpha for ``identity`` renders (the whole face replaced): the foreground mask in plate space,
    feathered *inward* over ``feather_px`` so nothing outside the face is ever touched."""
    soft = np.asarray(face_mask_crop, dtype=np.float32)
    warped, cover = paste_to_plate(soft, transform, plate_size, crop_size)
    inside = (warped * cover) >= 0.5
    if not inside.any():
        return np.zeros(inside.shape, np.float32)
    f = max(0.0, float(feather_px))
    if f <= 0:
        return inside.astype(np.float32)
    dist = distance_inside(inside)
    return _smoothstep(np.clip(dist / (f + 1.0), 0.0, 1.0)).astype(np.float32)


def composite_over(render_rgb_plate: np.ndarray, alpha: np.ndarray, plate_rgb: np.ndarray) -> np.ndarray:
    """``render * alpha + plate * (1 - alpha)`` on the colour channels, in the plate's colour space.

    Where alpha is exactly 0 the plate is returned bit for bit (selected with ``np.where``, never
    blended), and channels beyond the first three (plate alpha, depth ...) are always the plate's.
    The caller converts the render to the plate's colour space first (linear for EXR plates).
    """
    plate = np.asarray(plate_rgb)
    a = np.asarray(alpha, dtype=np.float32)
    render = np.asarray(render_rgb_plate, dtype=np.float32)
    if plate.ndim == 2:
        plate = plate[..., None]
    if a.shape != plate.shape[:2] or render.shape[:2] != plate.shape[:2]:
        raise ValueError(f"composite_over: render {render.shape}, alpha {a.shape}, plate {plate.shape} differ")
    c = min(3, plate.shape[2], render.shape[2])
    out = plate.copy()
    p = plate[..., :c].astype(np.float32)
    blend = render[..., :c] * a[..., None] + p * (1.0 - a[..., None])
    out[..., :c] = np.where(a[..., None] > 0, blend.astype(plate.dtype), plate[..., :c])
    return out if np.asarray(plate_rgb).ndim == 3 else out[..., 0]


def premultiplied_rgba(render: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(H, W, 4) float32 premultiplied RGBA for ``--passes`` (what Nuke's Merge over expects)."""
    a = np.asarray(alpha, dtype=np.float32)[..., None]
    rgb = np.asarray(render, dtype=np.float32)[..., :3]
    return np.concatenate([rgb * a, a], axis=2)


def composite_image(render_full: np.ndarray, alpha_full: np.ndarray, plate: Any) -> Any:
    """Composite over a :class:`vq_models.io.images.ImageData`, keeping its data and display windows.

    ``render_full`` / ``alpha_full`` cover the plate's display window (what the transforms refer to);
    the plate's pixels cover its data window, which may be smaller, larger or offset. Only the overlap is
    blended; everything else, and all metadata, is the plate's.
    """
    dx, dy, dw, dh = plate.data_window
    ox, oy, ow, oh = plate.display_window
    alpha_dw = np.zeros((dh, dw), np.float32)
    render_dw = np.zeros((dh, dw, 3), np.float32)
    x0, y0 = max(dx, ox), max(dy, oy)
    x1, y1 = min(dx + dw, ox + ow), min(dy + dh, oy + oh)
    if x1 > x0 and y1 > y0:
        alpha_dw[y0 - dy:y1 - dy, x0 - dx:x1 - dx] = alpha_full[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
        render_dw[y0 - dy:y1 - dy, x0 - dx:x1 - dx] = render_full[y0 - oy:y1 - oy, x0 - ox:x1 - ox, :3]
    pixels = np.asarray(plate.pixels)
    idx = [plate.channel_index(n) for n in ("R", "G", "B")]
    if any(i is None for i in idx):
        idx = list(range(min(3, pixels.shape[2])))
    out = pixels.copy()
    out[..., idx] = composite_over(render_dw, alpha_dw, pixels[..., idx])
    return dataclasses.replace(plate, pixels=out)


def alpha_bounds(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), end-exclusive, of ``alpha > 0`` in the array's own pixels, or None when empty. From
    row and column reductions: ``np.nonzero`` lists every covered pixel only to keep four numbers, which on a
    1024² face cost as much as the rest of the composite."""
    inside = np.asarray(alpha) > 0
    ys, xs = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if not ys.size:
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def composite_in_box(rgb: np.ndarray, alpha: np.ndarray, window: tuple[int, int, int, int], plate: Any) -> Any:
    """:func:`vq_models.composite.composite_image` of ``rgb``/``alpha`` (covering ``window``, display
    coordinates) over ``plate`` (ImageData), done only inside the bounding box of ``alpha > 0``.

    The result is the same as compositing the whole frame (outside the box the plate is returned as is),
    but a face on a 2K/4K plate costs its own size, not the plate's: the host and the CLI both use this.
    """
    out = np.array(plate.pixels, copy=True)
    bounds = alpha_bounds(alpha)
    if bounds is not None:
        wx, wy = int(window[0]), int(window[1])
        dx, dy, dw, dh = plate.data_window
        x0, y0 = max(wx + bounds[0], dx), max(wy + bounds[1], dy)
        x1, y1 = min(wx + bounds[2], dx + dw), min(wy + bounds[3], dy + dh)
        if x1 > x0 and y1 > y0:
            box = (x0, y0, x1 - x0, y1 - y0)
            sub = ImageData(out[y0 - dy:y1 - dy, x0 - dx:x1 - dx], list(plate.channels), box, box)
            rows, cols = slice(y0 - wy, y1 - wy), slice(x0 - wx, x1 - wx)
            out[y0 - dy:y1 - dy, x0 - dx:x1 - dx] = composite_image(rgb[rows, cols], alpha[rows, cols], sub).pixels
    return dataclasses.replace(plate, pixels=out)
