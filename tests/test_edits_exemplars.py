"""Closed-eye exemplars: a strongly closing eye_open takes the eye region from the shot's most closed frame,
moved onto this frame's eye; near-open values, shots that never blink and excluded frames keep the column rule."""

from __future__ import annotations

import numpy as np
import pytest

from vq_models.edits.exemplars import (
    CLOSED_SHARE,
    MOUTH,
    MOUTH_MATCH,
    PartExemplars,
    part_track,
    similarity,
    upper_lip_offset,
)
from vq_models.edits.ops import OPENING_PAST_WIDEST, FrameContext, eye_open, eye_open_donors, gaze, mouth_open
from vq_models.edits.prior import validate_prior

L = 48
SKIN, LID, WHITE, IRIS = 1, 2, 3, 4
SUNLIT = 5  # another eye-white code


def _eye_contour(cx: float, cy: float, w: float, h: float) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    return np.stack([cx + w / 2 * np.cos(t), cy + h / 2 * np.sin(t)], axis=1)


def _frame(cx: float, opening: float) -> tuple[np.ndarray, np.ndarray]:
    """A label map with one eye at (cx, 20): eye white + iris when open, a lid line when closed."""
    labels = np.full((L, L), SKIN, np.uint8)
    contour = _eye_contour(cx, 20, 16, 16 * opening)
    if opening > 0.2:
        yy, xx = np.mgrid[0:L, 0:L]
        inside = ((xx - cx) / 8) ** 2 + ((yy - 20) / (8 * opening)) ** 2 <= 1
        labels[inside] = WHITE
        labels[inside & ((xx - cx) ** 2 + (yy - 20) ** 2 <= 9)] = IRIS
    else:
        labels[19:22, int(cx) - 8:int(cx) + 9] = LID
    return labels, contour


@pytest.fixture()
def shot():
    frames = {1: _frame(24, 0.5), 2: _frame(24, 0.5), 3: _frame(20, 0.05), 4: _frame(24, 0.5), 5: _frame(24, 0.45)}
    tracks = {f: {"left": part_track(c)} for f, (_, c) in frames.items()}
    return frames, PartExemplars(list(frames), lambda f: tracks[f], lambda f: frames[f][0])


def test_similarity_maps_the_corners():
    m = similarity(np.array([[0.0, 0.0], [10.0, 0.0]]), np.array([[5.0, 5.0], [5.0, 25.0]]))
    pts = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 0.0]]) @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(pts, [[5, 5], [5, 25], [5, 15]], atol=1e-9)


def test_closing_borrows_the_closed_frame_moved_onto_this_eye(shot):
    frames, ex = shot
    assert ex.closed_donor("left") == 3
    labels = frames[1][0]
    out = ex.close(labels, 1, "left", 0.0)
    assert out is not None
    assert not np.isin(out, [WHITE, IRIS]).any()  # no eye opening left
    lid_x = np.nonzero((out == LID).any(axis=0))[0]
    assert abs(lid_x.mean() - 24) < 1.0  # the lid sits on this frame's eye, not where frame 3's was (20)
    assert np.array_equal(out[40:], labels[40:])  # far from the eye nothing changes


def test_transplant_takes_any_frame_as_donor_and_changes_nothing_from_itself(shot):
    """The blink what-if's yardstick moves the answer's own eye onto the open frame, whichever frame it is
    (even one not counted as closed); a frame moved onto itself is itself."""
    frames, ex = shot
    labels = frames[1][0]
    assert np.array_equal(ex.transplant(labels, 1, "left", 1), labels)
    half = ex.transplant(labels, 1, "left", 5)  # frame 5 is too open to lend for eye_open, not for this
    assert half is not None and not np.array_equal(half, labels)
    assert (half == IRIS).sum() == (frames[5][0] == IRIS).sum()  # same size eye, same place: its iris whole
    assert ex.transplant(labels, 1, "right", 3) is None  # no such eye tracked


