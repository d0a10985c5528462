"""MediaPipe 478-point face mesh topology: named contours and the 5-point landmarks.

These index lists are the mesh's well-known outlines (face oval, brows, eyes, irises, nose, lips),
written out here as ordered closed polygons so that nothing outside :mod:`vq_models.face.tracker` needs
mediapipe. Naming follows our tracking schema, where "left" means the *image* left: MediaPipe's
"right eye" (indices 33/133/...) is the subject's right eye, which appears on the image left in an
unmirrored frontal view, so it becomes our ``left_eye``.
"""

from __future__ import annotations

import numpy as np

NUM_MESH_POINTS = 478

FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
# Subject's right side = image left.
LEFT_EYE = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]
RIGHT_EYE = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466]
LEFT_BROW = [70, 63, 105, 66, 107, 55, 65, 52, 53, 46]
RIGHT_BROW = [300, 293, 334, 296, 336, 285, 295, 282, 283, 276]
LEFT_IRIS = [469, 470, 471, 472]
RIGHT_IRIS = [474, 475, 476, 477]
LEFT_IRIS_CENTRE = 468
RIGHT_IRIS_CENTRE = 473
# each eye's corners (outer, inner canthus): the first and middle points of its outline
LEFT_EYE_CORNERS = (33, 133)
RIGHT_EYE_CORNERS = (263, 362)
NOSE = [168, 220, 115, 48, 64, 98, 97, 2, 326, 327, 294, 278, 344, 440]
NOSE_TIP = 1
LIPS_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
LIPS_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191]
MOUTH_LEFT = 61   # image-left mouth corner (subject's right)
MOUTH_RIGHT = 291

CONTOURS: dict[str, list[int]] = {
    "face_oval": FACE_OVAL,
    "left_brow": LEFT_BROW,
    "right_brow": RIGHT_BROW,
    "left_eye": LEFT_EYE,
    "right_eye": RIGHT_EYE,
    "left_iris": LEFT_IRIS,
    "right_iris": RIGHT_IRIS,
    "nose": NOSE,
    "lips_outer": LIPS_OUTER,
    "lips_inner": LIPS_INNER,
}


#: how :func:`landmarks5_from_mesh` places an eye's centre; prep records it in shot.json's ``prep`` so a shot
#: aligned by an older convention (``None``: the iris centres, before 2026-12-07) can be told apart
#: (:meth:`vq_models.shot.Shot.stale_alignment`)
EYE_CENTRES = "corners"


def landmarks5_from_mesh(mesh: np.ndarray) -> np.ndarray:
    """The schema's 5 points from a 468/478-point mesh: eye centres, nose tip, mouth corners.

    An eye's centre is the midpoint of its two corners, which sit on the skull. Why not the iris centre or
    the outline's mean: the crop is aligned on these points, and both move with the eye. The iris follows the
    gaze and the outline's mean drops as the lid closes, so every glance and blink moved the whole crop, and
    everything compared or borrowed across frames in crop space (plate detail from a donor frame, a borrowed
    closed eye, the what-ifs) carried that shift (``benchmarks/crop_stability.py``)."""
    m = np.asarray(mesh, dtype=np.float64)[:, :2]
    left, right = m[list(LEFT_EYE_CORNERS)].mean(0), m[list(RIGHT_EYE_CORNERS)].mean(0)
    return np.stack([left, right, m[NOSE_TIP], m[MOUTH_LEFT], m[MOUTH_RIGHT]])


def contours_from_mesh(mesh: np.ndarray) -> dict[str, np.ndarray]:
    """Named closed polygons (N, 2) from the mesh, in the mesh's own 2D coordinates."""
    m = np.asarray(mesh, dtype=np.float64)[:, :2]
    return {name: m[idx].copy() for name, idx in CONTOURS.items() if max(idx) < len(m)}
