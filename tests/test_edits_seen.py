"""Teeth found in a frame's own pixels where its codes miss them (vq_models.edits.seen), the teeth edit that
removes them too, and the detail pass's donors that must not put removed teeth back."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_edits_ops import MOUTH, PRIOR, TONGUE, ULIP, UTEETH, run, synthetic_face

from vq_models.detail import DonorIndex, code_groups
from vq_models.edits import FrameContext, parse_program
from vq_models.edits.prior import Prior
from vq_models.edits.program import apply_program_rules
from vq_models.edits.seen import (
    TEETH_REACH_MARGIN,
    TEETH_SAMPLE_MIN,
    TeethLook,
    TeethReach,
    grey_tongue,
    shot_teeth_look,
    shot_teeth_reach,
    teeth_in_pixels,
    with_teeth_seen,
)
from vq_models.edits.spec import DonorRule
from vq_models.io.colour import luma
from vq_models.runtime import ShotModel

TOOTH, CAVITY, LIP = (0.80, 0.78, 0.74), (0.12, 0.05, 0.05), (0.80, 0.55, 0.55)


def _mouth() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hand-drawn face's mouth (inner lips rows 47-52), and its crop: teeth-coded pixels look like teeth,
    the interior like a dark cavity and the lips pink (as bright as the teeth), except a run of interior-coded
    pixels on row 49 that looks like teeth (teeth in the upper lip's shadow whose code the prior files under
    the interior)."""
    labels = synthetic_face()
    inner = np.zeros(labels.shape, bool)
    inner[47:53, 24:41] = True
    inner &= np.isin(labels, [ULIP, 10, MOUTH, UTEETH, 13, 14])  # the lips' inside, no cheek
    crop = np.zeros(labels.shape + (3,), np.float32) + 0.6
    crop[np.isin(labels, [ULIP, 10])] = LIP  # both lips pink
    crop[np.isin(labels, [MOUTH, 13, 14])] = CAVITY  # interior, lower teeth row's neighbours dark
    crop[labels == UTEETH] = TOOTH
    crop[labels == 13] = TOOTH  # the lower teeth
    crop[49, 28:36] = TOOTH  # misfiled: interior codes, teeth in the plate
    labels[47, 30] = ULIP
    crop[47, 30] = LIP
    return labels, inner, crop


def test_teeth_in_pixels_finds_teeth_coded_as_interior_and_not_pink_lips():
    labels, inner, crop = _mouth()
    assert np.all(labels[49, 28:36] == MOUTH)
    seen = teeth_in_pixels(labels, PRIOR, inner, lambda: crop)
    found = seen["upper_teeth"] | seen["lower_teeth"]
    expected = np.zeros_like(found)
    expected[49, 28:36] = True
    np.testing.assert_array_equal(found, expected)  # the pink lip pixel and the dark cavity are not teeth
    # those columns show both rows' codes: row 49 lies in the upper half of the inner lips (47-52)
    assert seen["upper_teeth"][49, 28:36].all()
    relabelled = with_teeth_seen(labels, PRIOR, inner, lambda: crop)
    assert np.all(relabelled[49, 28:36] == UTEETH) and np.all(relabelled[~expected] == labels[~expected])


def test_teeth_in_pixels_needs_a_crop_the_inner_lips_and_enough_coded_teeth_to_learn_from():
    labels, inner, crop = _mouth()
    assert teeth_in_pixels(labels, PRIOR, inner, None) == {}
    assert teeth_in_pixels(labels, PRIOR, inner, lambda: None) == {}  # a shot folder without this frame's crop
    assert teeth_in_pixels(labels, PRIOR, None, lambda: crop) == {}
    few = labels.copy()
    teeth = np.argwhere(np.isin(few, [UTEETH, 13]) & inner)
    for y, x in teeth[TEETH_SAMPLE_MIN - 1:]:
        few[y, x] = MOUTH
    assert teeth_in_pixels(few, PRIOR, inner, lambda: crop) == {}
    assert with_teeth_seen(few, PRIOR, inner, lambda: crop) is few


