"""Edit operations on a hand-drawn label map: eyes (lid, white, iris, pupil), brows, nose, mouth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vq_models.edits import FrameContext, Prior, apply_edit, apply_program, parse_program
from vq_models.edits import geometry as geo
from vq_models.errors import InputError

L = 64
BG, SKIN, FOREHEAD, BROW, LID, WHITE, IRIS, PUPIL, NOSE, ULIP, LLIP, MOUTH, UTEETH, LTEETH, TONGUE, HAIR = range(16)
EYE_X = (20, 44)


def synthetic_face() -> np.ndarray:
    """A 64x64 label map: skin face, forehead, hair, two brows, lids above eye-white ellipses with iris and
    pupil circles, a nose, and a mouth with lips, interior, upper/lower teeth and tongue."""
    lab = np.full((L, L), BG, np.uint8)
    cv2.ellipse(lab, (32, 34), (24, 28), 0, 0, 360, SKIN, -1)
    lab[:20][lab[:20] == SKIN] = FOREHEAD
    lab[:7] = HAIR
    for x in EYE_X:
        cv2.ellipse(lab, (x, 17), (6, 2), 0, 0, 360, BROW, -1)
        cv2.ellipse(lab, (x, 23), (7, 2), 0, 0, 360, LID, -1)
        cv2.ellipse(lab, (x, 26), (6, 3), 0, 0, 360, WHITE, -1)
        cv2.circle(lab, (x, 26), 2, IRIS, -1)
        lab[26, x] = PUPIL
        lab[25, x] = PUPIL
    cv2.ellipse(lab, (32, 36), (3, 5), 0, 0, 360, NOSE, -1)
    cv2.ellipse(lab, (32, 47), (9, 2), 0, 0, 360, ULIP, -1)
    cv2.ellipse(lab, (32, 54), (9, 2), 0, 0, 360, LLIP, -1)
    cv2.ellipse(lab, (32, 50), (8, 3), 0, 0, 360, MOUTH, -1)
    lab[48, 27:38] = UTEETH
    lab[52, 28:37] = LTEETH
    lab[51, 30:35] = TONGUE
    return lab


PRIOR = Prior(num_codes=20, segments={
    "skin": [SKIN, FOREHEAD], "hair": [HAIR], "brows": [BROW], "eyelids": [LID], "eye_whites": [WHITE],
    "irises": [IRIS], "pupils": [PUPIL], "nose": [NOSE], "upper_lip": [ULIP], "lower_lip": [LLIP],
    "mouth_interior": [MOUTH], "upper_teeth": [UTEETH], "lower_teeth": [LTEETH], "tongue": [TONGUE],
    "background": [BG]})


def run(op: dict, value=None, labels=None, prior=PRIOR, ctx=None):
    body = dict(op)
    body.setdefault("value", value)
    program = parse_program({"version": 1, "edits": [body]}, prior)
    before = synthetic_face() if labels is None else labels
    after, changed = apply_edit(program.edits[0], program.edits[0].value_at(0), before, prior, ctx)
    assert np.array_equal(changed, before != after), "changed mask must be exact"
    return before, after, changed


def opening(lab):
    return np.isin(lab, [WHITE, IRIS, PUPIL])


def test_eye_open_zero_leaves_no_eye_pixel_and_uses_lid_codes():
    before, after, changed = run({"op": "eye_open", "eye": "both"}, 0.0)
    assert not opening(after).any()
    assert set(np.unique(after[changed])) <= {LID, FOREHEAD, SKIN}
    was_open = opening(before)
    assert not (was_open & ~changed).any()
    # beyond the opening only the lid margin just above it changed (it moved down with the lid)
    above = np.zeros_like(was_open)
    for k in (1, 2):
        above[:-k] |= was_open[k:]
    assert not (changed & ~was_open & ~above).any()


def test_eye_edits_leave_stray_eye_codes_far_from_the_tracked_eyes_alone():
    """An unsupervised iris code can also mark a few hair pixels at the temple; with tracked eye regions
    the eye edits must not touch them (the demo's composite had an alpha blob there)."""
    face = synthetic_face()
    stray = (27, 3)  # at eye height, by the left temple
    face[stray] = IRIS
    regions = {}
    for name, x in (("left_eye", EYE_X[0]), ("right_eye", EYE_X[1])):
        region = np.zeros((L, L), np.uint8)
        cv2.ellipse(region, (x, 26), (6, 3), 0, 0, 360, 1, -1)
        regions[name] = region.astype(bool)
    ctx = FrameContext(regions=regions)
    for op, value in (({"op": "eye_open", "eye": "both"}, 0.0), ({"op": "gaze", "eye": "both"}, [0.3, 0.0])):
        before, after, changed = run(op, value, labels=face, ctx=ctx)
        assert not changed[stray] and after[stray] == IRIS
        assert changed[:, 10:30].any() and changed[:, 34:54].any()  # both eyes still edited
    _, closed, _ = run({"op": "eye_open", "eye": "both"}, 0.0, labels=face, ctx=ctx)
    assert not opening(closed)[:, 10:].any()


def test_eye_open_closes_the_tracked_eye_whatever_the_prior_calls_its_codes():
    """On real footage part of an iris carries codes the prior files under skin (lp_d0); closing the eye must
    still cover everything inside the tracked lid margin, or the renderer draws an iris through the lid."""
    face = synthetic_face()
    dark = 19  # a code of the skin segment that also marks the iris's rim
    prior = Prior(num_codes=20, segments={**PRIOR.segments, "skin": [SKIN, FOREHEAD, dark]})
    regions = {}
    for name, x in (("left_eye", EYE_X[0]), ("right_eye", EYE_X[1])):
        region = np.zeros((L, L), np.uint8)
        cv2.ellipse(region, (x, 26), (6, 3), 0, 0, 360, 1, -1)
        regions[name] = region.astype(bool)
        face[26, x - 3:x - 1] = dark
    _, tracked, _ = run({"op": "eye_open", "eye": "both"}, 0.0, labels=face, prior=prior,
                        ctx=FrameContext(regions=regions))
    assert not (tracked == dark).any() and not opening(tracked).any()
    _, untracked, _ = run({"op": "eye_open", "eye": "both"}, 0.0, labels=face, prior=prior)
    assert (untracked == dark).sum() == 4  # without a tracked eye only the eye segments' pixels are known


def test_eye_open_moves_the_lash_line_down_with_the_lid():
    face = synthetic_face()
    lash = 17
    prior = Prior(num_codes=20, segments={**PRIOR.segments, "eyelids": [LID, lash]})
    top, _, _ = geo.column_extents(opening(face))
    cols = np.nonzero(top >= 0)[0]
    face[top[cols] - 1, cols] = lash  # a lash row right above each column of the opening
    _, closed, _ = run({"op": "eye_open", "eye": "both"}, 0.0, labels=face, prior=prior)
    rows = np.nonzero((closed == lash).any(axis=1))[0]
    assert rows.size and rows.min() >= 26  # the lashes now lie low, where the lid meets the lower lid
    assert not (closed[top[cols] - 1, cols] == lash).any()  # and no longer where the open eye's top was
    _, half, _ = run({"op": "eye_open", "eye": "both"}, 0.5, labels=face, prior=prior)
    low = np.nonzero((half == lash).any(axis=1))[0]
    assert top[cols].min() - 1 < low.mean() < rows.mean()  # half closed: half way down


def test_eye_open_draws_a_lash_band_of_the_margins_darkest_code_under_lid_skin():
    """A real closed eye (lp_d0) is the lid fold's skin over a dark band where the lids meet: with the shot's
    code brightness, closing puts the upper margin's darkest code along the lid's edge, a band that thins as
    the value rises and, where a column closes wholly, covers the lower lid's top row (the lashes lie on it),
    and fills the rest of the opening with skin from above the margin."""
    face = synthetic_face()
    lash = 17
    prior = Prior(num_codes=20, segments={**PRIOR.segments, "eyelids": [LID, lash]})
    was_open = opening(face)
    top, bottom, _ = geo.column_extents(was_open)
    cols = np.nonzero(top >= 0)[0]
    face[top[cols] - 1, cols] = lash
    luma = np.full(20, 0.5)
    luma[lash] = 0.1
    luma[BROW] = 0.05  # darker still, but not in the margin: never the band
    ctx = FrameContext(code_luma=luma)
    _, closed, _ = run({"op": "eye_open", "eye": "both"}, 0.0, labels=face, prior=prior, ctx=ctx)
    _, half, _ = run({"op": "eye_open", "eye": "both"}, 0.5, labels=face, prior=prior, ctx=ctx)
    assert not opening(closed).any()
    for eye_x in EYE_X:
        eye_cols = cols[np.abs(cols - eye_x) <= 3]  # the eye's middle, where the opening is tallest
        for x in eye_cols:
            column = closed[top[x]:bottom[x] + 1, x]
            assert column[-2:].tolist() == [lash, lash]  # the band: 0.17 of a 13-pixel eye, at the bottom
            assert set(column[:-2].tolist()) <= {SKIN, FOREHEAD, LID} and lash not in column[:-2]
            assert closed[bottom[x] + 1, x] == lash != face[bottom[x] + 1, x]  # the lashes lie over the lower lid
            assert half[bottom[x] + 1, x] == face[bottom[x] + 1, x]  # a column still open leaves that lid alone
        band_rows = [int((half[top[x]:bottom[x] + 1, x] == lash).sum()) for x in eye_cols]
        assert max(band_rows) == 1  # half closed: a thinner band (the moved margin row) at the lid's edge
    _, plain, _ = run({"op": "eye_open", "eye": "both"}, 0.0, labels=face, prior=prior)
    assert (plain == lash).sum() < (closed == lash).sum()  # no brightness known: the moved margin row only


def test_gaze_moves_the_tracked_iris_whatever_the_prior_calls_its_codes():
    """Part of a real iris carries codes filed under other segments (lp_d13: background); gaze moves every
    pixel of the tracked iris, or those stay behind as a second, fainter iris."""
    face = synthetic_face()
    dark = 19
    prior = Prior(num_codes=20, segments={**PRIOR.segments, "background": [BG, dark]})
    regions = {}
    for side, x in (("left", EYE_X[0]), ("right", EYE_X[1])):
        eye, iris = np.zeros((L, L), np.uint8), np.zeros((L, L), np.uint8)
        cv2.ellipse(eye, (x, 26), (6, 3), 0, 0, 360, 1, -1)
        cv2.circle(iris, (x, 26), 2, 1, -1)
        regions[f"{side}_eye"], regions[f"{side}_iris"] = eye.astype(bool), iris.astype(bool)
        face[27, x - 1] = dark  # a rim pixel of the iris with a code the prior calls background
    _, moved, _ = run({"op": "gaze", "eye": "both"}, [0.25, 0.0], labels=face, prior=prior,
                      ctx=FrameContext(regions=regions))
    for x in EYE_X:
        assert moved[27, x - 1] != dark  # left where the iris was: eye white now
        assert (moved[25:29, x:x + 6] == dark).any()  # travelled with the iris
    _, untracked, _ = run({"op": "gaze", "eye": "both"}, [0.25, 0.0], labels=face, prior=prior,
                          ctx=FrameContext(regions={k: v for k, v in regions.items() if k.endswith("_eye")}))
    assert all(untracked[27, x - 1] == dark for x in EYE_X)  # without the tracked iris it stays behind


def test_eye_open_one_side_and_partial():
    before, after, _ = run({"op": "eye_open", "eye": "left"}, 0.0)
    left = np.zeros((L, L), bool)
    left[:, :32] = True
    assert not (opening(after) & left).any()
    assert np.array_equal(after[:, 32:], before[:, 32:])
    _, half, _ = run({"op": "eye_open"}, 0.5)
    n0, n1 = opening(before).sum(), opening(half).sum()
    assert 0.35 * n0 < n1 < 0.65 * n0
    # what remains hugs the lower lid: in each column the kept pixels are the bottom of the old opening
    top, bottom, _ = geo.column_extents(opening(before))
    top1, bottom1, _ = geo.column_extents(opening(half))
    cols = np.nonzero(top1 >= 0)[0]
    assert np.array_equal(bottom1[cols], bottom[cols])
    _, same, changed = run({"op": "eye_open"}, 1.0)
    assert not changed.any()


def test_gaze_moves_one_iris_and_leaves_an_iris_coded_patch_apart_from_it():
    """A code the prior files under the irises can mark a patch in the eye's corner apart from the iris (lp_d12:
    a shadow behind his glasses); gaze moves the iris the tracked iris overlaps (else the largest) and leaves the
    patch where the frame shows it, or it is drawn as a second iris beside the first."""
    face = synthetic_face()
    x = EYE_X[1]
    face[26, x + 5] = IRIS  # the patch: in the eye opening, two pixels clear of the iris
    assert face[26, x + 3] == WHITE and face[26, x + 4] == WHITE
    eye = np.zeros((L, L), np.uint8)
    cv2.ellipse(eye, (x, 26), (6, 3), 0, 0, 360, 1, -1)
    iris = np.zeros((L, L), np.uint8)
    cv2.circle(iris, (x, 26), 2, 1, -1)
    for regions in ({"right_eye": eye.astype(bool), "right_iris": iris.astype(bool)}, {"right_eye": eye.astype(bool)}):
        _, moved, _ = run({"op": "gaze", "eye": "right"}, [-0.25, 0.0], labels=face, ctx=FrameContext(regions=regions))
        assert moved[26, x + 5] == IRIS  # the patch stays
        assert geo.centroid(moved[:, 32:] == PUPIL)[0] + 32 < x - 1  # the iris went left


@pytest.mark.parametrize("dx", [-5.0, -1.0, -0.3, -0.1, 0.0, 0.15, 0.4, 1.0, 5.0])
@pytest.mark.parametrize("dy", [-5.0, -0.3, 0.0, 0.2, 5.0])
def test_gaze_never_leaves_the_eye(dx, dy):
    before, after, changed = run({"op": "gaze"}, [dx, dy])
    assert np.array_equal(opening(after), opening(before)), "the eye opening itself never changes"
    assert np.array_equal(after[~opening(before)], before[~opening(before)])
    iris_after = np.isin(after, [IRIS, PUPIL])
    assert not (iris_after & ~opening(before)).any()
    for x in EYE_X:  # the shift is shortened so the iris centre stays visible however far the gaze goes
        assert (after[:, x - 8:x + 9] == PUPIL).any()


def test_gaze_moves_iris_the_right_way():
    before, after, changed = run({"op": "gaze", "eye": "right"}, [0.25, 0.0])
    cx0 = geo.centroid(np.isin(before[:, 32:], [IRIS, PUPIL]))[0]
    cx1 = geo.centroid(np.isin(after[:, 32:], [IRIS, PUPIL]))[0]
    assert cx1 - cx0 == pytest.approx(round(0.25 * 13), abs=0.6)
    assert np.array_equal(after[:, :32], before[:, :32])
    assert set(np.unique(after[changed])) <= {WHITE, IRIS, PUPIL}


def test_gaze_moves_the_iris_when_the_whites_were_filed_as_skin():
    """Real footage at 128²: the eye whites share a code with skin highlights and the prior files them under
    skin, so the label opening is only the iris. The tracked eye contour still lets the iris move."""
    face = synthetic_face()
    face[face == WHITE] = SKIN
    regions = {}
    for side, x in zip(("left_eye", "right_eye"), EYE_X, strict=True):
        m = np.zeros((L, L), np.uint8)
        cv2.ellipse(m, (x, 26), (6, 3), 0, 0, 360, 1, -1)
        regions[side] = m.astype(bool)
    _, without, _ = run({"op": "gaze"}, [0.25, 0.0], labels=face)
    _, after, changed = run({"op": "gaze"}, [0.25, 0.0], labels=face, ctx=FrameContext(regions=regions))
    for x in EYE_X:
        band = slice(x - 8, x + 9)
        cx0, cx_without, cx1 = (geo.centroid(np.isin(lab[:, band], [IRIS, PUPIL]))[0] for lab in (face, without, after))
        assert cx_without - cx0 < 1, "without the tracked eye the iris has nowhere to go"
        assert cx1 - cx0 >= 2, "the iris moved right inside the tracked eye"
    tracked = regions["left_eye"] | regions["right_eye"]
    assert changed.any() and not (changed & ~tracked).any(), "nothing changes outside the tracked eyes"


def behind_lower_teeth(before: np.ndarray, default: int) -> np.ndarray:
    """What ``teeth 0`` puts where the lower teeth were: the tongue where the column shows it right above them,
    else ``default``."""
    above = np.roll(before, 1, axis=0)
    return np.where(above == TONGUE, TONGUE, default)[before == LTEETH]


def test_teeth_removed_and_partial():
    before, after, changed = run({"op": "teeth"}, 0.0)
    assert not np.isin(after, [UTEETH, LTEETH]).any()
    assert np.all(after[before == UTEETH] == MOUTH)
    assert np.array_equal(after[before == LTEETH], behind_lower_teeth(before, MOUTH))
    _, upper_only, _ = run({"op": "teeth", "which": "upper"}, 0.0)
    assert not (upper_only == UTEETH).any() and (upper_only == LTEETH).sum() == (before == LTEETH).sum()


def test_teeth_leave_a_teeth_coloured_highlight_far_from_the_tracked_mouth_alone():
    """A teeth code can also mark a highlight on the chin; with the tracked lips only the mouth's teeth go."""
    face = synthetic_face()
    chin = (60, 32)
    face[chin] = UTEETH
    lips = np.zeros((L, L), np.uint8)
    cv2.ellipse(lips, (32, 50), (10, 6), 0, 0, 360, 1, -1)
    _, after, changed = run({"op": "teeth"}, 0.0, labels=face, ctx=FrameContext(regions={"lips_outer": lips.astype(bool)}))
    assert after[chin] == UTEETH and not changed[chin]
    assert not np.isin(after[40:57], [UTEETH, LTEETH]).any(), "every tooth in the mouth is removed"
    _, untracked, _ = run({"op": "teeth"}, 0.0, labels=face)
    assert untracked[chin] != UTEETH, "without tracking the op cannot tell the highlight from a tooth"


def test_teeth_fill_names_the_code_or_segment_for_the_freed_pixels():
    _, by_code, changed = run({"op": "teeth", "fill": TONGUE}, 0.0)
    assert changed.any() and np.all(by_code[changed] == TONGUE)
    _, by_segment, changed = run({"op": "teeth", "fill": "upper_lip"}, 0.0)
    assert np.all(by_segment[changed] == ULIP)
    with pytest.raises(InputError, match=r"edits\[0\]\.fill.*unknown segment 'gums'"):
        run({"op": "teeth", "fill": "gums"}, 0.0)
    with pytest.raises(InputError, match=r"edits\[0\]\.fill.*out of range"):
        run({"op": "teeth", "fill": 999}, 0.0)


def test_teeth_default_fills_the_upper_row_with_the_darkest_cavity_code_when_brightness_is_known():
    dark = 19  # a second, darker cavity code (unused in the face)
    prior = Prior(num_codes=20, segments={**PRIOR.segments, "mouth_interior": [MOUTH, dark]})
    luma = np.full(20, np.nan)
    luma[MOUTH], luma[dark] = 0.15, 0.12
    before, after, changed = run({"op": "teeth"}, 0.0, prior=prior, ctx=FrameContext(code_luma=luma))
    assert np.all(after[before == UTEETH] == dark)
    assert np.array_equal(after[before == LTEETH], behind_lower_teeth(before, MOUTH))
    assert np.array_equal(changed, np.isin(before, [UTEETH, LTEETH]))
    luma[dark] = np.nan  # never seen in the shot: its brightness is unknown, so it is not chosen
    _, unseen, _ = run({"op": "teeth"}, 0.0, prior=prior, ctx=FrameContext(code_luma=luma))
    assert np.all(unseen[before == UTEETH] == MOUTH)
    _, no_luma, _ = run({"op": "teeth"}, 0.0, prior=prior)  # older models: the first code for both rows
    assert np.all(no_luma[before == UTEETH] == MOUTH)
    _, named, _ = run({"op": "teeth", "fill": {"upper": "tongue"}}, 0.0, prior=prior,
                      ctx=FrameContext(code_luma=np.where(np.isnan(luma), 0.12, luma)))
    assert np.all(named[before == UTEETH] == TONGUE)  # the artist's fill wins


def test_teeth_fill_per_row_uses_each_rows_code_and_the_default_for_a_row_left_out():
    before, after, changed = run({"op": "teeth", "fill": {"upper": PUPIL, "lower": "tongue"}}, 0.0)
    assert np.all(after[before == UTEETH] == PUPIL) and np.all(after[before == LTEETH] == TONGUE)
    assert np.array_equal(changed, np.isin(before, [UTEETH, LTEETH]))
    _, upper_only, _ = run({"op": "teeth", "fill": {"upper": PUPIL}}, 0.0)
    assert np.all(upper_only[before == UTEETH] == PUPIL)
    assert np.array_equal(upper_only[before == LTEETH], behind_lower_teeth(before, MOUTH))
    for fill, message in (({"middle": 3}, r"fill\.middle.*unknown row"), ({}, r"fill.*empty"),
                          ({"upper": "gums"}, r"fill\.upper.*unknown segment 'gums'"),
                          ({"lower": 999}, r"fill\.lower.*out of range")):
        with pytest.raises(InputError, match=message):
            run({"op": "teeth", "fill": fill}, 0.0)


def test_teeth_0_shows_the_tongue_behind_the_lower_teeth_where_it_shows_above_them():
    """A column whose tongue shows right above its lower teeth takes that tongue code down to the lip; a column
    with the upper teeth or the cavity above keeps the default fill; the artist's lower fill and a prior without
    a tongue leave the rule out."""
    face = synthetic_face()
    second = 18  # another tongue code, seen above one column
    face[51, 33] = second
    face[51, 35] = UTEETH  # clenched here: the upper teeth sit on the lower
    prior = Prior(num_codes=20, segments={**PRIOR.segments, "tongue": [TONGUE, second]})
    before, after, _ = run({"op": "teeth"}, 0.0, labels=face, prior=prior)
    assert after[52, 31] == TONGUE and after[52, 33] == second
    assert after[52, 35] == MOUTH and after[52, 28] == MOUTH  # upper teeth above; the cavity above
    _, named, _ = run({"op": "teeth", "fill": {"lower": PUPIL}}, 0.0, labels=face, prior=prior)
    assert np.all(named[before == LTEETH] == PUPIL)
    no_tongue = Prior(num_codes=20, segments={k: v for k, v in PRIOR.segments.items() if k != "tongue"})
    _, plain, _ = run({"op": "teeth"}, 0.0, labels=face, prior=no_tongue)
    assert np.all(plain[before == LTEETH] == MOUTH)


def test_mouth_open_scales_interior_and_moves_lower_lip():
    before, after, changed = run({"op": "mouth_open"}, 1.5)
    inner = [MOUTH, UTEETH, LTEETH, TONGUE]
    n0, n1 = np.isin(before, inner).sum(), np.isin(after, inner).sum()
    assert 1.3 * n0 < n1 < 1.7 * n0
    assert np.array_equal(before == ULIP, after == ULIP), "upper lip stays"
    y0 = geo.centroid(before == LLIP)[1]
    y1 = geo.centroid(after == LLIP)[1]
    assert y1 > y0 + 1.0
    _, closed, _ = run({"op": "mouth_open"}, 0.0)
    assert not np.isin(closed, inner).any()
    assert geo.centroid(closed == LLIP)[1] < y0
    assert not (closed == BG).any() or (closed == BG).sum() == (before == BG).sum()


def test_brows_remove_and_raise():
    before, after, changed = run({"op": "brows", "mode": "remove"}, 1.0)
    assert not (after == BROW).any()
    assert set(np.unique(after[changed])) <= {SKIN, FOREHEAD}
    _, raised, _ = run({"op": "brows", "mode": "raise", "side": "left"}, 0.6)
    left = raised[:, :32] == BROW
    assert geo.centroid(left)[1] < geo.centroid(before[:, :32] == BROW)[1] - 1
    assert np.array_equal(raised[:, 32:], before[:, 32:])


def test_nose_width_scales_horizontally():
    before, after, _ = run({"op": "nose_width"}, 1.8)
    b0, b1 = geo.bbox(before == NOSE), geo.bbox(after == NOSE)
    assert (b1[2] - b1[0]) > (b0[2] - b0[0]) + 2
    assert (b1[1], b1[3]) == (b0[1], b0[3])
    _, narrow, _ = run({"op": "nose_width"}, 0.4)
    assert (narrow == NOSE).sum() < (before == NOSE).sum()


def test_low_level_ops():
    before, after, changed = run({"op": "replace", "segment": "pupils", "to": "irises"}, 1.0)
    assert not (after == PUPIL).any() and np.array_equal(changed, before == PUPIL)
    _, off, changed = run({"op": "replace", "segment": "pupils", "to": "irises"}, 0.0)
    assert not changed.any()
    _, moved, _ = run({"op": "translate", "code": NOSE}, [3, -2])
    assert geo.bbox(moved == NOSE) == tuple(np.add(geo.bbox(before == NOSE), [3, -2, 3, -2]))
    _, grown, _ = run({"op": "dilate", "segment": "nose"}, 2)
    assert (grown == NOSE).sum() > (before == NOSE).sum() and np.all(grown[before == NOSE] == NOSE)
    _, shrunk, _ = run({"op": "erode", "segment": "nose"}, 1)
    assert 0 < (shrunk == NOSE).sum() < (before == NOSE).sum() and not np.isin(shrunk, [NOSE]).sum() == 0
    _, scaled, _ = run({"op": "scale", "segment": "nose"}, [2.0, 1.0])
    assert (scaled == NOSE).sum() > 1.5 * (before == NOSE).sum()
    poly = [[2, 40], [10, 40], [10, 48], [2, 48]]
    _, painted, changed = run({"op": "paint", "segment": "hair", "polygon": poly}, 1)
    assert np.all(painted[41:48, 3:10] == HAIR) and not changed[:, 12:].any()


def test_paint_in_plate_space_maps_through_transform():
    from vq_models.shot import CropTransform

    tf = CropTransform.from_plate_to_crop(np.array([[0.5, 0, -10], [0, 0.5, -20]]))  # crop 128, labels 64
    ctx = FrameContext(transform=tf, crop_size=128)
    poly = [[100, 200], [140, 200], [140, 240], [100, 240]]  # plate -> crop (40..60, 80..100) -> labels /2
    _, painted, changed = run({"op": "paint", "code": HAIR, "polygon": poly, "space": "plate"}, 1, ctx=ctx)
    box = geo.bbox(changed)
    assert box is not None and np.all(np.abs(np.subtract(box, (20, 40, 30, 50))) <= 1), box
    assert np.all(painted[changed] == HAIR)
    with pytest.raises(InputError, match="space 'plate'"):
        run({"op": "paint", "code": HAIR, "polygon": poly, "space": "plate"}, 1)


def test_missing_segment_in_prior_is_named():
    prior = Prior(num_codes=20, segments={k: v for k, v in PRIOR.segments.items() if k != "eye_whites"})
    with pytest.raises(InputError, match=r"edits\[0\] \(gaze\).*'eye_whites'"):
        run({"op": "gaze"}, [0.1, 0.0], prior=prior)


def test_program_applies_keyframes_in_order_and_reports_exact_change():
    program = parse_program({"version": 1, "edits": [
        {"op": "eye_open", "keys": [[1001, 1.0], [1011, 0.0]], "interp": "linear"},
        {"op": "teeth", "keys": [[1001, 1.0], [1002, 0.0]], "interp": "step"},
    ]}, PRIOR)
    lab = synthetic_face()
    out, changed = apply_program(program, lab, 1001, PRIOR)
    assert not changed.any() and np.array_equal(out, lab)
    out, changed = apply_program(program, lab, 1011, PRIOR)
    assert not opening(out).any() and not np.isin(out, [UTEETH, LTEETH]).any()
    assert np.array_equal(changed, out != lab)
    out6, _ = apply_program(program, lab, 1006, PRIOR)
    assert 0 < opening(out6).sum() < opening(lab).sum()
    with pytest.raises(InputError, match="num_codes"):
        apply_program(program, np.full((8, 8), 40, np.uint8), 1001, PRIOR)


def test_gaze_says_where_each_iris_landed_and_how_far_it_moved():
    """The detail pass moves the plate's own iris with the labels: each moved iris reports the pixels it
    landed on and its shift, and a later edit that covers them (an eye closed after the gaze) takes them back."""
    from vq_models.edits.program import apply_program_rules

    before = synthetic_face()
    program = parse_program({"version": 1, "edits": [{"op": "gaze", "eye": "both", "value": [0.25, 0.0]}]}, PRIOR)
    after, changed, rules = apply_program_rules(program, before, 0, PRIOR)
    moves = [r for r in rules if type(r).__name__ == "DetailMove"]
    assert len(moves) == 2
    for move in moves:
        assert move.shift == pytest.approx((0.25 * 13, 0.0))  # exact: the labels move 3, the render the rest
        assert move.label_shift == (3, 0) and move.remainder == pytest.approx((0.25, 0.0))
        landed = move.landed
        assert landed.any() and np.isin(after[landed], [IRIS, PUPIL]).all()
        assert (landed & ~changed).any(), "the iris landing on itself is part of the moved iris"
        ys, xs = np.nonzero(landed)  # the codes there came from the shift back
        assert np.array_equal(after[ys, xs], before[ys, xs - 3])
    closed = parse_program({"version": 1, "edits": [{"op": "gaze", "eye": "both", "value": [0.25, 0.0]},
                                                    {"op": "eye_open", "eye": "left", "value": 0.0}]}, PRIOR)
    _, _, rules = apply_program_rules(closed, before, 0, PRIOR)
    kept = [r for r in rules if type(r).__name__ == "DetailMove"]
    assert len(kept) == 1 and kept[0].landed[:, 32:].any() and not kept[0].landed[:, :32].any()


def test_gaze_measures_the_eye_corner_to_corner_where_it_is_tracked():
    """With the eyes' tracked contours, the value is a fraction of the contour's width (corner to corner), not
    of the opening's label pixels counted (13 here, a pixel more than the 12-wide contour); without, of those."""
    from vq_models.edits.program import apply_program_rules

    before = synthetic_face()
    outlines = {f"{side}_eye": np.array([[x - 6.0, 26.0], [x, 23.5], [x + 6.0, 26.0], [x, 28.5]])
                for side, x in (("left", EYE_X[0]), ("right", EYE_X[1]))}
    ctx = FrameContext(regions={name: geo.rasterize_polygon(pts, (L, L)) for name, pts in outlines.items()},
                       outlines=outlines)
    program = parse_program({"version": 1, "edits": [{"op": "gaze", "eye": "both", "value": [0.25, 0.0]}]}, PRIOR)
    moves = [r for r in apply_program_rules(program, before, 0, PRIOR, ctx)[2] if type(r).__name__ == "DetailMove"]
    assert len(moves) == 2 and all(m.shift == pytest.approx((0.25 * 12.0, 0.0)) for m in moves)
    untracked = [r for r in apply_program_rules(program, before, 0, PRIOR)[2] if type(r).__name__ == "DetailMove"]
    assert all(m.shift == pytest.approx((0.25 * 13.0, 0.0)) for m in untracked)


def test_a_gaze_under_half_a_label_pixel_moves_the_render_not_the_labels():
    """A keyframed gaze passes through values whose shift is a fraction of a label pixel: the labels stay,
    and each iris reports its move (all of it remainder) so the render glides instead of stepping."""
    from vq_models.edits.program import apply_program_rules

    before = synthetic_face()
    program = parse_program({"version": 1, "edits": [{"op": "gaze", "eye": "both", "value": [0.03, 0.0]}]}, PRIOR)
    after, changed, rules = apply_program_rules(program, before, 0, PRIOR)
    assert np.array_equal(after, before) and not changed.any()
    moves = [r for r in rules if type(r).__name__ == "DetailMove"]
    assert len(moves) == 2
    for move in moves:
        assert move.label_shift == (0, 0) and move.remainder == pytest.approx((0.03 * 13, 0.0))
        assert np.isin(before[move.landed], [IRIS, PUPIL]).all() and move.within is not None
    neutral = parse_program({"version": 1, "edits": [{"op": "gaze", "eye": "both", "value": [0.0, 0.0]}]}, PRIOR)
    assert apply_program_rules(neutral, before, 0, PRIOR)[2] == []


def test_a_translation_under_half_a_label_pixel_is_a_move_without_label_change():
    from vq_models.edits.program import apply_program_rules

    before = synthetic_face()
    program = parse_program({"version": 1, "edits": [{"op": "translate", "code": NOSE, "value": [0.3, 0.0]}]}, PRIOR)
    after, changed, rules = apply_program_rules(program, before, 0, PRIOR)
    (move,) = rules
    assert np.array_equal(after, before) and np.array_equal(move.landed, before == NOSE)
    assert move.remainder == pytest.approx((0.3, 0.0))


def test_a_translated_segment_says_where_it_landed():
    from vq_models.edits.program import apply_program_rules

    before = synthetic_face()
    program = parse_program({"version": 1, "edits": [{"op": "translate", "code": NOSE, "value": [3, -2]}]}, PRIOR)
    after, changed, rules = apply_program_rules(program, before, 0, PRIOR)
    (move,) = [r for r in rules if type(r).__name__ == "DetailMove"]
    assert move.shift == (3.0, -2.0)
    ys, xs = np.nonzero(move.landed)
    assert ys.size and (after[ys, xs] == NOSE).all() and (before[ys + 2, xs - 3] == NOSE).all()
    assert np.array_equal(move.landed, after == NOSE)  # where it lands on itself too: the nose shows moved there
    assert move.remainder == (0.0, 0.0)


def test_a_raised_brow_says_where_it_landed_and_removal_moves_nothing():
    from vq_models.edits.program import apply_program_rules

    before = synthetic_face()
    raised = parse_program({"version": 1, "edits": [{"op": "brows", "mode": "raise", "side": "left", "value": 0.6}]},
                           PRIOR)
    after, changed, rules = apply_program_rules(raised, before, 0, PRIOR)
    (move,) = [r for r in rules if type(r).__name__ == "DetailMove"]
    sx, sy = move.shift
    assert sx == 0 and sy < 0
    ys, xs = np.nonzero(move.landed)
    assert ys.size and (after[ys, xs] == BROW).all() and (before[ys - int(sy), xs] == BROW).all()
    removed = parse_program({"version": 1, "edits": [{"op": "brows", "mode": "remove", "value": 1.0}]}, PRIOR)
    assert not [r for r in apply_program_rules(removed, before, 0, PRIOR)[2] if type(r).__name__ == "DetailMove"]


def _edge_field(op: dict, value: float, ctx: FrameContext | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The op's labels and its summed edge field (zeros when it reports none) through the program."""
    from vq_models.edits.program import apply_program_rules
    from vq_models.edits.spec import EdgeShift

    program = parse_program({"version": 1, "edits": [dict(op, value=value)]}, PRIOR)
    out, _, rules = apply_program_rules(program, synthetic_face(), 0, PRIOR, ctx)
    edges = [r for r in rules if isinstance(r, EdgeShift)]
    assert len(edges) <= 1
    return out, edges[0].rows if edges else np.zeros((L, L), np.float32)


def test_eye_open_puts_each_lid_at_its_exact_place_between_label_rows():
    """Labels close a column by whole rows; the edge field carries the rest, so the lid's edge (the first
    open row plus the field there) is where the value says, and moves with every value, even one that
    changes no label."""
    top, bottom, _ = geo.column_extents(opening(synthetic_face()))
    cols = np.nonzero(top >= 0)[0]
    height = (bottom - top + 1).astype(np.float64)
    assert not _edge_field({"op": "eye_open"}, 1.0)[1].any()
    barely, field = _edge_field({"op": "eye_open"}, 0.97)
    assert np.array_equal(barely, synthetic_face()) and field.max() > 0.0  # no label moved, the lid did
    for value in np.linspace(0.95, 0.3, 14):
        out, field = _edge_field({"op": "eye_open"}, float(value))
        assert np.abs(field).max() <= 0.5
        new_top, _, _ = geo.column_extents(opening(out))
        for x in cols:
            if new_top[x] < 0:
                continue
            exact = bottom[x] + 1 - value * height[x]
            assert new_top[x] + field[new_top[x], x] == pytest.approx(exact, abs=1e-5), (value, x)
            assert field[new_top[x] + 2, x] == 0.0  # the lower part of the opening stays


def test_mouth_open_puts_the_lower_lip_at_its_exact_place_between_label_rows():
    before = synthetic_face()
    top, bottom, _ = geo.column_extents(np.isin(before, [MOUTH, UTEETH, LTEETH, TONGUE]))
    lip_top, _, _ = geo.column_extents(before == LLIP)
    cols = [x for x in np.nonzero(top >= 0)[0] if lip_top[x] > bottom[x]]
    for value in (0.9, 0.75, 0.5, 1.1, 1.4):
        out, field = _edge_field({"op": "mouth_open"}, value)
        assert np.abs(field).max() <= 0.5 and field.any()
        moved_top, _, _ = geo.column_extents(out == LLIP)
        for x in cols:
            height = bottom[x] - top[x] + 1
            exact = lip_top[x] + value * height - height
            assert moved_top[x] + field[moved_top[x], x] == pytest.approx(exact, abs=1e-5), (value, x)


@pytest.mark.parametrize("value", [0.0, 0.4, 0.8])
def test_mouth_open_closing_lowers_the_upper_lip_by_the_shots_share(value):
    """With the shot's upper lip taking a share of the opening, closing brings the upper lip's inner edge down
    by that share of what closes (its lowest row drawn on) and the lower lip up by the rest, each to its exact
    place with the edge field's rest; at 0 no interior is left; the upper lip's top stays; share 0 is the rule
    without it, and opening ignores the share."""
    share = 0.3
    before = synthetic_face()
    inner = [MOUTH, UTEETH, LTEETH, TONGUE]
    top, bottom, _ = geo.column_extents(np.isin(before, inner))
    lip_top, _, _ = geo.column_extents(before == LLIP)
    upper_top, _, _ = geo.column_extents(before == ULIP)
    cols = [x for x in np.nonzero(top >= 0)[0] if lip_top[x] > bottom[x] and before[top[x] - 1, x] == ULIP]
    assert len(cols) >= 5
    out, field = _edge_field({"op": "mouth_open"}, value, FrameContext(upper_lip_share=lambda: share))
    plain, plain_field = _edge_field({"op": "mouth_open"}, value)
    assert not (np.array_equal(out, plain) and np.array_equal(field, plain_field))
    new_upper_top, new_upper_bottom, _ = geo.column_extents(out == ULIP)
    moved_lip_top, _, _ = geo.column_extents(out == LLIP)
    for x in cols:
        height = bottom[x] - top[x] + 1
        drop = share * (1.0 - value) * height
        assert new_upper_top[x] == upper_top[x]
        seam = new_upper_bottom[x] + 1  # the first row under the upper lip
        assert seam + field[seam - 1, x] == pytest.approx(top[x] + drop, abs=1e-5), x
        exact_lip = lip_top[x] - (1.0 - share) * (1.0 - value) * height
        assert moved_lip_top[x] + field[moved_lip_top[x], x] == pytest.approx(exact_lip, abs=1e-5), x
    if value == 0.0:
        assert not np.isin(out, inner).any()
    opened, _ = _edge_field({"op": "mouth_open"}, 1.4, FrameContext(upper_lip_share=lambda: share))
    assert np.array_equal(opened, _edge_field({"op": "mouth_open"}, 1.4)[0])


@pytest.mark.parametrize("value", [1.3, 1.6, 2.2])
def test_mouth_open_grows_the_cavity_below_the_upper_teeth_and_keeps_every_tooth_its_size(value):
    """Opening, a column's teeth, tongue and the shadow above its upper teeth keep their rows; the cavity below
    the first teeth row takes the growth, so the upper teeth stay and the lower ones move down with the lip."""
    before, after, _ = run({"op": "mouth_open"}, value)
    checked = 0
    for x in range(L):
        col_b, col_a = before[:, x], after[:, x]
        if not ((col_b == UTEETH).any() and (col_b == LTEETH).any()):
            continue
        for code in (UTEETH, LTEETH, TONGUE):
            assert (col_a == code).sum() == (col_b == code).sum(), (x, code)
        np.testing.assert_array_equal(np.nonzero(col_a == UTEETH)[0], np.nonzero(col_b == UTEETH)[0])
        assert np.nonzero(col_a == LTEETH)[0].min() > np.nonzero(col_b == LTEETH)[0].min()
        checked += 1
    assert checked >= 5


def test_mouth_open_opens_the_tracked_gap_between_the_lips():
    """Where the frame tracks its inner lips, opening moves each column's lower lip by value - 1 times the
    tracked gap there (the interior's label rows take in the lips' inner shadow: scaling them overshot on real
    openings), nothing beyond the gap's ends; closing still scales the rows, so 0 closes the mouth."""
    before = synthetic_face()
    theta = np.linspace(0.0, 2.0 * np.pi, 48, endpoint=False)
    gap = np.stack([32.0 + 6.0 * np.cos(theta), 50.0 + 1.2 * np.sin(theta)], axis=1)  # 2.4 rows at its middle
    ctx = FrameContext(outlines={"lips_inner": gap})
    span = geo.polygon_column_span(gap, L)
    assert span[32] == pytest.approx(2.4, abs=0.01) and np.isnan(span[20]) and np.isnan(span[39])
    lip_top, _, _ = geo.column_extents(before == LLIP)
    top, bottom, _ = geo.column_extents(np.isin(before, [MOUTH, UTEETH, LTEETH, TONGUE]))
    cols = [x for x in np.nonzero(top >= 0)[0] if lip_top[x] > bottom[x]]
    for value in (1.3, 1.8, 2.5):
        out, field = _edge_field({"op": "mouth_open"}, value, ctx)
        moved_top, _, _ = geo.column_extents(out == LLIP)
        for x in cols:
            exact = lip_top[x] + (value - 1.0) * np.nan_to_num(span[x], nan=0.0)
            assert moved_top[x] + field[moved_top[x], x] == pytest.approx(exact, abs=1e-5), (value, x)
    tracked, _ = _edge_field({"op": "mouth_open"}, 1.8, ctx)
    scaled, _ = _edge_field({"op": "mouth_open"}, 1.8)  # no tracking: the rows scale, far more than the gap
    assert geo.column_extents(scaled == LLIP)[0][32] >= geo.column_extents(tracked == LLIP)[0][32] + 3
    closed, _ = _edge_field({"op": "mouth_open"}, 0.0, ctx)
    assert not np.isin(closed, [MOUTH, UTEETH, LTEETH, TONGUE]).any()
    slipped = FrameContext(outlines={"lips_inner": gap * [3.0, 20.0] - [64.0, 950.0]})  # 36 columns, 48 rows
    wild, _ = _edge_field({"op": "mouth_open"}, 1.8, slipped)
    np.testing.assert_array_equal(wild, scaled)  # a tracking slip opens no further than the rows' own scale


@pytest.mark.parametrize(("op", "value", "part"), [("mouth_open", 1.4, LLIP), ("mouth_open", 0.6, LLIP),
                                                   ("eye_open", 0.6, LID)])
def test_a_moved_lid_or_lip_reports_its_pull_over_the_pixels_it_changed(op, value, part):
    """Asked for (``pull``), the detail pass shows the frame's own lid or lip moved (ColumnPull / JawPull): the
    op reports one pull per part over pixels it changed, which its part now covers; a closed mouth, or an edit
    that does not ask, reports none (a closed eye reports its lid, whose lashes move at every value), and
    ``pull`` must be true or false."""
    from vq_models.edits.program import apply_program_rules

    before = synthetic_face()
    program = parse_program({"version": 1, "edits": [{"op": op, "value": value, "pull": True}]}, PRIOR)
    after, changed, rules = apply_program_rules(program, before, 0, PRIOR)
    pulls = [r for r in rules if getattr(r, "pull", None) is not None]
    assert 1 <= len(pulls) <= 2
    for move in pulls:
        assert move.landed.any() and not (move.landed & ~changed).any()
        assert move.pull.strength == 1.0
    landed = np.any([m.landed for m in pulls], axis=0)
    assert np.isin(after[landed], [part, SKIN, FOREHEAD, BROW]).all()
    for quiet in ({"value": 0.0, "pull": True}, {"value": value}):  # closed, or not asked for
        closed = parse_program({"version": 1, "edits": [{"op": op, **quiet}]}, PRIOR)
        reported = [r for r in apply_program_rules(closed, before, 0, PRIOR)[2] if getattr(r, "pull", None)]
        if op == "eye_open" and quiet.get("pull"):  # a closed lid's lashes still move: its pull, at strength 0
            assert reported and all(r.pull.strength == 0.0 and r.pull.value == 0.0 for r in reported)
        else:  # closed lips press together, so a closed mouth reports none
            assert not reported
    with pytest.raises(InputError, match=r"edits\[0\]\.pull"):
        parse_program({"version": 1, "edits": [{"op": op, "value": value, "pull": "yes"}]}, PRIOR)


@pytest.mark.parametrize("share", [0.0, 0.3])
def test_a_pulled_lip_moves_as_far_as_its_labels_when_the_upper_lip_closes_part(share):
    """The pull (JawPull) shows the frame's own lower lip where the labels put it: at the mouth's middle it
    moves by the lip's own label rows, fewer when the upper lip takes its share of the closing."""
    from vq_models.edits.program import apply_program_rules

    before = synthetic_face()
    program = parse_program({"version": 1, "edits": [{"op": "mouth_open", "value": 0.6, "pull": True}]}, PRIOR)
    after, _, rules = apply_program_rules(program, before, 0, PRIOR, FrameContext(upper_lip_share=lambda: share))
    (move,) = [r for r in rules if getattr(r, "pull", None) is not None]
    lip_top, _, _ = geo.column_extents(before == LLIP)
    moved_top, _, _ = geo.column_extents(after == LLIP)
    x = 32
    rows = float(moved_top[x] - lip_top[x])
    assert rows == (-2.0 if share else -3.0)
    assert move.pull.rows_at(np.array([float(x)]), np.array([float(moved_top[x])]))[0] == pytest.approx(rows, abs=0.02)
