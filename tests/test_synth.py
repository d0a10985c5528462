"""Synthetic face: determinism, label/geometry consistency, what-if locality, landmarks on their parts."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from vq_models.synth import PART_ID, WHATIFS, FaceState, performance, render, render_whatif
from vq_models.synth.draw import SynthFrame
from vq_models.tracking import FrameTrack, Tracking, tracking_to_json

SIZE = 128
N = 12
P = PART_ID


@pytest.fixture(scope="module")
def shot() -> list[SynthFrame]:
    return [render(s, SIZE) for s in performance(N, seed=3)]


def _neighbours(labels: np.ndarray, part: int) -> set[int]:
    """Labels found among the 4-neighbours of any pixel of ``part``."""
    mask = (labels == part).astype(np.uint8)
    ring = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))).astype(bool)
    return set(np.unique(labels[ring]).tolist())


def _inside(poly: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Signed distance (px, >0 inside) of pixel centres to a closed polygon."""
    c = poly.astype(np.float32).reshape(-1, 1, 2)
    return np.array(
        [cv2.pointPolygonTest(c, (float(x), float(y)), True) for y, x in zip(ys, xs, strict=True)]
    )


def test_performance_covers_blink_and_talking() -> None:
    states = performance(N, seed=3)
    assert min(s.eye_open for s in states) == 0.0 and max(s.eye_open for s in states) > 0.9
    assert max(s.mouth_open for s in states) > 0.6
    assert len({s.noise_seed for s in states}) == N


@pytest.mark.parametrize("frames", [1, 2, 3])
def test_short_performances_have_one_state_per_frame(frames: int) -> None:
    """``vqedit synth --frames 2`` crashed: the speech envelope's smoothing returned three values."""
    states = performance(frames, seed=0)
    assert len(states) == frames
    assert all(0.0 <= s.mouth_open <= 1.0 for s in states)


def test_same_seed_same_pixels_other_seed_differs() -> None:
    a = [render(s, 64) for s in performance(4, seed=5)]
    b = [render(s, 64) for s in performance(4, seed=5)]
    c = [render(s, 64) for s in performance(4, seed=6)]
    for fa, fb in zip(a, b, strict=True):
        assert np.array_equal(fa.rgb, fb.rgb) and np.array_equal(fa.labels, fb.labels)
    assert not np.array_equal(a[0].rgb, c[0].rgb)
    assert a[0].rgb.dtype == np.float32 and a[0].rgb.shape == (64, 64, 3)
    assert 0.0 <= a[0].rgb.min() and a[0].rgb.max() <= 1.0


def test_pupils_are_surrounded_by_iris_and_irises_lie_in_the_eye_opening(shot: list[SynthFrame]) -> None:
    for f in shot:
        st, lab = f.geometry.state, f.labels
        allowed = (
            {P["pupils"], P["irises"]} if st.eye_open >= 0.9 else {P["pupils"], P["irises"], P["eyelids"]}
        )
        if (lab == P["pupils"]).any():
            assert _neighbours(lab, P["pupils"]) <= allowed, f"eye_open={st.eye_open}"
        contours = f.geometry.contours()
        for side, name in ((0, "left_eye"), (1, "right_eye")):
            half = np.zeros_like(lab, bool)
            cx = int(round(f.geometry.landmarks5()[:2, 0].mean()))
            half[:, :cx] = side == 0
            half[:, cx:] = side == 1
            ys, xs = np.nonzero(np.isin(lab, (P["irises"], P["pupils"])) & half)
            if len(ys):
                assert _inside(contours[name], ys, xs).min() >= -0.5


def test_expected_parts_per_state(shot: list[SynthFrame]) -> None:
    for f in shot:
        st, present = f.geometry.state, set(np.unique(f.labels).tolist())
        always = {"background", "hair", "skin", "brows", "eyelids", "nose", "upper_lip", "lower_lip"}
        assert {P[n] for n in always} <= present
        eyes = {P["eye_whites"], P["irises"], P["pupils"]}
        if st.eye_open > 0.5:
            assert eyes <= present
        if st.eye_open == 0.0:
            assert not eyes & present
        if st.mouth_open > 0.5:
            assert {P["mouth_interior"], P["upper_teeth"], P["lower_teeth"]} <= present
        if st.mouth_open < 0.02:
            assert P["mouth_interior"] not in present