def _palette(tooth=TOOTH, lip=LIP) -> np.ndarray:
    """A Stage II palette for PRIOR's codes: teeth codes look like ``tooth``, lip codes like ``lip``, the
    cavity like CAVITY, every other code never seen (NaN)."""
    palette = np.full((PRIOR.num_codes, 3), np.nan)
    palette[PRIOR.codes_of(("upper_teeth", "lower_teeth"))] = tooth
    palette[PRIOR.codes_of(("upper_lip", "lower_lip"))] = lip
    palette[PRIOR.codes("mouth_interior")] = CAVITY
    return palette


def test_the_shots_teeth_look_is_its_teeth_codes_beside_its_lip_codes():
    look = shot_teeth_look(_palette(), PRIOR)
    assert look.brightness == pytest.approx(float(luma(np.array(TOOTH)) / luma(np.array(LIP))))
    assert look.saturation == pytest.approx((max(TOOTH) - min(TOOTH)) / (max(LIP) - min(LIP)))
    assert shot_teeth_look(None, PRIOR) is None  # a model trained before meta.json kept the palette
    unseen = _palette()
    unseen[PRIOR.codes_of(("upper_teeth", "lower_teeth"))] = np.nan
    assert shot_teeth_look(unseen, PRIOR) is None  # the shot never showed its teeth codes


def test_a_frame_with_hardly_a_teeth_code_finds_its_teeth_by_the_shots_look():
    """lp_d13 frames 15 and 53: teeth across the mouth, hardly a teeth-coded pixel to learn their look from.
    The shot's look (teeth beside lips) scaled by this frame's lips finds them, in a dim frame too; without it
    nothing is found; the pink lip pixel and the dark cavity are never teeth."""
    labels, inner, crop = _mouth()
    teeth = np.isin(labels, [UTEETH, 13]) & inner
    plate_teeth = inner & np.all(crop == np.float32(TOOTH), axis=-1)
    assert teeth.sum() >= TEETH_SAMPLE_MIN and (plate_teeth & ~teeth).any()
    uncoded = labels.copy()
    uncoded[teeth] = MOUTH  # every tooth now carries the cavity's code
    assert teeth_in_pixels(uncoded, PRIOR, inner, lambda: crop) == {}
    look = shot_teeth_look(_palette(), PRIOR)
    for light in (1.0, 0.6):  # a darker frame: the lips darken with the teeth
        lit = crop * np.float32(light)
        seen = teeth_in_pixels(uncoded, PRIOR, inner, lambda lit=lit: lit, look)
        found = seen["upper_teeth"] | seen["lower_teeth"]
        np.testing.assert_array_equal(found, plate_teeth)
    # a look whose teeth are three times as bright beside the lips passes these teeth over: the look decides
    brighter = teeth_in_pixels(uncoded, PRIOR, inner, lambda: crop, TeethLook(3.0 * look.brightness, look.saturation))
    assert not any(mask.any() for mask in brighter.values())
    relabelled = with_teeth_seen(uncoded, PRIOR, inner, lambda: crop, look)
    assert np.all(np.isin(relabelled[plate_teeth], [UTEETH, 13]))


def test_teeth_zero_removes_the_teeth_the_pixels_show_when_the_frame_has_its_crop():
    """With the frame's crop, the teeth the codes miss are freed like the coded ones (here into the named fill,
    so the change shows in the labels); without it, only the coded teeth are."""
    labels, inner, crop = _mouth()
    edit = {"op": "teeth", "fill": "tongue"}
    _, with_crop, _ = run(edit, 0.0, labels=labels, ctx=FrameContext(regions={"lips_inner": inner}, crop=lambda: crop))
    _, codes_only, _ = run(edit, 0.0, labels=labels, ctx=FrameContext(regions={"lips_inner": inner}))
    for after in (with_crop, codes_only):
        assert not np.isin(after, [UTEETH, 13]).any()
        assert after[47, 30] == ULIP  # a pink lip pixel inside the inner lips is no tooth
    assert np.all(with_crop[49, 28:36] == TONGUE) and np.all(codes_only[49, 28:36] == MOUTH)
    np.testing.assert_array_equal(with_crop[codes_only != labels], codes_only[codes_only != labels])


def test_only_the_teeth_edit_asks_donors_not_to_show_what_it_removed():
    labels = synthetic_face()
    rules = {}
    for op in ("teeth", "eye_open", "mouth_open"):
        program = parse_program({"version": 1, "edits": [{"op": op, "value": 0.0}]}, PRIOR)
        rules[op] = [r for r in apply_program_rules(program, labels, 0, PRIOR)[2] if isinstance(r, DonorRule)]
    assert rules["teeth"] and all(r.ghosts and r.changed.any() for r in rules["teeth"])
    assert not any(r.ghosts for r in rules["eye_open"] + rules["mouth_open"])


