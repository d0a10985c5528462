"""The synthetic face's 478-point mesh: on the drawn outlines, following the drawn mouth, rendered in 3D."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vq_models.face import topology
from vq_models.face.expression import _polygon_area, to_canonical
from vq_models.face.overlay import OVERLAY_2D, OVERLAY_3D, frame_overlay, render_mesh, shot_overlay_kind
from vq_models.shot import CropTransform
from vq_models.synth import face_geometry, performance
from vq_models.synth.mesh import synth_mesh
from vq_models.tracking.schema import FrameTrack


def _geometry(mouth: float, frame: int = 7):
    state = dataclasses.replace(performance(12, seed=5)[frame], mouth_open=mouth)
    return face_geometry(state, (160, 160))


def _distance_to_polygon(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    a, b = poly, np.roll(poly, -1, 0)
    ab = b - a
    t = np.clip(((points[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0, 1)
    return np.linalg.norm(points[:, None] - (a + t[..., None] * ab), axis=-1).min(1)


@pytest.mark.parametrize("mouth", [0.0, 0.4, 1.0])
def test_mesh_lies_on_the_drawn_outlines(mouth):
    geom = _geometry(mouth)
    mesh = synth_mesh(geom)
    assert mesh.shape == (topology.NUM_MESH_POINTS, 3) and np.isfinite(mesh).all()
    drawn = geom.contours()
    for name in ("face_oval", "left_eye", "right_eye", "lips_outer", "lips_inner"):
        loop = mesh[getattr(topology, name.upper()), :2]
        assert _distance_to_polygon(loop, drawn[name]).max() < 0.25, name  # plate pixels (1/640 of the plate)
    # the mesh's own 5 points are the drawn ones (eyes, nose tip, mouth corners)
    np.testing.assert_allclose(topology.landmarks5_from_mesh(mesh), geom.landmarks5(), atol=0.05)


def test_mesh_mouth_follows_the_drawn_opening():
    areas = []
    for mouth in (0.0, 0.25, 0.5, 1.0):
        geom = _geometry(mouth)
        lm = geom.landmarks5()
        mesh_area = _polygon_area(to_canonical(synth_mesh(geom)[topology.LIPS_INNER, :2], lm))
        drawn_area = _polygon_area(to_canonical(geom.contours()["lips_inner"], lm))
        areas.append(mesh_area)
        if mouth == 0.0:
            assert mesh_area <= drawn_area * 1.15  # closed: the drawn resting sliver at most
        else:
            assert mesh_area == pytest.approx(drawn_area, rel=0.15)
    assert np.all(np.diff(areas) > 0) and areas[0] < 0.05 * areas[-1]


def test_mesh_renders_a_clean_lower_face_and_mouth_hole():
    for mouth in (0.0, 1.0):
        geom = _geometry(mouth)
        mesh = synth_mesh(geom)
        out = render_mesh(mesh, geom.landmarks5(), 160)
        lower = out.masks["skin"]
        # the render covers the drawn lower face without holes or folds (a folded mesh leaves gaps)
        chin = geom.contours()["face_oval"]
        assert lower.sum() > 0.15 * _polygon_area(chin)
        y = int(geom.to_plate(np.array([[0.0, geom.state.identity.mouth_y + 0.35]]))[0, 1])
        row = lower[y, :] > 0.5
        assert row.any() and np.all(row[np.flatnonzero(row)[0] : np.flatnonzero(row)[-1] + 1])
        mouth_px = out.masks["mouth"].sum()
        drawn = _polygon_area(geom.contours()["lips_inner"])
        if mouth == 0.0:
            assert mouth_px <= 1.5 * drawn + 1.0  # the drawn resting sliver, antialiased
        else:
            assert mouth_px == pytest.approx(drawn, rel=0.25)


def test_frame_overlay_keeps_the_shots_renderer():
    geom = _geometry(0.6)
    track = FrameTrack(geom.landmarks5(), geom.contours(), synth_mesh(geom))
    flat = FrameTrack(track.landmarks5, track.contours, None)
    t = CropTransform.from_plate_to_crop(np.array([[0.8, 0.0, -16.0], [0.0, 0.8, -16.0]]))
    crop = np.full((96, 96, 3), 0.5, np.float32)
    assert frame_overlay(crop, track, t).kind == OVERLAY_3D
    two_d = frame_overlay(crop, track, t, OVERLAY_2D)  # a shot prepped with the polygons keeps them
    assert two_d.kind == OVERLAY_2D
    np.testing.assert_array_equal(two_d.image, frame_overlay(crop, flat, t).image)
    assert not np.array_equal(two_d.image, frame_overlay(crop, track, t).image)
    with pytest.raises(Exception, match="no mesh"):
        frame_overlay(crop, flat, t, OVERLAY_3D)
    # shots prepped before the 3D overlay recorded no kind: they had the 2D one
    assert shot_overlay_kind({"prep": {}}) == OVERLAY_2D
    assert shot_overlay_kind({"prep": {"overlay": OVERLAY_3D}}) == OVERLAY_3D
    with pytest.raises(Exception, match="unknown prep.overlay"):
        shot_overlay_kind({"prep": {"overlay": "voxels"}})


def test_prep_overlay_knob_chooses_the_renderer(tmp_path, capsys):
    """``prep --set overlay=contours-2d`` keeps the flat polygons on footage whose tracking has a mesh (the
    renderer Stage I is trained on is a choice a pipeline makes per show), records it in shot.json so
    expression transfer re-renders alike, and a wrong name is one clear line."""
    import json

    from vq_models.cli import main
    from vq_models.shot import Shot

    synth = tmp_path / "synth"
    assert main(["synth", str(synth), "--frames", "3", "--size", "96", "--seed", "2", "--no-progress"]) == 0
    shots = {}
    for kind in ("mixed", "contours-2d"):
        out = tmp_path / kind
        assert main(["prep", str(synth / "plate" / "frame.%04d.exr"), "--tracking", str(synth / "tracking.json"),
                     "--out", str(out), "--size", "64", "--set", f"overlay={kind}"]) == 0
        shots[kind] = Shot.open(out)
    assert json.loads((tmp_path / "mixed" / "shot.json").read_text())["prep"]["overlay"] == OVERLAY_3D
    assert json.loads((tmp_path / "contours-2d" / "shot.json").read_text())["prep"]["overlay"] == OVERLAY_2D
    f = shots["mixed"].frames[1]
    assert not np.array_equal(shots["mixed"].overlay(f), shots["contours-2d"].overlay(f))
    capsys.readouterr()
    assert main(["prep", str(synth / "plate" / "frame.%04d.exr"), "--tracking", str(synth / "tracking.json"),
                 "--out", str(tmp_path / "bad"), "--set", "overlay=voxels"]) != 0
    err = capsys.readouterr().err
    assert "overlay 'voxels'" in err and "Traceback" not in err


def test_the_eye_centres_stay_on_the_skull_when_the_eyes_move():
    """The crop is aligned on landmarks5: a glance (the iris moving) or a blink (the lids meeting) must not
    move them, or every glance and blink would move the whole crop; the eye's corners do move them."""
    mesh = synth_mesh(_geometry(0.3))
    before = topology.landmarks5_from_mesh(mesh)
    moved = mesh.copy()
    moved[[topology.LEFT_IRIS_CENTRE, topology.RIGHT_IRIS_CENTRE, *topology.LEFT_IRIS, *topology.RIGHT_IRIS], 0] += 4.0
    lids = [i for i in topology.LEFT_EYE + topology.RIGHT_EYE
            if i not in topology.LEFT_EYE_CORNERS + topology.RIGHT_EYE_CORNERS]
    moved[lids, 1] += 3.0  # the lids close
    np.testing.assert_allclose(topology.landmarks5_from_mesh(moved), before)
    moved[list(topology.LEFT_EYE_CORNERS), 0] += 2.0  # the head (and its eye corners) moves
    np.testing.assert_allclose(topology.landmarks5_from_mesh(moved)[0], before[0] + [2.0, 0.0])
