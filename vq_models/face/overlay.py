"""Local face overlay: the lower face rendered with flat per-region albedo over the aligned crop (ĉ).

The paper renders the lower face of a fitted 3D face model with a neutral albedo over each input frame
(h_i over c_i gives ĉ_i); Stage I learns its labels from ĉ, so changing the face model's expression
changes the labels, hence the render. Flat, texture-free colours for the lower-face skin, the lips and the
mouth interior make the overlay carry mouth *articulation* and head pose, not the plate's appearance.

Two renderers, one region:

* **3D** (``mesh`` given, the tracker's 478-point MediaPipe mesh in crop pixels with z): the mesh's
  triangles (:mod:`vq_models.face.mesh_data`) are rasterised with a z-buffer
  (:mod:`vq_models.face.raster`), so what is hidden stays hidden (the far cheek of a turned head, the
  lips rolled over the mouth), and the skin is shaded with smooth vertex normals under one fixed, mostly
  ambient light, so the surface's shape (jaw, chin, cheeks) reaches Stage I and changes when the mesh does.
  The lips keep their flat albedo: shaded lips split Stage I's lip codes by lip volume (29 lower-lip codes
  instead of 17 on the synthetic acceptance shot) and took them from the mouth interior and the pupils,
  while the lips' silhouette already carries their articulation. Where the mesh has its mouth hole, the
  inner-lip polygon is filled *behind* the surface with the mouth-interior albedo.
* **2D** (no mesh: 5-point or contour-only tracking files): the flat polygons of the contours, unshaded.

Both paint the same region (:func:`overlay_masks`): the face below a line just under the nose (the cut of
:func:`lower_face_polygon`), the lips, the mouth interior. Rendering is supersampled and box-filtered so
edges are anti-aliased like the masks, is deterministic (same input, same bytes), and is the same code in
``prep`` and at edit time: both render a frame through :func:`frame_overlay`, and a shot keeps the
renderer it was prepped with (:func:`shot_overlay_kind`).
"""

from __future__ import annotations

import collections
import functools
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from vq_models.errors import InputError
from vq_models.face import topology
from vq_models.face.masks import polygon_mask
from vq_models.face.mesh_data import TRIANGLES
from vq_models.face.raster import rasterize
from vq_models.shot import CropTransform
from vq_models.tracking.schema import FrameTrack

SKIN_ALBEDO = (0.80, 0.62, 0.52)
LIPS_ALBEDO = (0.66, 0.28, 0.30)
MOUTH_ALBEDO = (0.12, 0.03, 0.04)

#: Direction *towards* the light in crop space (x right, y down, z away from the camera): above, a little
#: to the image left, mostly frontal, so a frontal face is lit evenly and turning it shows.
LIGHT_DIR: tuple[float, float, float] = tuple(
    np.array([-0.25, -0.25, -0.93]) / np.linalg.norm([-0.25, -0.25, -0.93])
)
#: Share of the light that does not depend on the normal: high, so the shading says where the jaw and chin
#: turn without becoming a texture Stage I spends its codes on.
AMBIENT = 0.65

#: Which renderer drew a frame (:attr:`FrameOverlay.kind`; prep records the shot's in shot.json).
OVERLAY_3D = "mesh-3d"
OVERLAY_2D = "contours-2d"
#: A shot where some frames had a mesh and some not (prep lists the 2D ones).
OVERLAY_MIXED = "mixed"
#: every renderer name prep can be asked for and shot.json can record
OVERLAY_KINDS = (OVERLAY_MIXED, OVERLAY_3D, OVERLAY_2D)

MIN_MESH_POINTS = 468  # the triangles index the 468 surface points; the 10 iris points are not used


def mesh_to_crop(mesh: np.ndarray, transform: CropTransform) -> np.ndarray:
    """A plate-pixel mesh (N, 3) in crop pixels: x, y through the similarity, z scaled by its scale."""
    m = np.asarray(mesh, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(transform.plate_to_crop[:, :2]))))
    return np.hstack([transform.to_crop(m[:, :2]), m[:, 2:3] * scale])


