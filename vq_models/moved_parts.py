"""Parts an edit moved within the frame (:class:`~vq_models.edits.spec.DetailMove`: a gazing iris, a raised
brow, a translated segment) as the render must draw them beyond what their labels say.

A label pixel is several plate pixels, the more the larger the face on the plate. A label map moves a part by
whole label pixels only, so a keyframed gaze would hold still for frames and then jump a label pixel. The render takes the rest: Stage II draws the part at its whole-pixel place, and the render there is
moved by the remainder (under half a label pixel, bilinear, which at the render's own softness costs nothing
the detail pass keeps). The detail pass moves the plate's band of the part by the exact shift, so the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from vq_models.edits.spec import DetailMove


def redrawn(changed: np.ndarray, moves: Sequence[DetailMove]) -> np.ndarray:
    """The label pixels a render must redraw: those the edits changed and those a moved part covers. A move
    under half a label pixel changes no label, and the part landing on itself keeps its codes; both still
    show the part moved."""
    out = np.asarray(changed, bool).copy()
    for move in moves:
        if move.shift != (0.0, 0.0):
            out |= move.landed
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
