"""Paint mattes: a plate-space matte (a host's ``paint`` input) turned into label-map pixels to repaint.

A compositor paints in plate space, over the plate, with the host's own tools; the label map lives in
crop space at label size. This module maps one onto the other through the frame's crop transform (each
label pixel's centre is looked up in the matte, nearest plate pixel) and paints the selected pixels with
one segment's code. Only pixels inside the matte change, so the render's edit alpha stays inside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vq_models.edits.ops import pick_code
from vq_models.edits.prior import Prior
from vq_models.errors import InputError

Window = tuple[int, int, int, int]


def matte_to_label_mask(matte: np.ndarray, window: Window, transform: Any, crop_size: int, label_size: int,
                        threshold: float = 0.5) -> np.ndarray:
    """bool (L, L): label pixels whose centre falls on a matte pixel ≥ ``threshold``.

    ``matte`` is (h, w) covering ``window`` (x, y, w, h) in plate display coordinates (pixel centres at
    integers, the centre of the top-left plate pixel is (0, 0)); outside it the matte is 0. ``transform``
    is the frame's :class:`~vq_models.shot.CropTransform`.
    """
    m = np.asarray(matte, dtype=np.float32)
    if m.ndim != 2:
        raise InputError(f"paint matte: expected one channel (h, w), got shape {list(m.shape)}")
    L = int(label_size)
    s = float(crop_size) / L
    centres = (np.arange(L, dtype=np.float64) + 0.5) * s - 0.5
    gx, gy = np.meshgrid(centres, centres)
    plate = transform.to_plate(np.stack([gx.ravel(), gy.ravel()], axis=1))
    px = np.rint(plate[:, 0]).astype(np.int64) - int(window[0])
    py = np.rint(plate[:, 1]).astype(np.int64) - int(window[1])
    h, w = m.shape
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    out = np.zeros(L * L, bool)
    out[inside] = m[py[inside], px[inside]] >= threshold
    return out.reshape(L, L)


def paint_code(labels: np.ndarray, target: str | int, prior: Prior | None, num_codes: int,
               within: np.ndarray | None = None) -> int:
    """The code a painted pixel takes: a code given as an int (or digits), else the segment's code that is
    most frequent in this frame (see :func:`vq_models.edits.ops.pick_code`)."""
    if isinstance(target, str) and target.strip().isdigit():
        target = int(target.strip())
    if isinstance(target, int):
        if not 0 <= target < num_codes:
            raise InputError(f"paint_segment: code {target} out of range 0..{num_codes - 1}")
        return target
    if prior is None:
        raise InputError("paint_segment: the model has no artist prior, so only a code (digits) can be painted")
    if not prior.has(target):
        known = ", ".join(sorted(prior.segments))
        raise InputError(f"paint_segment: unknown segment {target!r} (the prior has: {known})")
    return pick_code(labels, prior, target, within=within if within is not None and within.any() else None)


def apply_matte(labels: np.ndarray, mask: np.ndarray, target: str | int, prior: Prior | None, num_codes: int) -> np.ndarray:
    """``labels`` with the pixels of ``mask`` painted with ``target`` (a segment name or a code)."""
    out = np.array(labels, dtype=np.uint8, copy=True)
    if mask.any():
        out[mask] = paint_code(labels, target, prior, num_codes, within=mask)
    return out