def _cut(landmarks5: np.ndarray) -> tuple[np.ndarray, float]:
    """The face's down axis and the offset of the lower-face cut along it (just under the nose tip)."""
    lm = np.asarray(landmarks5, np.float64).reshape(5, 2)
    eyes, mouth = (lm[0] + lm[1]) / 2, (lm[3] + lm[4]) / 2
    down = mouth - eyes
    down /= max(np.hypot(*down), 1e-9)
    return down, float((lm[2] + 0.3 * (mouth - lm[2])) @ down)


def lower_face_polygon(contours: dict[str, np.ndarray], landmarks5: np.ndarray) -> np.ndarray | None:
    """The part of the face oval below the nose (cut just under the nose tip, across the face's axis)."""
    oval = contours.get("face_oval")
    if oval is None or len(oval) < 3:
        return None
    down, cut = _cut(landmarks5)
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


# --- the 3D renderer ---------------------------------------------------------------------------------


@functools.cache
def lip_triangles() -> np.ndarray:
    """Boolean (T,) over :data:`TRIANGLES`: the ring between the outer and the inner lip loops.

    Found by flooding the triangle adjacency from the triangles on the inner loop (the mouth hole's rim)
    without crossing an edge of the outer loop, so it follows the mesh's own lip border.
    """

    def loop_edges(loop: list[int]) -> set[tuple[int, int]]:
        return {tuple(sorted((a, b))) for a, b in zip(loop, loop[1:] + loop[:1], strict=True)}

    outer, inner = loop_edges(topology.LIPS_OUTER), loop_edges(topology.LIPS_INNER)
    by_edge: dict[tuple[int, int], list[int]] = collections.defaultdict(list)
    for i, (a, b, c) in enumerate(TRIANGLES.tolist()):
        for e in ((a, b), (b, c), (c, a)):
            by_edge[tuple(sorted(e))].append(i)
    lips = np.zeros(len(TRIANGLES), bool)
    queue = collections.deque(i for e in inner for i in by_edge.get(e, []))
    while queue:
        i = queue.popleft()
        if lips[i]:
            continue
        lips[i] = True
        a, b, c = TRIANGLES[i].tolist()
        for e in ((a, b), (b, c), (c, a)):
            e = tuple(sorted(e))
            if e not in outer:
                queue.extend(j for j in by_edge[e] if not lips[j])
    return lips


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Smooth unit normals (N, 3): area-weighted sums of the adjacent faces' normals, facing the camera.

    The winding of :data:`TRIANGLES` faces the camera on a frontal face; the sign is still checked on the
    whole surface (the area-weighted mean normal must point to -z) so a tracking file with the opposite
    z convention shades the same.
    """
    v = np.asarray(vertices, np.float64)
    p0, p1, p2 = v[triangles[:, 0]], v[triangles[:, 1]], v[triangles[:, 2]]
    face = np.cross(p1 - p0, p2 - p0)  # length = twice the area: area weighting for free
    if face[:, 2].sum() > 0:
        face = -face
    acc = np.zeros_like(v)
    for i in range(3):
        np.add.at(acc, triangles[:, i], face)
    norm = np.linalg.norm(acc, axis=1, keepdims=True)
    return np.divide(acc, norm, out=np.tile([0.0, 0.0, -1.0], (len(v), 1)), where=norm > 1e-12)


def shading(normals: np.ndarray) -> np.ndarray:
    """Lambert shade of unit ``normals`` (..., 3) under :data:`LIGHT_DIR`, relative to a surface facing
    the camera: 1 there (the flat albedo of the 2D overlay), down to ``AMBIENT / facing`` turned away from
    the light, a little over 1 turned towards it."""
    light = np.asarray(LIGHT_DIR)
    facing = AMBIENT + (1.0 - AMBIENT) * max(0.0, -light[2])
    return (AMBIENT + (1.0 - AMBIENT) * np.clip(normals @ light, 0.0, None)) / facing


@dataclass(frozen=True)
class MeshOverlay:
    """The 3D render at crop size: premultiplied ``colour`` (S, S, 3) and nested region coverages
    ``masks`` (skin ⊇ lips ⊇ mouth, as :func:`overlay_masks`)."""

    colour: np.ndarray
    masks: dict[str, np.ndarray]


def _shade_window(
    verts: np.ndarray, tris: np.ndarray, sel: np.ndarray, down: np.ndarray, cut: float, shape: tuple[int, int]
) -> np.ndarray:
    """Rasterise and shade ``tris`` (rows ``sel`` of TRIANGLES) in a window: (h, w, 6) float32 planes,
    premultiplied colour then skin, lips and mouth coverage (all 0/1 at this resolution)."""
    h, w = shape
    ras = rasterize(verts, tris, h, w)
    hit = ras.covered
    below = (
        np.arange(w, dtype=np.float32)[None, :] * np.float32(down[0])
        + np.arange(h, dtype=np.float32)[:, None] * np.float32(down[1])
    ) >= np.float32(cut)
    surface = hit & below
    lips_tri = np.zeros(len(tris) + 1, bool)
    lips_tri[:-1] = lip_triangles()[sel]
    lips_px = surface & lips_tri[ras.tri]  # index -1 (no triangle) reads the trailing False
    hole = np.zeros((h, w), np.uint8)
    cv2.fillPoly(
        hole,
        [np.round(verts[topology.LIPS_INNER, :2] * 16).astype(np.int32)],
        1,
        lineType=cv2.LINE_8,
        shift=4,
    )
    mouth_px = (hole > 0) & ~hit  # behind everything: shows only through the mesh's mouth hole
    lips_all = lips_px | mouth_px
    skin_all = surface | lips_all
    out = np.zeros((h, w, 6), np.float32)
    idx = np.flatnonzero(surface)
    if len(idx):
        corners = tris[ras.tri.reshape(-1)[idx]]
        normals = (vertex_normals(verts, TRIANGLES)[corners] * ras.bary.reshape(-1, 3)[idx, :, None]).sum(1)
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        on_lips = lips_px.reshape(-1)[idx]
        albedo = np.where(on_lips[:, None], np.float32(LIPS_ALBEDO), np.float32(SKIN_ALBEDO))
        # the lips stay flat (see the module docstring): their silhouette carries the articulation
        shade = np.where(on_lips, np.float32(1.0), shading(normals).astype(np.float32))
        out.reshape(-1, 6)[idx, :3] = albedo * shade[:, None]
    out[mouth_px, :3] = MOUTH_ALBEDO  # the back plane faces the camera: shading 1
    out[..., 3], out[..., 4], out[..., 5] = skin_all, lips_all, mouth_px
    return out


def render_mesh(mesh: np.ndarray, landmarks5: np.ndarray, size: int, supersample: int = 2) -> MeshOverlay:
    """Render the lower face of a crop-space MediaPipe mesh (N >= 468, 3) at ``size``² crop pixels."""
    m = np.asarray(mesh, np.float64)
    if m.ndim != 2 or m.shape[1] != 3 or len(m) < MIN_MESH_POINTS:
        raise InputError(
            f"overlay: the mesh must be MediaPipe's ({MIN_MESH_POINTS}+, 3) points with z, "
            f"got shape {m.shape}"
        )
    if not np.isfinite(m).all():
        raise InputError("overlay: the mesh contains NaN or infinity")
    k = int(supersample)
    if k < 1:
        raise InputError(f"overlay: supersample must be >= 1, got {supersample}")
    verts = m[:MIN_MESH_POINTS] * k
    verts[:, :2] += (k - 1) / 2.0  # pixel centres of the fine grid
    down, cut = _cut(np.asarray(landmarks5, np.float64) * k + (k - 1) / 2.0)
    below_v = verts[:, :2] @ down - cut >= 0
    # a triangle wholly above the cut cannot cover a pixel below it: leave it out (half the work)
    sel = np.flatnonzero(below_v[TRIANGLES].any(1))
    tris = TRIANGLES[sel]
    # work in the window the lower face covers on the fine grid (about a tenth of the crop), on whole
    # crop pixels so that the box filter down to the crop is a plain mean over k x k blocks
    used = m[np.unique(tris), :2]
    x0, y0 = np.clip(np.floor(used.min(0)).astype(int), 0, size)
    x1, y1 = np.clip(np.ceil(used.max(0)).astype(int) + 1, 0, size)
    planes = np.zeros((size, size, 6), np.float32)
    if x1 > x0 and y1 > y0:
        origin = np.array([x0 * k, y0 * k])
        fine = _shade_window(
            verts - [*origin, 0.0],
            tris,
            sel,
            down,
            cut - float(down @ origin),
            ((y1 - y0) * k, (x1 - x0) * k),
        )
        planes[y0:y1, x0:x1] = fine.reshape(y1 - y0, k, x1 - x0, k, 6).mean((1, 3))
    return MeshOverlay(
        np.ascontiguousarray(planes[..., :3]),
        {"skin": planes[..., 3].copy(), "lips": planes[..., 4].copy(), "mouth": planes[..., 5].copy()},
    )


# --- the region and the composite --------------------------------------------------------------------


def _flat_masks(contours: dict[str, np.ndarray], landmarks5: np.ndarray, size: int) -> dict[str, np.ndarray]:
    lower = lower_face_polygon(contours, landmarks5)
    skin = polygon_mask([lower], size) if lower is not None else np.zeros((size, size), np.float32)
    lips = polygon_mask([contours["lips_outer"]], size) if "lips_outer" in contours else np.zeros_like(skin)
    mouth = polygon_mask([contours["lips_inner"]], size) if "lips_inner" in contours else np.zeros_like(skin)
    return {"skin": np.maximum(skin, lips), "lips": lips, "mouth": mouth}


def overlay_masks(
    contours: dict[str, np.ndarray], landmarks5: np.ndarray, size: int, *, mesh: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per-region coverage in crop space: ``skin`` (lower face), ``lips`` and ``mouth`` (interior).

    Nested (skin ⊇ lips ⊇ mouth), each painted over the previous one. With a crop-space ``mesh`` these
    are what the 3D render covers (visible surface below the cut, visible lip triangles, the mouth hole);
    without, the contours' polygons.
    """
    if mesh is not None:
        return render_mesh(mesh, landmarks5, size).masks
    return _flat_masks(contours, landmarks5, size)