def test_a_donor_still_showing_removed_teeth_where_its_band_would_show_never_lends():
    """Three frames: 0 the edited one, 1 agrees on the emptied mouth but shows teeth a row lower (in the ring
    its band reaches), 2 agrees a little less and shows none. With what the edit replaced given, 1 is passed
    over for 2; without, 1 wins."""
    base = synthetic_face()
    edited = base.copy()
    edited[base == UTEETH] = MOUTH
    changed = edited != base
    around = np.zeros_like(changed)
    around[46:52, 25:40] = True
    around &= ~changed
    lower = base.copy()
    lower[base == UTEETH] = MOUTH
    lower[49, 27:38] = UTEETH  # its teeth a row lower
    plain = edited.copy()
    plain[48, 27:29] = ULIP  # disagrees on two changed pixels
    frames = {0: base, 1: lower, 2: plain}
    index = DonorIndex([0, 1, 2], frames.__getitem__, code_groups(PRIOR.num_codes, PRIOR))
    assert index.best(edited, changed, around, exclude={0})[0] == 1
    donor, score = index.best(edited, changed, around, exclude={0}, before=base)
    assert donor == 2 and 0 < score < 1
    # another op of the program also changed an upper-lip pixel, which frame 2 shows as lip: only what the
    # asking op removed (the teeth) binds the donors
    both = edited.copy()
    both[46, 32] = MOUTH
    asked = base == UTEETH
    assert index.best(both, both != base, around, exclude={0}, before=base, removed_by=asked)[0] == 2
    assert index.best(both, both != base, around, exclude={0}, before=base)[0] is None


def test_set_prior_rebuilds_the_donor_index_from_the_new_segments(tiny_shot, tmp_path):
    """The donors compare frames by the prior's segments: an artist's regrouping reaches them at once."""
    shot = tmp_path / "shot"
    shutil.copytree(tiny_shot, shot)
    model = ShotModel.load(shot)
    first = model.detail.donors().stack()
    codes = list(range(model.num_codes))
    model.set_prior({"version": 1, "num_codes": model.num_codes, "segments": {"skin": codes[:2], "hair": codes[2:]}})
    regrouped = model.detail.donors().stack()
    assert len(np.unique(regrouped)) == 2 and len(np.unique(first)) > 2


def test_a_shot_without_its_crops_still_removes_its_coded_teeth(tiny_shot, tmp_path):
    """The crops only refine the teeth edit: a shot folder without them renders it from the codes, no error."""
    shot = tmp_path / "shot"
    shutil.copytree(tiny_shot, shot)
    model = ShotModel.load(shot)
    model.set_prior({"version": 1, "num_codes": model.num_codes, "segments": {
        "skin": [0, 1, 2], "mouth_interior": [3], "upper_teeth": [4], "lower_teeth": [5]}})
    frame = model.frames[2]
    for png in (shot / "aligned").glob("*.png"):
        png.unlink()
    assert model._label_crop(frame) is None
    for detail in ("none", "plate"):  # the donors compare every frame's labels as seen
        fr = model.render_frame(frame, {"version": 1, "edits": [{"op": "teeth", "value": 0.0}]}, mode="edit-only",
                                detail=detail)
        assert fr.detail.mode == detail and np.isfinite(fr.rgb).all()