def test_near_open_values_excluded_frames_and_unblinking_shots_keep_the_column_rule(shot):
    frames, ex = shot
    labels = frames[1][0]
    assert ex.close(labels, 1, "left", 0.95) is None
    assert ex.close(labels, 1, "left", 0.0, exclude={3}) is None  # frame 5 is not closed enough
    assert ex.close(labels, 1, "right", 0.0) is None  # no such eye tracked
    assert CLOSED_SHARE < 0.9


def test_eye_open_op_uses_exemplars_through_the_context(shot):
    frames, ex = shot
    prior = validate_prior({"version": 1, "num_codes": 8, "segments": {
        "skin": [SKIN], "eyelids": [LID], "eye_whites": [WHITE], "irises": [IRIS]}}, "prior")
    labels = frames[2][0]
    borrowed = eye_open(labels, 0.0, {"eye": "left"}, prior, FrameContext(frame=2, exemplars=ex))
    geometric = eye_open(labels, 0.0, {"eye": "left"}, prior, FrameContext(frame=2, exemplars=ex,
                                                                               exclude=frozenset({3})))
    assert (borrowed == LID).sum() > 0 and not np.isin(borrowed, [WHITE, IRIS]).any()
    assert not np.array_equal(borrowed, geometric)  # without a closed frame to borrow, the column rule ran



def test_a_keyed_close_draws_the_borrowed_eye_down_over_the_borrowing_range(shot):
    """Between where borrowing starts and 0 the borrowed closed eye comes down from the top: the lid covers
    more with every value, the rows it has not reached yet are the column rule's, and at 0 it is the whole
    borrowed eye (not a swap at the start and then nothing)."""
    frames, ex = shot
    prior = validate_prior({"version": 1, "num_codes": 8, "segments": {
        "skin": [SKIN], "eyelids": [LID], "eye_whites": [WHITE], "irises": [IRIS]}}, "prior")
    labels = frames[2][0]
    start = CLOSED_SHARE * ex.median("left") / ex.opening_at(2, "left")
    ctx = FrameContext(frame=2, exemplars=ex)
    whole = ex.close(labels, 2, "left", 0.0)
    assert ex.borrowed_share(2, "left", start) == pytest.approx(0.0)
    assert ex.borrowed_share(2, "left", 0.0) == 1.0
    assert np.array_equal(eye_open(labels, 0.0, {"eye": "left"}, prior, ctx), whole)
    shares = []
    for value in (0.8 * start, 0.5 * start, 0.2 * start):
        out = eye_open(labels, value, {"eye": "left"}, prior, ctx)
        rule = eye_open(labels, value, {"eye": "left"}, prior, FrameContext(frame=2, exemplars=ex,
                                                                          exclude=frozenset({3})))
        taken = (out == whole) & (whole != labels)
        kept = (out != whole) & (whole != labels)
        assert taken.any() and kept.any()
        assert np.array_equal(out[kept], rule[kept])  # below the line: the column rule at this value
        assert np.nonzero(taken)[0].min() < np.nonzero(kept)[0].min()  # the borrowed eye is on top
        shares.append(taken.sum() / (whole != labels).sum())
    assert shares[0] < shares[1] < shares[2] < 1.0


def test_closing_an_eye_keeps_open_eyed_frames_from_lending_plate_detail(shot):
    """The detail pass picks donors by segments, which an open eye with mis-filed iris codes can pass: the op
    itself says which frames may lend (the shot's closed ones for a closed eye)."""
    _, ex = shot
    closed = eye_open_donors(0.0, {"eye": "left"}, FrameContext(frame=1, exemplars=ex))
    assert closed == {1, 2, 4, 5}  # only frame 3 is closed
    assert eye_open_donors(0.5, {"eye": "left"}, FrameContext(frame=1, exemplars=ex)) == {1, 2, 4, 5}
    # nearly open: every frame is within the slack of the asked-for opening
    assert eye_open_donors(0.95, {"eye": "left"}, FrameContext(frame=5, exemplars=ex)) == frozenset()
    assert eye_open_donors(1.0, {"eye": "left"}, FrameContext(frame=1, exemplars=ex)) == frozenset()
    assert eye_open_donors(0.0, {"eye": "right"}, FrameContext(frame=1, exemplars=ex)) == frozenset()  # untracked
    assert eye_open_donors(0.0, {"eye": "left"}, FrameContext()) == frozenset()  # no shot to ask