def _render(
    aligned: np.ndarray,
    contours: dict[str, np.ndarray],
    landmarks5: np.ndarray,
    opacity: float,
    mesh: np.ndarray | None,
    supersample: int,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(ĉ, region masks) from one render: the overlay and the coverage it was composited with."""
    img = np.asarray(aligned, np.float32)[..., :3].copy()
    if img.ndim != 3 or img.shape[0] != img.shape[1]:
        raise InputError(f"overlay: expected a square (S, S, 3) crop, got shape {np.shape(aligned)}")
    size = img.shape[0]
    if mesh is not None:
        out = render_mesh(mesh, landmarks5, size, supersample)
        a = (out.masks["skin"] * opacity)[..., None]
        return img * (1.0 - a) + out.colour * np.float32(opacity), out.masks
    masks = _flat_masks(contours, landmarks5, size)
    for name, colour in (("skin", SKIN_ALBEDO), ("lips", LIPS_ALBEDO), ("mouth", MOUTH_ALBEDO)):
        a = (masks[name] * opacity)[..., None]
        img = img * (1.0 - a) + np.asarray(colour, np.float32) * a
    return img, masks


def render_overlay(
    aligned: np.ndarray,
    contours: dict[str, np.ndarray],
    landmarks5: np.ndarray,
    opacity: float = 1.0,
    *,
    mesh: np.ndarray | None = None,
    supersample: int = 2,
) -> np.ndarray:
    """ĉ: the aligned crop (S, S, 3) with the lower face composited over it (all in crop coordinates).

    ``mesh``: the tracker's mesh in crop pixels with z (:func:`mesh_to_crop`) selects the shaded 3D
    render; without it the flat 2D polygons of ``contours`` are painted. ``landmarks5`` place the
    lower-face cut in both.
    """
    return _render(aligned, contours, landmarks5, opacity, mesh, supersample)[0]


# --- one frame of a shot: what prep writes and what expression transfer re-renders ------------------


def has_mesh(track: FrameTrack) -> bool:
    """Whether a frame's tracking carries a mesh the 3D overlay can render."""
    return track.mesh is not None and len(track.mesh) >= MIN_MESH_POINTS


def shot_overlay_kind(meta: dict[str, Any]) -> str:
    """The overlay renderer a shot's Stage I was trained on, from its shot.json: ``prep.overlay``
    (:data:`OVERLAY_3D`, :data:`OVERLAY_2D` or ``"mixed"``); a shot prepped before the 3D overlay existed
    records none and had the 2D one (even where its tracking has a mesh)."""
    kind = str((meta.get("prep") or {}).get("overlay") or OVERLAY_2D)
    if kind not in OVERLAY_KINDS:
        raise InputError(f"shot.json: unknown prep.overlay {kind!r} (expected {OVERLAY_3D}, {OVERLAY_2D} or mixed)")
    return kind


@dataclass(frozen=True)
class FrameOverlay:
    """One frame's overlay: ĉ (S, S, 3) rounded to 8 bits like the overlay PNGs Stage I trains on, its
    lower-face region (S, S) in [0, 1] (skin ⊇ lips ⊇ mouth) and which renderer drew it."""

    image: np.ndarray
    region: np.ndarray
    kind: str


def frame_overlay(
    aligned: np.ndarray, track: FrameTrack, transform: CropTransform, kind: str = OVERLAY_MIXED
) -> FrameOverlay:
    """The local face overlay of a plate-pixel ``track`` over its aligned crop: the one function ``prep``
    writes a shot's overlays with and expression transfer re-renders a changed track with, so Stage I
    sees transferred frames exactly as it saw the shot's own.

    ``kind``: ``"mixed"`` (what prep does) renders the 3D mesh where the track has one, else the 2D
    polygons; :data:`OVERLAY_2D` always the polygons (a shot prepped with them, :func:`shot_overlay_kind`);
    :data:`OVERLAY_3D` requires the mesh.
    """
    mesh_ok = has_mesh(track)
    if kind == OVERLAY_3D and not mesh_ok:
        raise InputError(
            "overlay: the shot's overlay is the 3D mesh but this frame's tracking has no mesh "
            f"({MIN_MESH_POINTS}+ points)"
        )
    if kind not in OVERLAY_KINDS:
        raise InputError(f"overlay: unknown kind {kind!r}")
    use_mesh = mesh_ok and kind != OVERLAY_2D
    crop_contours = {k: transform.to_crop(v) for k, v in track.contours.items()}
    lm_crop = transform.to_crop(track.landmarks5)
    mesh = mesh_to_crop(track.mesh, transform) if use_mesh else None
    img, masks = _render(aligned, crop_contours, lm_crop, 1.0, mesh, 2)
    img = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.float32) / 255.0
    region = np.clip(masks["skin"], 0.0, 1.0).astype(np.float32)
    return FrameOverlay(img, region, OVERLAY_3D if use_mesh else OVERLAY_2D)