def test_a_row_of_teeth_s_shadowed_warm_ends_are_teeth_but_warm_pixels_beside_no_tooth_are_not():
    """Toward the corners a row of teeth darkens and takes the lips' warm light (lp_d13's smile): too
    saturated for the look test, but continuing the row sideways. A pixel as warm and bright that continues no
    row (a tongue under the teeth) stays what its code says, and so does one darker than the shadow floor."""
    labels, inner, crop = _mouth()
    warm = (0.55, 0.33, 0.28)  # between the cavity and the teeth in brightness, as saturated as the lips
    row = np.nonzero(labels[48] == UTEETH)[0]
    ends = [x for x in (row[0] - 1, row[-1] + 1) if inner[48, x]]
    assert ends and all(labels[48, x] != UTEETH for x in ends)
    for x in ends:
        crop[48, x] = warm
    crop[51, 31] = warm  # the tongue's row: beside no tooth
    far = row[-1] + 2
    crop[48, far] = CAVITY if not inner[48, far] else (0.15, 0.08, 0.07)  # a dark pixel stops the run
    seen = teeth_in_pixels(labels, PRIOR, inner, lambda: crop)
    assert all(seen["upper_teeth"][48, x] for x in ends)
    assert not seen["upper_teeth"][51, 31] and not seen["lower_teeth"][51, 31]
    assert not seen["upper_teeth"][48, far]
    _, after, _ = run({"op": "teeth", "fill": "tongue"}, 0.0, labels=labels,
                      ctx=FrameContext(regions={"lips_inner": inner}, crop=lambda: crop))
    assert all(after[48, x] == TONGUE != labels[48, x] for x in ends)  # teeth 0 frees them with the row
    assert after[51, 31] == labels[51, 31]


def test_a_shadowed_end_is_never_a_lip_or_a_tongue_as_pink_as_the_lips():
    """A tongue beside the lower teeth can be as bright as their shadowed ends (a synthetic variant's): a
    tongue-coded pixel joins the row only when it is yellower than the lips (a tooth in their warm light), and
    a lip-coded pixel never does."""
    labels, inner, crop = _mouth()
    row = np.nonzero(labels[48] == UTEETH)[0]
    left, right = row[0] - 1, row[-1] + 1
    assert inner[48, left] and inner[48, right]
    labels[48, left] = labels[48, right] = TONGUE
    crop[48, left] = (0.55, 0.33, 0.28)  # orange: a tooth in the lips' warm light
    crop[48, right] = (0.60, 0.33, 0.36)  # pink, as the lips are
    seen = teeth_in_pixels(labels, PRIOR, inner, lambda: crop)
    assert seen["upper_teeth"][48, left] and not seen["upper_teeth"][48, right]
    labels[48, left] = ULIP  # the same orange pixel coded as lip
    assert not teeth_in_pixels(labels, PRIOR, inner, lambda: crop)["upper_teeth"][48, left]


def test_where_the_interior_codes_file_teeth_a_warm_end_needs_only_to_stand_above_the_darker_cavity():
    """Where the prior files most of a smile's teeth under the interior (lp_d13), the interior's median is a
    tooth's and the shadow floor drawn from it left the corner teeth in the lips' warm light standing: a pixel
    yellower than the lips continuing a row need only stand above the interior's darker quarter; one as bright
    but as pink as the lips (a pale tongue) does not."""
    labels, inner, crop = _mouth()
    row = np.nonzero(labels[48] == UTEETH)[0]
    left, right = row[0] - 1, row[-1] + 1
    assert inner[48, left] and inner[48, right] and labels[48, left] == labels[48, right] == MOUTH
    warm, pink = (0.55, 0.38, 0.22), (0.62, 0.33, 0.40)  # as bright as each other, between cavity and teeth
    assert abs(float(luma(np.array(warm)) - luma(np.array(pink)))) < 0.02
    for x, colour in ((left, warm), (right, pink)):
        crop[48, x] = colour
    seen = teeth_in_pixels(labels, PRIOR, inner, lambda: crop)
    assert seen["upper_teeth"][48, left] and seen["upper_teeth"][48, right]  # both above the cavity's median
    interior = np.argwhere((labels == MOUTH) & inner & (np.arange(labels.shape[1])[None, :] != left)
                           & (np.arange(labels.shape[1])[None, :] != right))
    misfiled = interior[: int(0.7 * len(interior))]
    crop[misfiled[:, 0], misfiled[:, 1]] = TOOTH  # most interior-coded pixels are teeth: the median is a tooth's
    assert float(np.median(luma(crop[(labels == MOUTH) & inner]))) > 0.7
    seen = teeth_in_pixels(labels, PRIOR, inner, lambda: crop)
    assert seen["upper_teeth"][48, left], "the warm corner tooth"
    assert not (seen["upper_teeth"][48, right] or seen["lower_teeth"][48, right]), "the pink pixel"
    crop[48, left] = (0.22, 0.13, 0.07)  # as warm, but as dark as the cavity's darker quarter
    assert not teeth_in_pixels(labels, PRIOR, inner, lambda: crop)["upper_teeth"][48, left]