def test_the_program_reports_eye_opens_donor_rule_with_the_pixels_it_changed(shot):
    from vq_models.edits.program import apply_program_rules, parse_program

    frames, ex = shot
    prior = validate_prior({"version": 1, "num_codes": 8, "segments": {
        "skin": [SKIN], "eyelids": [LID], "eye_whites": [WHITE], "irises": [IRIS]}}, "prior")
    prog = parse_program({"version": 1, "edits": [{"op": "eye_open", "eye": "left", "value": 0.0},
                                                  {"op": "eye_open", "eye": "left", "value": 1.0}]}, prior)
    out, changed, rules = apply_program_rules(prog, frames[1][0], 1, prior, FrameContext(frame=1, exemplars=ex))
    assert len(rules) == 1  # the edit at 1 changes nothing, so it binds nothing
    assert rules[0].exclude == {1, 2, 4, 5}
    np.testing.assert_array_equal(rules[0].changed, changed)


def test_each_blink_lends_only_its_deepest_frame():
    from vq_models.edits.exemplars import deepest_of_each_blink

    frames = list(range(1, 11))
    assert deepest_of_each_blink(frames, [4, 3, 9, 5, 8]) == [4, 9]
    assert deepest_of_each_blink(frames, [1, 10]) == [1, 10]  # runs at the shot's ends
    assert deepest_of_each_blink(frames, []) == []


def test_the_exemplar_is_the_blink_whose_head_pose_is_nearest():
    """A closed lid's shading and foreshortening follow the head: of the shot's blinks, the one whose head is
    turned like this frame's lends, even when another blink is a little more closed."""
    from vq_models.edits.exemplars import pose_distance

    def rot(deg: float, scale: float = 1.0) -> np.ndarray:
        a = np.radians(deg)
        return scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])

    openings = {1: 0.5, 2: 0.5, 3: 0.04, 4: 0.08, 5: 0.5, 6: 0.06, 7: 0.5, 8: 0.5}
    poses = {1: rot(0), 2: rot(0), 3: rot(0), 4: rot(0), 5: rot(20), 6: rot(20), 7: rot(20), 8: rot(21)}
    frames = {f: _frame(24, o) for f, o in openings.items()}
    tracks = {f: {"left": part_track(c)} for f, (_, c) in frames.items()}
    ex = PartExemplars(list(frames), lambda f: tracks[f], lambda f: frames[f][0], lambda f: poses[f])
    assert ex.closed_donor("left") == 3  # without a frame to match: the most closed
    assert ex.closed_donor("left", like=8) == 6  # turned like frame 8: the second blink's deepest frame
    assert ex.closed_donor("left", like=1) == 3  # the first blink's deepest frame, not its edge (4)
    assert pose_distance(rot(5, 1.1), rot(5, 1.1)) == pytest.approx(0.0, abs=1e-12)
    assert pose_distance(rot(0, 2.0), rot(0, 1.0)) == pytest.approx(np.sqrt(2.0))  # scale counts, size does not
    assert pose_distance(rot(10, 3.0), rot(0, 3.0)) == pytest.approx(pose_distance(rot(10), rot(0)))


