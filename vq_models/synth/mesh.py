"""A MediaPipe-topology face mesh for the synthetic face, so synthetic shots prep through the 3D overlay.

Why: ``vqedit prep`` renders the lower face from the tracker's 478-point mesh (``face/overlay.py``); a
tracking file without one falls back to the flat 2D polygons. Giving ``vqedit synth`` a mesh per frame
lets the tests and benchmarks run the 3D path (training, expression transfer) on shots with ground
truth.

How (cheap, and consistent with what is drawn): the neutral template :data:`~vq_models.face.mesh_data.TEMPLATE`
lives in the same eye frame as :func:`~vq_models.face.expression.to_canonical` (image-left eye at
(-1, 0), image-right at (1, 0)). In that frame the mesh's outline loops are put *on the drawn outlines*:

* the eyes and both lip loops are split at their corners into an upper and a lower chain, and every
  mesh vertex of a chain takes the drawn chain's point at the same position between the corners
  (the lips are measured between the *outer* corners, so the template's inner corners stay just inside;
  the lower chains follow the drawn mouth opening, a closed mouth gives touching inner chains);
* the face oval's vertices take the drawn oval's point in the same direction from the oval's centre;
* the nose tip, the two iris centres and the mouth corners take the drawn landmarks (so
  :func:`~vq_models.face.topology.landmarks5_from_mesh` agrees with the drawn landmarks5).

Every other vertex follows by a thin-plate spline through those control displacements (smooth, exact at
the controls). The controls' template positions never change, so the spline is a fixed linear map from
control positions to all vertices, built once; a frame costs one small matrix product. Depth is the
template's (in eye-frame units), i.e. the synthetic face has the template's relief; its fake yaw is
already in the drawn 2D positions.
"""

from __future__ import annotations

import functools

import numpy as np

from vq_models.face import topology
from vq_models.face.expression import from_canonical, to_canonical
from vq_models.face.mesh_data import TEMPLATE, TRIANGLES
from vq_models.face.overlay import lip_triangles
from vq_models.synth.face_model import FaceGeometry

#: Thin-plate spline regulariser (eye-frame units²): a hair of smoothing for conditioning only.
_TPS_REG = 1e-6
#: How far (eye-frame units) the template's jaw is dropped before it is warped (see :func:`_source`).
SOURCE_OPENING = 0.45


def _chains(poly: np.ndarray, corners: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray, int, int]:
    """A closed polygon split at two corners (default: its leftmost and rightmost points): (upper, lower)
    index paths from the left corner to the right one, and the two corner indices."""
    n = len(poly)
    left, right = corners if corners is not None else (int(np.argmin(poly[:, 0])), int(np.argmax(poly[:, 0])))
    a = np.array([(left + k) % n for k in range((right - left) % n + 1)])
    b = np.array([(left - k) % n for k in range((left - right) % n + 1)])
    upper, lower = (a, b) if poly[a, 1].mean() <= poly[b, 1].mean() else (b, a)
    return upper, lower, left, right


def _chain_y(poly: np.ndarray, chain: np.ndarray, x: np.ndarray) -> np.ndarray:
    pts = poly[chain]
    order = np.argsort(pts[:, 0], kind="stable")
    return np.interp(x, pts[order, 0], pts[order, 1])


@functools.cache
def _loop_layout(loop: tuple[int, ...], frame: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a template loop: each vertex's position u in [0, 1] between the corners of ``frame`` (two
    vertex ids, which are the loop's corners when they are on it; default the loop's leftmost and
    rightmost vertices) and its side (-1 upper, +1 lower, 0 a corner)."""
    ids = np.array(loop)
    pts = TEMPLATE[ids, :2]
    own = frame is not None and frame[0] in loop and frame[1] in loop
    upper, lower, left, right = _chains(pts, (loop.index(frame[0]), loop.index(frame[1])) if own else None)
    x0, x1 = (pts[left, 0], pts[right, 0]) if frame is None else (TEMPLATE[frame[0], 0], TEMPLATE[frame[1], 0])
    u = (pts[:, 0] - x0) / (x1 - x0)
    side = np.zeros(len(ids))
    side[upper] = -1.0
    side[lower] = 1.0
    side[[left, right]] = 0.0
    return ids, u, side


def _on_chains(drawn: np.ndarray, loop: list[int], frame: tuple[int, int] | None,
               drawn_frame: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(vertex ids, their positions on the drawn polygon ``drawn``) for a corner-split loop."""
    ids, u, side = _loop_layout(tuple(loop), frame)
    upper, lower, left, right = _chains(drawn)
    box = drawn if drawn_frame is None else drawn_frame
    x0, x1 = box[:, 0].min(), box[:, 0].max()
    x = x0 + u * (x1 - x0)
    yu, yl = _chain_y(drawn, upper, x), _chain_y(drawn, lower, x)
    y = np.where(side < 0, yu, np.where(side > 0, yl, (yu + yl) / 2))
    return ids, np.stack([x, y], 1)


