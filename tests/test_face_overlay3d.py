"""The 3D face overlay: z-buffered rasterizer, smooth shading, region and determinism, prep's use of it."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from vq_models.errors import InputError
from vq_models.face import topology
from vq_models.face.mesh_data import TEMPLATE, TRIANGLES
from vq_models.face.overlay import (
    LIGHT_DIR,
    LIPS_ALBEDO,
    OVERLAY_3D,
    SKIN_ALBEDO,
    lip_triangles,
    mesh_to_crop,
    overlay_masks,
    render_mesh,
    render_overlay,
    shading,
    vertex_normals,
)
from vq_models.face.raster import rasterize
from vq_models.tracking.schema import load_tracking

cv2.setNumThreads(1)
SIZE = 128


def _place(canon: np.ndarray, size: int = SIZE) -> np.ndarray:
    """A template-frame mesh into a crop: eyes about where FFHQ alignment puts them."""
    s = size * 0.14
    return np.hstack([canon[:, :2] * s + [size * 0.5, size * 0.42], canon[:, 2:] * s])


def _open_jaw(canon: np.ndarray, amount: float) -> np.ndarray:
    """Drop the jaw by ``amount`` (template units): the lower lip loops move all the way, the upper ones
    stay, the skin below the mouth corners follows smoothly, so the mesh's mouth hole opens."""
    out = canon.copy()
    corner_y = canon[[topology.LIPS_INNER[0], topology.LIPS_INNER[10]], 1].mean()
    weight = np.clip((canon[:, 1] - corner_y) / 0.3, 0.0, 1.0)
    lip_body = np.unique(TRIANGLES[lip_triangles()])
    weight[lip_body] = canon[lip_body, 1] > corner_y  # the lower lip moves as one piece
    weight[topology.LIPS_INNER[1:10] + topology.LIPS_OUTER[1:10]] = 1.0
    weight[
        topology.LIPS_INNER[11:]
        + topology.LIPS_OUTER[11:]
        + [topology.LIPS_INNER[0], topology.LIPS_INNER[10]]
    ] = 0.0
    out[:, 1] += amount * weight
    return out


