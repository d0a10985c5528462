"""Parts an edit moved within the frame (:class:`~vq_models.edits.spec.DetailMove`: a gazing iris, a raised
brow, a translated segment) as the render must draw them beyond what their labels say.

A label pixel is several plate pixels, the more the larger the face on the plate. A label map moves a part by
whole label pixels only, so a keyframed gaze would hold still for frames and then jump a label pixel. The render
takes the rest: Stage II draws the part at its whole-pixel place, and the render there is moved by the
remainder (under half a label pixel, bilinear, which at the render's own softness costs nothing the detail pass
keeps). The detail pass moves the plate's band of the part by the exact shift, so the two agree.

An edge an op places per column (a closing lid, a moving lower lip: :class:`~vq_models.edits.spec.EdgeShift`)
is no rigid move. Its rest is drawn on the finished edit in plate space (:func:`shift_edges`), render and plate
detail together, so the lashes go with the lid.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from vq_models.composite import alpha_bounds
from vq_models.detail import label_mask_to_sub
from vq_models.edits.pulls import EDGE_SMOOTH, EDGE_SMOOTH_ACROSS
from vq_models.edits.spec import DetailMove, EdgeShift
from vq_models.shot import CropTransform


def redrawn(changed: np.ndarray, moves: Sequence[DetailMove], edges: Sequence[EdgeShift] = ()) -> np.ndarray:
    """The label pixels a render must redraw: those the edits changed, those a moved part covers and those
    an edge field moves. A move under half a label pixel changes no label, and the part landing on itself
    keeps its codes; both still show the part moved."""
    out = np.asarray(changed, bool).copy()
    for move in moves:
        if move.shift != (0.0, 0.0):
            out |= move.landed
    for edge in edges:
        out |= edge.support
    return out


def move_remainders(render: np.ndarray, moves: Sequence[DetailMove], label_size: int) -> np.ndarray:
    """``render`` (R, R, C) with each moved part's render moved by its :attr:`DetailMove.remainder`, over the
    part grown by a label pixel (its trailing edge included) and kept inside its ``within`` (the lids stay)."""
    out = np.asarray(render, np.float32)
    size = out.shape[0]
    scale = size / float(label_size)
    for move in moves:
        rx, ry = move.remainder
        if rx == 0.0 and ry == 0.0:
            continue
        region = cv2.dilate(np.asarray(move.landed, np.uint8), np.ones((3, 3), np.uint8)).astype(np.float32)
        weight = cv2.GaussianBlur(cv2.resize(region, (size, size), interpolation=cv2.INTER_LINEAR), (0, 0),
                                  max(0.5 * scale, 0.3))
        if move.within is not None:
            weight *= cv2.resize(np.asarray(move.within, np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
        # each pixel takes the render from the remainder back: dst(x) = src(x - r)
        m = np.array([[1.0, 0.0, rx * scale], [0.0, 1.0, ry * scale]])
        moved = cv2.warpAffine(out, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        w = np.clip(weight, 0.0, 1.0)[..., None]
        out = out + w * (moved.reshape(out.shape) - out)
    return out


def shift_edges(image: np.ndarray, edges: Sequence[EdgeShift], sub_transform: CropTransform, crop_size: int,
                across: float = EDGE_SMOOTH_ACROSS, less_across: float | None = None) -> np.ndarray:
    """``image`` (H, W, C) on the sub-window ``sub_transform`` maps the crop to, with each edge field's rest
    drawn: every pixel moved along the crop's vertical by its label-pixel field (resampled, smoothed by
    :data:`EDGE_SMOOTH` label pixels along it and ``across`` label pixels across; Lanczos, so lashes and grain
    stay sharp between plate pixels). With ``less_across``, by that field less the one smoothed by
    ``less_across`` across: the render alone takes each column's own rest this way before the detail pass,
    and the finished edit the smooth rest after it, so the render's staircase edge lands where each column's
    value says while the plate's detail (a glasses rim crossing the lid) moves in one piece. Pixels outside
    the smoothed field are returned unchanged."""
    if not edges:
        return image
    field = np.sum([np.asarray(edge.rows, np.float32) for edge in edges], axis=0)
    if not np.any(field):
        return image
    h, w = image.shape[:2]
    per_row = sub_transform.plate_vector((0.0, crop_size / field.shape[0]))
    label_px = float(np.hypot(*per_row))
    rows = (label_mask_to_sub(np.clip(field, 0.0, None), sub_transform, crop_size, (w, h))
            - label_mask_to_sub(np.clip(-field, 0.0, None), sub_transform, crop_size, (w, h)))
    bounds = alpha_bounds(np.abs(rows))
    if bounds is None:
        return image
    sigma_y = EDGE_SMOOTH * label_px
    widest = max(across, less_across or 0.0) * label_px  # the crop's axes, near enough
    reach_y, reach_x = int(np.ceil(3.0 * sigma_y)) + 1, int(np.ceil(3.0 * widest)) + 1
    x0, y0 = max(0, bounds[0] - reach_x), max(0, bounds[1] - reach_y)
    x1, y1 = min(w, bounds[2] + reach_x), min(h, bounds[3] + reach_y)
    window = np.ascontiguousarray(rows[y0:y1, x0:x1])

    def smoothed(sigma_x: float) -> np.ndarray:
        return cv2.GaussianBlur(window, (0, 0), sigmaX=sigma_x, sigmaY=sigma_y, borderType=cv2.BORDER_CONSTANT)

    rows = smoothed(across * label_px)
    if less_across is not None:
        rows = rows - smoothed(less_across * label_px)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    # each pixel takes the image from its shift back: dst(p) = src(p - d(p))
    map_x = xs - (rows * per_row[0]).astype(np.float32)
    map_y = ys - (rows * per_row[1]).astype(np.float32)
    out = np.array(image, np.float32, copy=True)
    moved = cv2.remap(out, map_x, map_y, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)
    box = out[y0:y1, x0:x1]
    box[...] = np.where((rows != 0.0).reshape(rows.shape + (1,) * (box.ndim - 2)), moved.reshape(box.shape), box)
    return out


def shift_render_edges(render: np.ndarray, edges: Sequence[EdgeShift], sub_transform: CropTransform,
                       crop_size: int) -> np.ndarray:
    """The pasted render (before the detail pass) with each column's own rest less the smooth rest that
    :func:`shift_edges` then gives the finished edit: together the render's staircase edge lands where each
    column's value says, and the plate's detail moves in one piece."""
    return shift_edges(render, edges, sub_transform, crop_size, across=EDGE_SMOOTH, less_across=EDGE_SMOOTH_ACROSS)