def _looking(offset: float, white: int = WHITE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An open eye at (24, 20), 16 wide, its iris ``offset`` label pixels right of the eye's centre."""
    labels = np.full((L, L), SKIN, np.uint8)
    yy, xx = np.mgrid[0:L, 0:L]
    inside = ((xx - 24) / 8) ** 2 + ((yy - 20) / 4) ** 2 <= 1
    labels[inside] = white
    labels[inside & ((xx - 24 - offset) ** 2 + (yy - 20) ** 2 <= 9)] = IRIS
    return labels, _eye_contour(24, 20, 16, 8), _eye_contour(24 + offset, 20, 6, 6)


@pytest.fixture()
def glances():
    """Frame 1 looks ahead; 2 and 3 look left by 4 label pixels (a quarter of the eye's width), their whites in
    another white code (the shot's own look); 4 looks left as far but with the eye half as open; 5 looks
    right."""
    frames = {1: _looking(0.0), 2: _looking(-4.0, SUNLIT), 3: _looking(-4.0, SUNLIT), 4: _looking(-4.0),
              5: _looking(4.0)}
    tracks = {f: {"left": part_track(c, None, iris)} for f, (_, c, iris) in frames.items()}
    half = part_track(_eye_contour(24, 20, 16, 4), None, frames[4][2])
    tracks[4] = {"left": half}
    return frames, PartExemplars(list(frames), lambda f: tracks[f], lambda f: frames[f][0])


def test_a_track_says_where_its_iris_looks_in_eye_widths(glances):
    frames, ex = glances
    assert ex.track(1, "left").gaze == pytest.approx((0.0, 0.0), abs=1e-9)
    assert ex.track(2, "left").gaze == pytest.approx((-0.25, 0.0), abs=1e-9)
    assert part_track(frames[1][1]).gaze is None  # no iris tracked


def test_gaze_borrows_the_eye_of_a_frame_that_looks_there(glances):
    """gaze [-0.25, 0] with ``borrow`` on the frame looking ahead takes the eye of a frame looking a quarter
    width left, as open as it is (not frame 4, half closed), never an excluded one, and nothing when no frame
    looks there or no move is asked."""
    frames, ex = glances
    assert ex.gaze_donor(1, "left", (-0.25, 0.0)) in (2, 3)
    assert ex.gaze_donor(1, "left", (-0.25, 0.0), exclude={2, 3}) is None  # frame 4 is too closed
    assert ex.gaze_donor(1, "left", (-0.1, 0.0)) is None  # nobody looks there
    prior = validate_prior({"version": 1, "num_codes": 8, "segments": {
        "skin": [SKIN], "eyelids": [LID], "eye_whites": [WHITE, SUNLIT], "irises": [IRIS]}}, "prior")
    labels = frames[1][0]
    borrowed = gaze(labels, (-0.25, 0.0), {"eye": "left", "borrow": True}, prior, FrameContext(frame=1, exemplars=ex))
    np.testing.assert_array_equal(borrowed, frames[2][0])  # the same eye in the same place: that frame's labels
    shifted = gaze(labels, (-0.25, 0.0), {"eye": "left", "borrow": True}, prior,
                   FrameContext(frame=1, exemplars=ex, exclude=frozenset({2, 3})))
    assert not (shifted == SUNLIT).any()  # no frame to borrow from: the labels' own codes, moved or not
    unasked = gaze(labels, (-0.25, 0.0), {"eye": "left"}, prior, FrameContext(frame=1, exemplars=ex))
    assert not (unasked == SUNLIT).any()  # borrowing is asked for, not the default
    still = gaze(labels, (0.0, 0.0), {"eye": "left", "borrow": True}, prior, FrameContext(frame=1, exemplars=ex))
    np.testing.assert_array_equal(still, labels)  # no move asked: no frame's eye swapped in


ULIP, LLIP, CAVITY, TEETH = 6, 7, 8, 9
MOUTH_PRIOR = validate_prior({"version": 1, "num_codes": 10, "segments": {
    "skin": [SKIN], "upper_lip": [ULIP], "lower_lip": [LLIP], "mouth_interior": [CAVITY], "upper_teeth": [TEETH]}},
    "prior")


def _mouth(cx: float, opening: float, teeth: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A mouth at (cx, 30), 16 wide: lips around an interior ``opening`` × 16 tall (the upper teeth showing in
    its top half when ``teeth``), with its outer and inner contours."""
    labels = np.full((L, L), SKIN, np.uint8)
    gap = 16 * opening
    yy, xx = np.mgrid[0:L, 0:L]
    outer = ((xx - cx) / 8) ** 2 + ((yy - 30) / ((gap + 6) / 2)) ** 2 <= 1
    inner = ((xx - cx) / 6) ** 2 + ((yy - 30) / (gap / 2)) ** 2 <= 1
    labels[outer & (yy < 30)] = ULIP
    labels[outer & (yy >= 30)] = LLIP
    labels[inner] = CAVITY
    if teeth:
        labels[inner & (yy < 30)] = TEETH
    return labels, _eye_contour(cx, 30, 16, gap + 6), _eye_contour(cx, 30, 12, gap)


@pytest.fixture()
def mouths():
    """Frame 1's mouth is a little open; 2 (moved 4 label pixels left) and 3 open twice as wide and show their
    upper teeth, 3 with the head turned away; 4 opens four times as wide; 5 as little as 1."""
    frames = {1: _mouth(24, 0.1), 2: _mouth(20, 0.2, teeth=True), 3: _mouth(24, 0.2, teeth=True),
              4: _mouth(24, 0.4, teeth=True), 5: _mouth(24, 0.1)}
    tracks = {f: {MOUTH: part_track(outer, inner)} for f, (_, outer, inner) in frames.items()}
    turned = {3: np.array([[0.8, -0.3], [0.3, 0.8]])}
    return frames, PartExemplars(list(frames), lambda f: tracks[f], lambda f: frames[f][0],
                                 pose=lambda f: turned.get(f, np.eye(2)))


def test_the_mouth_is_tracked_by_its_inner_lips_over_its_width(mouths):
    _, ex = mouths
    assert ex.track(1, MOUTH).opening == pytest.approx(0.1 * 16 / 16)
    assert ex.openings()[MOUTH] == pytest.approx([0.1, 0.2, 0.2, 0.4, 0.1])


def test_opening_borrows_the_frame_that_opens_that_wide_nearest_in_pose(mouths):
    """Twice as open: frames 2 and 3 open that wide, 2's head is posed like frame 1's; never frame 1 itself,
    nor an excluded frame; nobody opens three times as wide (within MOUTH_MATCH)."""
    _, ex = mouths
    assert ex.opening_donor(1, MOUTH, 2.0) == 2
    assert ex.opening_donor(1, MOUTH, 2.0 * (1 + 0.9 * MOUTH_MATCH)) == 2
    assert ex.opening_donor(1, MOUTH, 2.0, exclude={2}) == 3
    assert ex.opening_donor(1, MOUTH, 2.0, exclude={2, 3}) is None
    assert ex.opening_donor(1, MOUTH, 3.0) is None
    assert ex.opening_donor(1, MOUTH, 4.0) == 4
    assert ex.opening_donor(5, MOUTH, 1.0) == 1  # as open: the other frame, not itself
    assert ex.opening_donor(1, "left", 2.0) is None  # not tracked


def test_mouth_open_with_borrow_takes_the_wider_mouth_moved_onto_this_one(mouths):
    """mouth_open 2 with ``borrow`` on frame 1: frame 2's mouth (its teeth), moved 4 label pixels right onto
    this mouth; without ``borrow``, closing, or with no frame to borrow from, the column rule (no teeth appear)."""
    frames, ex = mouths
    labels = frames[1][0]
    ctx = FrameContext(frame=1, exemplars=ex)
    borrowed = mouth_open(labels, 2.0, {"borrow": True}, MOUTH_PRIOR, ctx)
    np.testing.assert_array_equal(borrowed, frames[3][0])  # frame 2's mouth where frame 1's is: as frame 3 draws it
    rule = mouth_open(labels, 2.0, {}, MOUTH_PRIOR, ctx)
    assert not (rule == TEETH).any() and (rule == CAVITY).sum() > (labels == CAVITY).sum()
    lone = mouth_open(labels, 2.0, {"borrow": True}, MOUTH_PRIOR, FrameContext(frame=1, exemplars=ex,
                                                                                exclude=frozenset({2, 3})))
    np.testing.assert_array_equal(lone, rule)
    for value in (0.5, 1.0):
        np.testing.assert_array_equal(mouth_open(labels, value, {"borrow": True}, MOUTH_PRIOR, ctx),
                                      mouth_open(labels, value, {}, MOUTH_PRIOR, ctx))
    np.testing.assert_array_equal(mouth_open(labels, 2.0, {"borrow": True}, MOUTH_PRIOR, FrameContext()), rule)


def test_of_mouths_as_open_the_one_whose_upper_lip_has_this_ones_shape_lends(mouths):
    """A frame as open as asked but smiling (its upper outline's ends raised 2 label pixels) lends only when no
    frame with this mouth's shape opens that wide, whatever its head pose: opening drops the lower lip, the
    upper keeps the mouth's shape."""
    frames, ex = mouths
    _, outer, inner = frames[2]
    smile = outer.copy()
    ends = (smile[:, 1] < 30) & (np.abs(smile[:, 0] - 20) > 4)
    smile[ends, 1] -= 2.0
    tracks = {f: ex.track(f, MOUTH) for f in frames}
    tracks[6] = part_track(smile, inner)
    assert upper_lip_offset(tracks[6], tracks[1]) > 1.0 > upper_lip_offset(tracks[3], tracks[1])
    assert upper_lip_offset(part_track(smile[:-1], inner), tracks[1]) == float("inf")  # points unmatched
    turned = {3: np.array([[0.8, -0.3], [0.3, 0.8]])}
    smiling = PartExemplars([*frames, 6], lambda f: {MOUTH: tracks[f]}, lambda f: frames.get(f, frames[2])[0],
                            pose=lambda f: turned.get(f, np.eye(2)))
    assert smiling.opening_donor(1, MOUTH, 2.0, exclude={2}) == 3  # turned, but this mouth's shape
    assert smiling.opening_donor(1, MOUTH, 2.0, exclude={2, 3}) == 6  # the smile, where nothing else opens so
    tracks[7] = part_track(outer[:-1], inner)  # a tracker that drew another number of points: no shape to compare
    odd = PartExemplars([*frames, 7], lambda f: {MOUTH: tracks[f]}, lambda f: frames.get(f, frames[2])[0])
    assert odd.opening_donor(1, MOUTH, 2.0, exclude={3}) == 2
    assert odd.opening_donor(1, MOUTH, 2.0, exclude={2, 3}) == 7  # still lends where nothing else does


def test_an_opening_stops_a_little_past_the_widest_mouth_the_shot_shows(mouths):
    """Frame 1 opens 0.1 of its width and the shot at most 0.4: mouth_open 8 opens it as far as
    (1 + OPENING_PAST_WIDEST) × 0.4 / 0.1, no further (Stage II never saw a wider mouth); with frame 4 left out,
    as far past 0.2; without the shot's openings the rule opens as asked; borrowing asks for a frame as wide."""
    frames, ex = mouths
    labels = frames[1][0]
    ctx = FrameContext(frame=1, exemplars=ex)
    assert ex.widest(MOUTH) == pytest.approx(0.4) and ex.widest(MOUTH, exclude={4}) == pytest.approx(0.2)
    cap = (1.0 + OPENING_PAST_WIDEST) * 0.4 / 0.1
    wide = mouth_open(labels, 8.0, {}, MOUTH_PRIOR, ctx)
    np.testing.assert_array_equal(wide, mouth_open(labels, cap, {}, MOUTH_PRIOR, ctx))
    assert (mouth_open(labels, 8.0, {}, MOUTH_PRIOR, FrameContext()) == CAVITY).sum() > (wide == CAVITY).sum()
    np.testing.assert_array_equal(mouth_open(labels, 2.0, {}, MOUTH_PRIOR, ctx),
                                  mouth_open(labels, 2.0, {}, MOUTH_PRIOR, FrameContext()))  # within: as asked
    left_out = FrameContext(frame=1, exemplars=ex, exclude=frozenset({4}))
    np.testing.assert_array_equal(mouth_open(labels, 8.0, {}, MOUTH_PRIOR, left_out),
                                  mouth_open(labels, cap / 2, {}, MOUTH_PRIOR, left_out))
    assert ex.opening_donor(1, MOUTH, 8.0) is None  # nothing opens 8 times as wide: borrow keeps the capped rule
    np.testing.assert_array_equal(mouth_open(labels, 8.0, {"borrow": True}, MOUTH_PRIOR, ctx), wide)