def _frame(mesh: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    return topology.contours_from_mesh(mesh), topology.landmarks5_from_mesh(mesh)


# --- rasterizer --------------------------------------------------------------------------------------


def test_near_triangle_hides_far_one_whatever_the_order():
    far = [[5.0, 5.0, 10.0], [40.0, 5.0, 10.0], [5.0, 40.0, 10.0]]
    near = [[10.0, 10.0, 2.0], [45.0, 10.0, 2.0], [10.0, 45.0, 2.0]]
    verts = np.array(far + near)
    for tris, near_index in ((np.array([[0, 1, 2], [3, 4, 5]]), 1), (np.array([[3, 4, 5], [0, 1, 2]]), 0)):
        r = rasterize(verts, tris, 48, 48)
        assert r.tri[15, 15] == near_index and r.depth[15, 15] == pytest.approx(2.0)
        assert r.tri[6, 6] == 1 - near_index and r.depth[6, 6] == pytest.approx(10.0)  # only the far one
        assert r.tri[40, 40] == -1 and np.isinf(r.depth[40, 40])


def test_rasterizer_coverage_and_barycentrics():
    rng = np.random.default_rng(4)
    verts = np.hstack([rng.uniform(2, 60, (3, 2)), rng.uniform(0, 1, (3, 1))])
    r = rasterize(verts, np.array([[0, 1, 2]]), 64, 64)
    p = verts[:, :2]
    area = 0.5 * abs((p[1, 0] - p[0, 0]) * (p[2, 1] - p[0, 1]) - (p[1, 1] - p[0, 1]) * (p[2, 0] - p[0, 0]))
    assert r.covered.sum() == pytest.approx(area, rel=0.08, abs=4)
    b = r.bary[r.covered]
    np.testing.assert_allclose(b.sum(1), 1.0, atol=1e-5)
    ys, xs = np.nonzero(r.covered)
    np.testing.assert_allclose(b @ p, np.stack([xs, ys], 1), atol=1e-3)  # barycentrics reproduce the pixel
    # a shared edge leaves no crack: two triangles of a square cover all of it
    sq = np.array([[10.0, 10.0, 0.0], [30.0, 10.0, 0.0], [30.0, 30.0, 0.0], [10.0, 30.0, 0.0]])
    r = rasterize(sq, np.array([[0, 1, 2], [0, 2, 3]]), 40, 40)
    assert r.covered[10:31, 10:31].all() and r.covered.sum() == 21 * 21


def test_rasterizer_rejects_bad_input():
    with pytest.raises(InputError, match="vertices must be"):
        rasterize(np.zeros((3, 2)), np.array([[0, 1, 2]]), 8, 8)
    with pytest.raises(InputError, match="indices into 3 vertices"):
        rasterize(np.zeros((3, 3)), np.array([[0, 1, 3]]), 8, 8)
    with pytest.raises(InputError, match="NaN"):
        rasterize(np.full((3, 3), np.nan), np.array([[0, 1, 2]]), 8, 8)


# --- shading -----------------------------------------------------------------------------------------


def test_vertex_normals_face_the_camera_whatever_the_winding():
    ys, xs = np.mgrid[0:4, 0:4]
    grid = np.stack([xs.ravel(), ys.ravel(), np.zeros(16)], 1).astype(float)
    quads = [(y * 4 + x, y * 4 + x + 1, y * 4 + x + 5, y * 4 + x + 4) for y in range(3) for x in range(3)]
    tris = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
    for t in (tris, tris[:, ::-1]):
        np.testing.assert_allclose(vertex_normals(grid, t), np.tile([0.0, 0.0, -1.0], (16, 1)), atol=1e-12)


def test_surface_facing_the_light_is_brighter():
    light = np.asarray(LIGHT_DIR)
    away = np.array([-light[0], -light[1], light[2]])
    away /= np.linalg.norm(away)
    front = float(shading(np.array([0.0, 0.0, -1.0])))
    assert front == pytest.approx(1.0)
    assert shading(light) > front > shading(away)
    # on a whole face: the lower face tilted towards the light (LIGHT_DIR is above) reads brighter
    base = _place(TEMPLATE)
    pivot = base[topology.NOSE_TIP]

    def tilt(deg: float) -> np.ndarray:  # rotate about the x axis through the nose tip; + = chin forward
        a = np.radians(deg)
        rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        return (base - pivot) @ rot.T + pivot

    means = []
    for deg in (-25.0, 25.0):
        mesh = tilt(deg)
        out = render_mesh(mesh, topology.landmarks5_from_mesh(mesh), SIZE)
        skin = (out.masks["skin"] > 0.99) & (out.masks["lips"] < 0.01)
        means.append(float(out.colour[skin, 0].mean()))
    # chin towards the camera -> lower face turned up, towards the light above
    assert means[0] > means[1] + 0.03, means



def test_lips_keep_their_flat_albedo_while_the_skin_is_shaded():
    """Shaded lips split Stage I's lip codes by lip volume (29 lower-lip codes instead of 17 on the synthetic
    acceptance shot, at the cost of the mouth interior and the pupils): the lips stay flat, the skin around
    them carries the shape."""
    base = _place(TEMPLATE)
    pivot = base[topology.NOSE_TIP]
    a = np.radians(25.0)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    mesh = (base - pivot) @ rot.T + pivot
    out = render_mesh(mesh, topology.landmarks5_from_mesh(mesh), SIZE)
    lips = (out.masks["lips"] > 0.99) & (out.masks["mouth"] < 0.01)
    skin = (out.masks["skin"] > 0.99) & (out.masks["lips"] < 0.01)
    assert lips.sum() > 20 and skin.sum() > 200
    np.testing.assert_allclose(out.colour[lips], np.broadcast_to(LIPS_ALBEDO, (int(lips.sum()), 3)), atol=1e-6)
    assert out.colour[skin, 0].std() > 0.01  # the skin is shaded: its brightness varies over the surface


# --- the overlay -------------------------------------------------------------------------------------


def test_lip_triangles_form_the_ring_between_the_lip_loops():
    lips = lip_triangles()
    assert 60 < lips.sum() < 200
    lip_vertices = set(topology.LIPS_OUTER) | set(topology.LIPS_INNER)
    assert {int(v) for v in np.unique(TRIANGLES[lips])} >= lip_vertices
    assert topology.NOSE_TIP not in set(TRIANGLES[lips].ravel())


def test_3d_region_matches_the_2d_overlay_on_a_real_looking_mesh():
    for amount in (0.0, 0.35):
        mesh = _place(_open_jaw(TEMPLATE, amount))
        contours, lm5 = _frame(mesh)
        flat = overlay_masks(contours, lm5, SIZE)
        solid = overlay_masks(contours, lm5, SIZE, mesh=mesh)
        for name, tol in (("skin", 0.04), ("lips", 0.10)):
            a, b = flat[name], solid[name]
            assert np.abs(a - b).sum() < tol * a.sum(), (name, amount, a.sum(), b.sum())
        assert solid["skin"].min() >= 0 and (solid["lips"] <= solid["skin"] + 1e-6).all()
        if amount:
            a, b = flat["mouth"], solid["mouth"]
            assert np.abs(a - b).sum() < 0.15 * a.sum(), (a.sum(), b.sum())


def test_open_mouth_shows_more_interior_than_closed():
    areas = [
        render_mesh(m, topology.landmarks5_from_mesh(m), SIZE).masks["mouth"].sum()
        for m in (_place(TEMPLATE), _place(_open_jaw(TEMPLATE, 0.6)))
    ]
    assert areas[1] > 4 * max(areas[0], 1.0) and areas[1] > 40, areas


def test_render_is_deterministic_and_changes_with_depth():
    mesh = _place(_open_jaw(TEMPLATE, 0.2))
    contours, lm5 = _frame(mesh)
    img = np.random.default_rng(0).uniform(0, 1, (SIZE, SIZE, 3)).astype(np.float32)
    a = render_overlay(img, contours, lm5, mesh=mesh)
    b = render_overlay(img.copy(), contours, lm5, mesh=mesh.copy())
    assert a.tobytes() == b.tobytes()
    deeper = mesh.copy()
    deeper[:, 2] *= 2.0  # same silhouette, more relief: the shading changes, the region does not
    c = render_overlay(img, contours, lm5, mesh=deeper)
    assert np.abs(c - a).max() > 0.02
    np.testing.assert_allclose(
        overlay_masks(contours, lm5, SIZE, mesh=deeper)["skin"],
        overlay_masks(contours, lm5, SIZE, mesh=mesh)["skin"],
        atol=1e-6,
    )
    # outside the lower face the crop is untouched, bit for bit
    skin = overlay_masks(contours, lm5, SIZE, mesh=mesh)["skin"]
    assert np.array_equal(a[skin == 0], img[skin == 0])
    # a front-facing lower face is the flat albedo: the chin's colour is near SKIN_ALBEDO, shaded
    chin = a[int(mesh[152, 1]) - 3, int(mesh[152, 0])]
    assert np.all(np.abs(chin - SKIN_ALBEDO) < 0.35)


def test_bad_mesh_is_refused():
    contours, lm5 = _frame(_place(TEMPLATE))
    with pytest.raises(InputError, match="468"):
        render_overlay(np.zeros((SIZE, SIZE, 3), np.float32), contours, lm5, mesh=np.zeros((100, 3)))
    with pytest.raises(InputError, match="NaN"):
        render_overlay(np.zeros((SIZE, SIZE, 3), np.float32), contours, lm5, mesh=np.full((478, 3), np.nan))


@pytest.mark.clips
def test_prep_on_a_real_clip_runs_the_3d_overlay(clips_dir, tmp_path):
    from vq_models.face.prep import PRESETS, run_prep

    cfg = dataclasses.replace(PRESETS["tiny"], crop_size=96, person_segmentation=False)
    shot = run_prep(
        clips_dir / "lp_d0.mp4", tmp_path / "shot", config=cfg, frames="28-31", progress=False
    ).shot
    assert shot.meta["prep"]["overlay"] == OVERLAY_3D and shot.meta["prep"]["overlay_2d_frames"] == []
    tracking = load_tracking(shot.tracking_path)
    for f in shot.frames:
        t, tr = shot.transform(f), tracking.frames[f]
        mesh = mesh_to_crop(tr.mesh, t)
        again = render_overlay(
            shot.aligned(f),
            {k: t.to_crop(v) for k, v in tr.contours.items()},
            t.to_crop(tr.landmarks5),
            mesh=mesh,
        )
        # the stored overlay is this render (tracking.json rounds to 1/1000 px; PNGs are 8-bit)
        assert np.abs(shot.overlay(f) - np.clip(again, 0, 1)).mean() < 1.5 / 255


def test_triangles_are_mediapipes_tessellation():
    """mesh_data.py was generated from mediapipe's edge set; an upgrade that changes it must regenerate it."""
    connections = pytest.importorskip("mediapipe.python.solutions.face_mesh_connections")
    theirs = {tuple(sorted(e)) for e in connections.FACEMESH_TESSELATION}
    ours = {tuple(sorted(e)) for a, b, c in TRIANGLES.tolist() for e in ((a, b), (b, c), (c, a))}
    assert ours == theirs
    # a closed surface with four holes (oval, two eyes, mouth): every edge borders one or two triangles
    counts = np.unique(
        np.sort(TRIANGLES[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), 1), axis=0, return_counts=True
    )[1]
    assert counts.max() == 2 and (counts == 1).sum() == 36 + 16 + 16 + 20