def test_landmarks5_lie_on_their_parts(shot: list[SynthFrame]) -> None:
    lips = np.isin(shot[0].labels, (P["upper_lip"], P["lower_lip"]))
    for f in shot:
        lm = f.geometry.landmarks5()
        lab = f.labels
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0] and lm[0, 1] < lm[2, 1] < lm[3, 1]
        for k in (0, 1):
            x, y = np.round(lm[k]).astype(int)
            assert lab[y, x] in (P["eyelids"], P["eye_whites"], P["irises"], P["pupils"])
        x, y = np.round(lm[2]).astype(int)
        assert lab[y, x] == P["nose"]
        lips = np.isin(lab, (P["upper_lip"], P["lower_lip"])).astype(np.uint8)
        dist = cv2.distanceTransform(1 - lips, cv2.DIST_L2, 5)
        for k in (3, 4):
            x, y = np.round(lm[k]).astype(int)
            assert dist[y, x] <= 1.5
    assert lips.any()


def test_contours_validate_and_enclose_their_parts(shot: list[SynthFrame]) -> None:
    tracks = {
        1001 + i: FrameTrack(f.geometry.landmarks5(), f.geometry.contours()) for i, f in enumerate(shot)
    }
    obj = tracking_to_json(Tracking((SIZE, SIZE), tracks))
    assert len(obj["frames"]["1001"]["contours"]) == 10
    for f in shot:
        c = f.geometry.contours()
        ys, xs = np.nonzero(np.isin(f.labels, (P["upper_lip"], P["lower_lip"], P["mouth_interior"])))
        assert _inside(c["lips_outer"], ys, xs).min() >= -1.0
        ys, xs = np.nonzero(f.labels == P["nose"])
        assert _inside(c["nose"], ys, xs).min() >= -1.0


def _box(points: np.ndarray, pad: int) -> tuple[slice, slice]:
    x0, y0 = np.floor(points.min(0)).astype(int) - pad
    x1, y1 = np.ceil(points.max(0)).astype(int) + pad + 1
    return slice(max(y0, 0), y1), slice(max(x0, 0), x1)


@pytest.mark.parametrize("name", ["eyes_closed", "no_teeth", "gaze_left", "mouth_closed"])
def test_whatif_differs_only_where_the_change_is(shot: list[SynthFrame], name: str) -> None:
    frame = max(shot, key=lambda f: f.geometry.state.mouth_open * f.geometry.state.eye_open)
    edited = WHATIFS[name](frame.geometry.state)
    w = render_whatif(frame, edited)
    full = render(edited, SIZE)
    assert np.array_equal(w.rgb, full.rgb) and np.array_equal(w.labels, full.labels)
    c = frame.geometry.contours()
    if name in ("eyes_closed", "gaze_left"):
        boxes = [
            _box(np.concatenate([c["left_eye"], c["left_brow"]]), 3),
            _box(np.concatenate([c["right_eye"], c["right_brow"]]), 3),
        ]
    else:
        boxes = [_box(np.concatenate([c["lips_outer"], w.geometry.contours()["lips_outer"]]), 3)]
    outside = np.ones((SIZE, SIZE), bool)
    for b in boxes:
        outside[b] = False
    changed = np.any(w.rgb != frame.rgb, axis=-1)
    assert changed.any()
    assert not (changed & outside).any()
    assert np.array_equal(w.labels[outside], frame.labels[outside])
    gone = {
        "eyes_closed": {P["eye_whites"], P["irises"], P["pupils"]},
        "no_teeth": {P["upper_teeth"], P["lower_teeth"]},
    }
    assert not gone.get(name, set()) & set(np.unique(w.labels).tolist())
    if name == "gaze_left":
        iris_x = [np.nonzero(lab == P["irises"])[1].mean() for lab in (frame.labels, w.labels)]
        assert iris_x[1] < iris_x[0]


def test_whatif_with_a_global_change_redraws_everything(shot: list[SynthFrame]) -> None:
    st = dataclasses.replace(shot[0].geometry.state, head_roll=6.0)
    w = render_whatif(shot[0], st)
    assert np.array_equal(w.rgb, render(st, SIZE).rgb)
    assert np.any(w.rgb[:, : SIZE // 4] != shot[0].rgb[:, : SIZE // 4]) or np.any(w.labels != shot[0].labels)


def test_appearance_is_not_a_lookup_of_the_label() -> None:
    f = render(FaceState(mouth_open=0.8, noise_sigma=0.0), SIZE)
    for part in ("skin", "upper_lip", "eye_whites", "mouth_interior", "hair", "background"):
        px = f.rgb[f.labels == P[part]]
        assert px.std(0).max() > 0.01, part
    skin = f.rgb[f.labels == P["skin"]].mean(0)
    lip = f.rgb[f.labels == P["upper_lip"]].mean(0)
    hue = [
        cv2.cvtColor(c.reshape(1, 1, 3).astype(np.float32), cv2.COLOR_RGB2HSV)[0, 0, 0] for c in (skin, lip)
    ]
    assert abs(hue[0] - hue[1]) < 25.0  # lips close in hue to skin: colour alone does not separate them