def test_the_teeth_edit_sees_the_shots_teeth_look_under_the_current_prior(tiny_shot, tmp_path):
    """The model hands ops the look from its own Stage II palette and the prior it holds now: an artist's
    regrouping reaches it at once, and a prior naming no lips gives none."""
    shot = tmp_path / "shot"
    shutil.copytree(tiny_shot, shot)
    model = ShotModel.load(shot)
    segments = {"skin": [0, 1], "upper_lip": [2], "mouth_interior": [3], "upper_teeth": [4], "lower_teeth": [5]}
    model.set_prior({"version": 1, "num_codes": model.num_codes, "segments": segments})
    palette = model.stage2.code_colours()
    look = model._context(model.frames[0]).teeth_look
    assert look == shot_teeth_look(palette, model.prior()) and look is not None
    segments["upper_teeth"], segments["skin"] = [6], [0, 1, 4]
    model.set_prior({"version": 1, "num_codes": model.num_codes, "segments": segments})
    assert model._context(model.frames[0]).teeth_look not in (None, look)
    del segments["upper_lip"]
    model.set_prior({"version": 1, "num_codes": model.num_codes, "segments": {**segments, "skin": [0, 1, 2, 4]}})
    assert model._context(model.frames[0]).teeth_look is None


def test_the_shots_teeth_reach_is_measured_under_the_current_prior(tiny_shot, tmp_path):
    """The model hands ops how far its teeth reach, measured over its own frames under the prior it holds now."""
    shot = tmp_path / "shot"
    shutil.copytree(tiny_shot, shot)
    model = ShotModel.load(shot)
    segments = {"skin": [0, 2], "mouth_interior": [3], "upper_teeth": [1], "lower_teeth": [5]}
    model.set_prior({"version": 1, "num_codes": model.num_codes, "segments": segments})
    reach = model._context(model.frames[0]).teeth_reach()
    frames = [(model.label_map(f), model._inner_lips(f)) for f in model.frames]
    assert reach == shot_teeth_reach(frames, model.prior()) and reach.upper is not None
    model.set_prior({"version": 1, "num_codes": model.num_codes, "segments": {**segments, "upper_teeth": [6]}})
    assert model._context(model.frames[0]).teeth_reach() == shot_teeth_reach(frames, model.prior()) != reach


def test_a_row_of_teeth_reaches_only_as_far_from_its_lip_as_the_shots_teeth_codes():
    """The shot's teeth codes between the inner lips are one row high on the hand-drawn face, so its rows of teeth
    reach that plus TEETH_REACH_MARGIN from their lips; a tooth-bright or grey tongue pixel further in is not a
    tooth, however it looks, and one within reach still is."""
    labels, inner, crop = _mouth()
    reach = shot_teeth_reach([(labels, inner), (labels, None)], PRIOR)
    assert reach == TeethReach(1.0 + TEETH_REACH_MARGIN, 1.0 + TEETH_REACH_MARGIN)
    no_teeth = np.where(np.isin(labels, [UTEETH, 13]), MOUTH, labels).astype(np.uint8)
    assert shot_teeth_reach([(no_teeth, inner)], PRIOR) == TeethReach(None, None)
    box = np.zeros((30, 30), bool)
    box[10:20, 5:15] = True  # an opening ten rows high: two from its top, three from its bottom
    near = TeethReach(2.0, 3.0).near_lips(box)
    assert near[10:12, 5:15].all() and near[17:20, 5:15].all() and not near[12:17].any() and not near[~box].any()
    assert np.array_equal(TeethReach(None, 3.0).near_lips(box)[:15], box[:15])  # a row never coded: unlimited
    assert np.array_equal(TeethReach(None, None).near_lips(inner), inner)
    # the misfiled pixels on row 49 lie three rows below the top: as pale as a tongue (greyer than the lips, no
    # brighter), they are teeth within a reach of 3, not beyond one of 2; as bright as teeth, above the lips, they
    # are teeth wherever they lie (a row the codes missed, which the reach cannot have measured)
    pale = crop.copy()
    pale[49, 28:36] = (0.52, 0.47, 0.46)
    assert luma(np.float32([[0.52, 0.47, 0.46]]))[0] < luma(np.float32([LIP]))[0]
    assert not np.any(list(teeth_in_pixels(labels, PRIOR, inner, lambda: pale, reach=TeethReach(2.0, 2.0)).values()))
    found = teeth_in_pixels(labels, PRIOR, inner, lambda: pale, reach=TeethReach(3.0, 2.0))
    assert found["upper_teeth"][49, 28:36].all()
    assert teeth_in_pixels(labels, PRIOR, inner, lambda: crop, reach=TeethReach(2.0, 2.0))["upper_teeth"][49, 28:36].all()
    # a grey tongue on row 51, two rows above the bottom: within a reach of 2, beyond one of 1
    labels, inner, crop, tongue = _tongue_as(SHADOW)
    np.testing.assert_array_equal(grey_tongue(labels, PRIOR, inner, lambda: crop, TeethReach(2.0, 2.0)), tongue)
    assert not grey_tongue(labels, PRIOR, inner, lambda: crop, TeethReach(2.0, 1.0)).any()
    ctx = FrameContext(regions={"lips_inner": inner}, crop=lambda: crop, teeth_reach=lambda: TeethReach(2.0, 1.0))
    _, kept, _ = run({"op": "teeth"}, 0.0, labels=labels, ctx=ctx)
    assert np.all(kept[tongue] == TONGUE)