def _on_oval(drawn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The face-oval vertices on the drawn (convex) oval, matched by direction from each oval's centre."""
    ids = np.array(topology.FACE_OVAL)
    src = TEMPLATE[ids, :2]
    angle = np.arctan2(*(src - src.mean(0)).T[::-1])
    c = drawn.mean(0)
    d = drawn - c
    theta, radius = np.arctan2(d[:, 1], d[:, 0]), np.hypot(d[:, 0], d[:, 1])
    order = np.argsort(theta)
    r = np.interp(angle, theta[order], radius[order], period=2 * np.pi)
    return ids, c + np.stack([np.cos(angle), np.sin(angle)], 1) * r[:, None]


def _control_ids() -> np.ndarray:
    return np.array(
        topology.FACE_OVAL + topology.LEFT_EYE + topology.RIGHT_EYE + topology.LIPS_OUTER
        + topology.LIPS_INNER + [topology.NOSE_TIP, topology.LEFT_IRIS_CENTRE, topology.RIGHT_IRIS_CENTRE]
    )


def open_jaw(canon: np.ndarray, amount: float) -> np.ndarray:
    """A template-frame mesh with its jaw dropped by ``amount`` (y down): the lower lip loops and the lower
    lip's body move all the way, the upper lip and the corners stay, the skin below the corners follows
    over a short ramp (so the chin drops with the jaw), which opens the mesh's mouth hole."""
    out = np.array(canon, np.float64, copy=True)
    corner_y = out[[topology.LIPS_INNER[0], topology.LIPS_INNER[10]], 1].mean()
    weight = np.clip((out[:, 1] - corner_y) / 0.3, 0.0, 1.0)
    lip_body = np.unique(TRIANGLES[lip_triangles()])
    weight[lip_body] = out[lip_body, 1] > corner_y  # the lower lip moves as one piece
    weight[topology.LIPS_INNER[1:10] + topology.LIPS_OUTER[1:10]] = 1.0
    weight[topology.LIPS_INNER[11:] + topology.LIPS_OUTER[11:] + [topology.LIPS_INNER[0], topology.LIPS_INNER[10]]] = 0.0
    out[:, 1] += amount * weight
    return out


@functools.cache
def _spline() -> np.ndarray:
    """(478, C): the vertices' positions as a linear map of the C controls' positions (TPS).

    The spline starts from the template with its mouth *open* (:data:`SOURCE_OPENING`): the template's
    inner lips touch, and a spline that had to tear two touching controls apart (an open drawn mouth)
    would ring all over the lower face; from a half-open source, opening and closing are both a smooth
    stretch or squeeze of the skin between the lips and the chin."""
    ids = _control_ids()
    source = open_jaw(TEMPLATE[:, :2], SOURCE_OPENING)
    src = source[ids]
    n = len(src)

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        r2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return 0.5 * r2 * np.log(np.where(r2 > 0, r2, 1.0))  # r² log r

    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = kernel(src, src) + _TPS_REG * np.eye(n)
    system[:n, n] = system[n, :n] = 1.0
    system[:n, n + 1 :] = src
    system[n + 1 :, :n] = src.T
    allv = source
    evaluate = np.hstack([kernel(allv, src), np.ones((len(allv), 1)), allv])
    out = evaluate @ np.linalg.inv(system)[:, :n]
    out.setflags(write=False)
    return out


def synth_mesh(geom: FaceGeometry) -> np.ndarray:
    """The 478-point mesh (x, y plate pixels, z in the same pixel scale) of one drawn synthetic frame."""
    lm5 = geom.landmarks5()
    contours = geom.contours()
    canon = {k: to_canonical(v, lm5) for k, v in contours.items()}
    targets: dict[int, np.ndarray] = {}

    def put(ids: np.ndarray, pos: np.ndarray) -> None:
        targets.update(zip(ids.tolist(), pos, strict=True))

    put(*_on_oval(canon["face_oval"]))
    put(*_on_chains(canon["left_eye"], topology.LEFT_EYE, None))
    put(*_on_chains(canon["right_eye"], topology.RIGHT_EYE, None))
    lips_frame = (topology.MOUTH_LEFT, topology.MOUTH_RIGHT)
    put(*_on_chains(canon["lips_outer"], topology.LIPS_OUTER, lips_frame))
    put(*_on_chains(canon["lips_inner"], topology.LIPS_INNER, lips_frame, drawn_frame=canon["lips_outer"]))
    lm_canon = to_canonical(lm5, lm5)
    # the drawn corners are landmarks of their own (the lips keep a little thickness there)
    put(
        np.array([topology.NOSE_TIP, topology.LEFT_IRIS_CENTRE, topology.RIGHT_IRIS_CENTRE,
                  topology.MOUTH_LEFT, topology.MOUTH_RIGHT]),
        lm_canon[[2, 0, 1, 3, 4]],
    )
    control = np.array([targets[i] for i in _control_ids().tolist()])
    xy = _spline() @ control
    mesh = np.hstack([xy, TEMPLATE[:, 2:3]])
    return from_canonical(mesh, lm5)
