"""Masks, templates, overlay, lost-frame bridging and face selection on constructed geometry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vq_models.errors import InputError
from vq_models.face.gaps import bridge_gaps
from vq_models.face.masks import fg_mask, person_matte_usable, polygon_mask, roi_mask, template_contours
from vq_models.face.overlay import LIPS_ALBEDO, MOUTH_ALBEDO, SKIN_ALBEDO, render_overlay
from vq_models.face.select import FaceSelector
from vq_models.face.tracker import FaceDetection
from vq_models.tracking.schema import FrameTrack

cv2.setNumThreads(1)
LM5 = np.array([[44.0, 52.0], [84.0, 52.0], [64.0, 72.0], [50.0, 92.0], [78.0, 92.0]])


def test_polygon_mask_area_matches_polygon():
    square = np.array([[10.5, 10.5], [50.5, 10.5], [50.5, 30.5], [10.5, 30.5]])
    m = polygon_mask([square], 64)
    assert m.sum() == pytest.approx(40 * 20, rel=0.03)
    assert m[20, 30] == 1.0 and m[5, 5] == 0.0


def test_template_contours_follow_the_five_points():
    c = template_contours(LM5)
    assert set(c) >= {"face_oval", "left_eye", "right_eye", "lips_outer", "lips_inner"}
    np.testing.assert_allclose(c["left_eye"].mean(0), LM5[0], atol=1e-9)
    np.testing.assert_allclose(c["lips_outer"].mean(0), (LM5[3] + LM5[4]) / 2, atol=1e-9)
    # lips ellipse reaches past both mouth corners
    assert c["lips_outer"][:, 0].min() < LM5[3, 0] and c["lips_outer"][:, 0].max() > LM5[4, 0]


def test_masks_cover_eyes_and_mouth_and_respect_person_matte():
    c = template_contours(LM5)
    roi = roi_mask(c, 128)
    for x, y in [LM5[0], LM5[1], LM5[3] + [3, 0], LM5[4] - [3, 0], (LM5[3] + LM5[4]) / 2]:
        assert roi[int(round(y)), int(round(x))] > 0.5
    assert roi[int(LM5[2, 1]), int(LM5[2, 0])] < 0.1  # nose tip is not ROI
    oval = polygon_mask([c["face_oval"]], 128) >= 0.5
    xs = np.nonzero(oval[60])[0]
    person = np.ones((128, 128), np.float32)
    person[:, xs.max() - 3:] = 0.0  # a profile: background reaches a few pixels into the oval's right edge
    fg = fg_mask(c, 128, person)
    assert fg[60, 50] > 0.9 and fg[60, xs.max()] < 0.05 and fg[5, 5] == 0.0


def test_the_person_matte_trims_only_the_ovals_rim_and_a_failed_matte_is_ignored():
    """MediaPipe's selfie segmenter can keep only the eyes and teeth of a dark face on a dark background; the
    face is face inside the oval whatever the matte says, and a matte that keeps under half of the oval is not
    used at all (Stage I would file the face under the background's code)."""
    c = template_contours(LM5)
    oval = fg_mask(c, 128)
    person = np.ones((128, 128), np.float32)
    person[:, 75:] = 0.0  # the matte loses the face's right third, the right eye included
    assert person_matte_usable(oval, person)
    half = fg_mask(c, 128, person)
    assert half[60, 80] > 0.95  # the right eye's cheek, inside the rim: still face
    xs = np.nonzero(oval[72] >= 0.5)[0]
    assert half[72, xs.max() - 1] < 0.05  # at the oval's edge the matte still trims
    assert half[72, xs.min() + 1] == pytest.approx(oval[72, xs.min() + 1])
    eyes_only = np.zeros((128, 128), np.float32)
    for x, y in LM5[:2]:
        cv2.circle(eyes_only, (int(x), int(y)), 5, 1.0, -1)
    np.testing.assert_array_equal(fg_mask(c, 128, eyes_only), oval)  # a failed matte: the oval alone
    assert not person_matte_usable(oval, eyes_only) and person_matte_usable(oval, np.ones_like(oval))


def test_overlay_paints_lower_face_only():
    img = np.full((128, 128, 3), 0.5, np.float32)
    c = template_contours(LM5)
    out = render_overlay(img, c, LM5)
    np.testing.assert_allclose(out[int(LM5[0, 1]), int(LM5[0, 0])], 0.5)  # eyes untouched
    np.testing.assert_allclose(out[106, 64], SKIN_ALBEDO, atol=1e-6)  # chin
    np.testing.assert_allclose(out[88, 64], LIPS_ALBEDO, atol=1e-6)  # upper lip
    np.testing.assert_allclose(out[92, 64], MOUTH_ALBEDO, atol=0.05)  # mouth interior


def _track(x: float) -> FrameTrack:
    return FrameTrack(LM5 + [x, 0.0], {"lips_inner": np.array([[x, 0], [x + 1, 0], [x, 1.0]])}, None)


def test_bridge_gaps_interpolates_and_reports():
    frames = list(range(10, 20))
    tracks = {f: _track(float(f)) for f in frames}
    for f in (13, 14, 15):
        tracks[f] = None
    tracks[19] = None
    out, bridged = bridge_gaps(tracks, frames, max_gap=3)
    assert bridged == [13, 14, 15, 19]
    np.testing.assert_allclose(out[14].landmarks5, LM5 + [14.0, 0.0])
    np.testing.assert_allclose(out[14].contours["lips_inner"][0], [14.0, 0.0])
    np.testing.assert_allclose(out[19].landmarks5, out[18].landmarks5)  # end held
    with pytest.raises(InputError, match=r"face lost in frames 13-15, 19.*--frames \(10-12, 16-18\)"):
        bridge_gaps(tracks, frames, max_gap=2)
    with pytest.raises(InputError, match="no face found in any frame"):
        bridge_gaps({f: None for f in frames}, frames, max_gap=100)


def _det(cx: float) -> FaceDetection:
    pts = np.zeros((478, 3))
    pts[:, 0] = cx + np.linspace(-20, 20, 478)
    pts[:, 1] = 100 + np.linspace(-25, 25, 478)
    return FaceDetection(pts, 1.0)


def test_face_selector_keeps_identity():
    sel = FaceSelector(face_index=1)
    assert sel.choose([_det(300), _det(100)], 1).centre[0] == pytest.approx(300)  # 1 = second from left
    # the faces swap order in the detector's list and move a little: we keep following the right one
    assert sel.choose([_det(110), _det(310)], 2).centre[0] == pytest.approx(310)
    assert sel.choose([_det(120)], 3) is None  # only the other face visible: ours is lost
    assert sel.choose([], 4) is None
    assert FaceSelector(pick=(105, 90)).choose([_det(300), _det(100)], 1).centre[0] == pytest.approx(100)
    with pytest.raises(InputError, match="--face 2: frame 7 has only 2 face"):
        FaceSelector(face_index=2).choose([_det(300), _det(100)], 7)