SHADOW, PINK = (0.36, 0.34, 0.33), (0.85, 0.45, 0.50)


def _tongue_as(colour: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``_mouth()`` with its tongue-coded pixels (row 51, the lower half of the opening) looking like ``colour``."""
    labels, inner, crop = _mouth()
    tongue = (labels == TONGUE) & inner
    assert tongue.sum() == 5
    crop[tongue] = colour
    return labels, inner, crop, tongue


def test_a_tongue_code_as_grey_as_teeth_or_their_shadow_is_no_tongue():
    labels, inner, crop, tongue = _tongue_as(SHADOW)
    np.testing.assert_array_equal(grey_tongue(labels, PRIOR, inner, lambda: crop), tongue)
    _, _, pink, _ = _tongue_as(PINK)  # a tongue: pinker than the lips
    assert not grey_tongue(labels, PRIOR, inner, lambda: pink).any()
    assert grey_tongue(labels, PRIOR, inner, None) is None
    assert grey_tongue(labels, PRIOR, None, lambda: crop) is None
    no_tongue = Prior(PRIOR.num_codes, {k: v for k, v in PRIOR.segments.items() if k != "tongue"})
    assert grey_tongue(labels, no_tongue, inner, lambda: crop) is None
    lipless = np.where(np.isin(labels, [ULIP, 10]), 2, labels).astype(np.uint8)  # nothing to compare with
    assert grey_tongue(lipless, PRIOR, inner, lambda: crop) is None


def test_teeth_zero_empties_the_grey_tongue_codes_of_its_half_only_where_it_finds_teeth():
    labels, inner, crop, tongue = _tongue_as(SHADOW)
    ctx = FrameContext(regions={"lips_inner": inner}, crop=lambda: crop)
    _, emptied, _ = run({"op": "teeth"}, 0.0, labels=labels, ctx=ctx)
    assert np.all(emptied[tongue] == MOUTH)  # the lower row's fill
    _, partly, _ = run({"op": "teeth"}, 0.5, labels=labels, ctx=ctx)
    assert np.all(partly[tongue] == TONGUE)  # half the teeth stay, and what lies between them
    _, upper, _ = run({"op": "teeth", "which": "upper"}, 0.0, labels=labels, ctx=ctx)
    assert np.all(upper[tongue] == TONGUE)  # the lower half is not the upper row's
    _, _, pink, _ = _tongue_as(PINK)
    _, kept, _ = run({"op": "teeth"}, 0.0, labels=labels, ctx=FrameContext(regions={"lips_inner": inner},
                                                                            crop=lambda: pink))
    assert np.all(kept[tongue] == TONGUE)
    toothless = np.where(np.isin(labels, [UTEETH, 13]), MOUTH, labels).astype(np.uint8)
    shut = crop.copy()
    shut[np.all(shut == np.float32(TOOTH), axis=-1)] = CAVITY
    _, same, changed = run({"op": "teeth"}, 0.0, labels=toothless,
                           ctx=FrameContext(regions={"lips_inner": inner}, crop=lambda: shut))
    assert not changed.any()  # no teeth found: a grey seam between the lips stays as it is
