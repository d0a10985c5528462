"""Expression transfer: the driver's mouth motion re-posed onto a source with its own head pose."""

from __future__ import annotations

import numpy as np
import pytest

from vq_models.errors import InputError
from vq_models.face.expression import (
    Retarget,
    RetargetOptions,
    _polygon_area,
    from_canonical,
    to_canonical,
    transfer_tracking,
)
from vq_models.face.masks import template_contours
from vq_models.tracking.schema import FrameTrack, Tracking

LM5 = np.array([[44.0, 52.0], [84.0, 52.0], [64.0, 72.0], [50.0, 92.0], [78.0, 92.0]])


def _pose(points: np.ndarray, angle: float, scale: float, shift: np.ndarray) -> np.ndarray:
    r = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (points - 64.0) @ r.T + 64.0 + shift


def _frame(mouth_open: float, angle: float = 0.0, scale: float = 1.0, shift=(0.0, 0.0)) -> FrameTrack:
    c = template_contours(LM5)
    inner = c["lips_inner"].copy()
    centre = inner.mean(0)
    inner[:, 1] = centre[1] + (inner[:, 1] - centre[1]) * (1 + mouth_open)  # open: taller inner lips
    c["lips_inner"] = inner
    posed = {k: _pose(v, angle, scale, np.array(shift)) for k, v in c.items()}
    return FrameTrack(_pose(LM5, angle, scale, np.array(shift)), posed, None)


def _height(poly: np.ndarray, lm5: np.ndarray) -> float:
    canon = to_canonical(poly, lm5)
    return float(np.ptp(canon[:, 1]))


def test_canonical_round_trip():
    pts = np.random.default_rng(0).uniform(0, 100, (20, 2))
    lm = _pose(LM5, 0.3, 1.7, np.array([5.0, -3.0]))
    np.testing.assert_allclose(from_canonical(to_canonical(pts, lm), lm), pts, atol=1e-9)


def test_driver_mouth_motion_moves_source_mouth_in_source_pose():
    openings = [0.0, 2.0, 6.0, 1.0]
    driver = Tracking((128, 128), {i: _frame(o, shift=(i * 1.0, 0)) for i, o in enumerate(openings)})
    # source: closed mouth throughout, head rolled 20 degrees and scaled, drifting
    source = Tracking((256, 256), {100 + i: _frame(0.0, 0.35, 1.5, (10.0 + i, 4.0)) for i in range(4)})
    out = transfer_tracking(source, driver, options=RetargetOptions(smoothing=0.0))
    assert sorted(out) == [100, 101, 102, 103]
    heights = [_height(out[f].contours["lips_inner"], out[f].landmarks5) for f in sorted(out)]
    d_heights = [_height(driver[i].contours["lips_inner"], driver[i].landmarks5) for i in range(4)]
    # inner-lip opening follows the driver (median-relative), ordered the same way
    assert np.argsort(heights).tolist() == np.argsort(d_heights).tolist()
    assert heights[2] > 3 * heights[0]
    for f in out:  # upper face unchanged: eyes and brows keep the source pose exactly
        np.testing.assert_allclose(out[f].landmarks5[:3], source[f].landmarks5[:3])
        np.testing.assert_allclose(out[f].contours["left_eye"], source[f].contours["left_eye"])
    # the opening is along the source's rolled face axis, not the image's vertical
    disp = out[102].contours["lips_inner"] - source[102].contours["lips_inner"]
    axis = np.array([-np.sin(0.35), np.cos(0.35)])
    along, across = np.abs(disp @ axis), np.abs(disp @ np.array([axis[1], -axis[0]]))
    assert along.max() > 5.0 and across.max() < 1e-6 * along.max() + 1e-9


def test_mismatched_topologies_are_reported():
    a = Tracking((128, 128), {1: _frame(0.0)})
    b_frame = _frame(0.0)
    b_frame.contours["lips_inner"] = b_frame.contours["lips_inner"][:10]
    b = Tracking((128, 128), {1: b_frame})
    with pytest.raises(InputError, match="lips_inner has 20 points in the target shot but 10 in the driver"):
        transfer_tracking(a, b)


