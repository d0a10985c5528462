"""The MediaPipe wrapper: our hand-written topology matches the mesh's, and points come out right."""

from __future__ import annotations

import numpy as np
import pytest

from vq_models.face import topology
from vq_models.face.tracker import FaceTracker, mediapipe_contour_edges
from vq_models.io.sources import open_source


def _edges(idx: list[int]) -> set[tuple[int, int]]:
    return {tuple(sorted((idx[i], idx[(i + 1) % len(idx)]))) for i in range(len(idx))}


@pytest.mark.parametrize("name", ["face_oval", "left_eye", "right_eye", "left_brow", "right_brow",
                                  "left_iris", "right_iris"])
def test_contour_lists_match_mediapipe_connections(name):
    theirs = {tuple(sorted(e)) for e in mediapipe_contour_edges()[name]}
    mine = _edges(topology.CONTOURS[name])
    if name.endswith("brow"):  # MediaPipe's brows are two open polylines; ours close them at the ends
        assert theirs <= mine and len(mine - theirs) == 2
    else:
        assert mine == theirs


def test_lip_lists_match_mediapipe_connections():
    theirs = {tuple(sorted(e)) for e in mediapipe_contour_edges()["lips"]}
    assert _edges(topology.LIPS_OUTER) | _edges(topology.LIPS_INNER) == theirs


def test_tracker_on_a_real_frame(clips_dir):
    with open_source(clips_dir / "lp_d0.mp4", [1]) as src:
        rgb = src.read_network(1)
    with FaceTracker() as tracker:
        faces = tracker.track(rgb)
        assert len(faces) == 1
        mesh = faces[0].landmarks478
        assert mesh.shape == (478, 3)
        lm = topology.landmarks5_from_mesh(mesh)
        # image-left eye left of image-right eye; nose below eyes; mouth below nose
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]
        assert lm[:2, 1].max() < lm[2, 1] < lm[3:, 1].min()
        # the iris centre lies inside its eye outline
        eye = mesh[topology.LEFT_EYE, :2]
        assert eye[:, 0].min() < lm[0, 0] < eye[:, 0].max()
        # downscaled tracking maps back to the same plate pixels (within a pixel on a 512 frame)
        small = FaceTracker(video=False, max_side=256)
        lm_small = topology.landmarks5_from_mesh(small.track(rgb)[0].landmarks478)
        small.close()
        assert np.abs(lm_small - lm).max() < 4.0
        person = tracker.person_mask(rgb)
        assert person.shape == rgb.shape[:2]
        assert person[int(lm[2, 1]), int(lm[2, 0])] > 0.5 and person[5, 5] < 0.5


def test_tracker_works_after_training_turned_flush_to_zero_on(clips_dir):
    """The trainers enable torch's flush-denormal mode; MediaPipe's XNNPack graphs fail to prepare under it
    unless the tracker resets it (seen when prep ran in a process that had trained before)."""
    import torch

    with open_source(clips_dir / "lp_d0.mp4", [1]) as src:
        rgb = src.read_network(1)
    torch.set_flush_denormal(True)
    try:
        with FaceTracker() as tracker:
            assert len(tracker.track(rgb)) == 1
            assert 0.1 < float(tracker.person_mask(rgb).mean()) < 0.9
    finally:
        torch.set_flush_denormal(False)