def test_neutral_strength_and_smoothing():
    openings = [0.8, 0.05, 0.0, 3.0, 6.0, 2.0]
    driver = Tracking((128, 128), {i: _frame(o) for i, o in enumerate(openings)})
    source = Tracking((128, 128), {10 + i: _frame(1.0 if i % 2 else 0.0, 0.2, 1.2) for i in range(6)})
    rt = Retarget(source, source.frame_numbers, driver, driver.frame_numbers, RetargetOptions(smoothing=0.0))
    # the most closed frames are the neutral candidates; of those, the most typical shape
    assert rt.neutral_frames[1] in (1, 2) and rt.neutral_frames[0] in (10, 12, 14)
    # strength 0: the target as shot; strength between: linear in the moved points
    for f in source.frame_numbers:
        np.testing.assert_allclose(rt.track(f, 4, 0.0).contours["lips_inner"], source[f].contours["lips_inner"])
    a, b, h = (rt.track(11, 4, s).contours["lips_inner"] for s in (0.0, 1.0, 0.5))
    np.testing.assert_allclose(h, (a + b) / 2, atol=1e-9)
    # overriding the neutral frame changes what "relative" means
    rt0 = Retarget(source, source.frame_numbers, driver, driver.frame_numbers,
                   RetargetOptions(smoothing=0.0, driver_neutral=4))
    assert _height(rt0.track(10, 4, 1.0).contours["lips_inner"], source[10].landmarks5) < \
        _height(rt.track(10, 4, 1.0).contours["lips_inner"], source[10].landmarks5)
    with pytest.raises(InputError, match="driver neutral frame 99: not in the driver shot"):
        Retarget(source, source.frame_numbers, driver, driver.frame_numbers, RetargetOptions(driver_neutral=99))
    # smoothing spreads a one-frame spike over its neighbours
    smooth = Retarget(source, source.frame_numbers, driver, driver.frame_numbers, RetargetOptions(smoothing=1.0))
    spike = [_height(smooth.track(10, j, 1.0).contours["lips_inner"], source[10].landmarks5) for j in range(6)]
    sharp = [_height(rt.track(10, j, 1.0).contours["lips_inner"], source[10].landmarks5) for j in range(6)]
    assert spike[4] < sharp[4] and spike[5] > sharp[5]


def _gap(poly: np.ndarray, lm5: np.ndarray) -> float:
    """Mean gap between the inner lips (area over the mouth width), canonical units: Retarget's opening."""
    lm = to_canonical(lm5, lm5)
    return float(_polygon_area(to_canonical(poly, lm5)) / np.linalg.norm(lm[4] - lm[3]))


def test_a_closed_driver_closes_a_target_that_never_closes():
    """The target talks throughout (its most closed frame is still open): the opening is absolute, so a
    closed driver closes it, and an opening driver opens it by the driver's opening over its neutral."""
    talk = [1.0, 3.0, 2.0, 4.0, 1.5] * 2
    source = Tracking((128, 128), {10 + i: _frame(o, 0.2, 1.2) for i, o in enumerate(talk)})
    closed = Tracking((128, 128), {i: _frame(0.0, shift=(i * 1.0, 0)) for i in range(3)})
    rt = Retarget(source, source.frame_numbers, closed, closed.frame_numbers, RetargetOptions(smoothing=0.0))
    own = [_gap(source[f].contours["lips_inner"], source[f].landmarks5) for f in source.frame_numbers]
    got = [_gap(rt.track(f, 1, 1.0).contours["lips_inner"], source[f].landmarks5) for f in source.frame_numbers]
    # the target's own opening mode extrapolated to a zero gap: far below its most closed frame
    assert max(got) < 0.25 * min(own)
    # the driver's opening (relative to its closed neutral) in the target's scale: same heights as the driver
    opening = Tracking((128, 128), {i: _frame(o) for i, o in enumerate([0.0, 2.0, 4.0, 1.0, 3.0, 0.0, 2.0, 4.0])})
    rt2 = Retarget(source, source.frame_numbers, opening, opening.frame_numbers, RetargetOptions(smoothing=0.0))
    d_rel = [_gap(opening[i].contours["lips_inner"], LM5) - _gap(opening[0].contours["lips_inner"], LM5)
             for i in range(3)]
    for i in range(3):
        h = _gap(rt2.track(12, i, 1.0).contours["lips_inner"], source[12].landmarks5)
        # within the pull of MODE_PRIOR on the two shots' few frames
        assert h == pytest.approx(rt2.scale * d_rel[i], abs=0.1 * max(d_rel))
