"""What ``teeth 0`` removed but the plate still shows finer than the label grid (vq_models.edits.spec
PlateRemnants, vq_models.detail.plate_remnants): on synthetic arrays, hand-drawn labels and the real tiny
trained shot."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
from test_edits_ops import MOUTH, PRIOR, TONGUE, synthetic_face

from vq_models.detail import (
    OPENING_GROW_PX,
    REMNANT_CONTRAST,
    REMNANT_SATURATION,
    outside_openings,
    plate_remnants,
)
from vq_models.edits import FrameContext, parse_program
from vq_models.edits.geometry import polygon_coverage
from vq_models.edits.ops import teeth_remnants
from vq_models.edits.program import OPS, apply_program_rules
from vq_models.edits.spec import PlateRemnants
from vq_models.runtime import ShotModel, _footprint, _moves_kept
from vq_models.shot import CropTransform


def _inner() -> np.ndarray:
    """The hand-drawn face's opening between the inner lips (rows 47-52)."""
    inner = np.zeros(synthetic_face().shape, bool)
    inner[47:53, 24:41] = True
    return inner


#: the hand-drawn face's opening as a tracked contour would give it (label coordinates)
CONTOUR = np.array([[23.5, 46.5], [40.5, 46.5], [40.5, 52.5], [23.5, 52.5]])


def test_teeth_0_names_the_opening_and_a_partial_removal_nothing():
    inner = _inner()
    ctx = FrameContext(regions={"lips_inner": inner})
    whole = teeth_remnants(0.0, {}, ctx)
    np.testing.assert_array_equal(whole.within, inner)
    assert whole.opening is None  # no contour, no opening: the label grid draws the edge
    assert teeth_remnants(0.5, {}, ctx) is None  # the rest of each tooth stays there
    assert teeth_remnants(0.0, {}, FrameContext()) is None
    upper, lower = (teeth_remnants(0.0, {"which": w}, ctx).within for w in ("upper", "lower"))
    assert not (upper & lower).any() and np.array_equal(upper | lower, whole.within)
    top_half = inner.copy()
    top_half[50:] = False  # rows 47-49 of 47-52
    np.testing.assert_array_equal(upper, top_half)
    tracked = FrameContext(regions={"lips_inner": inner}, outlines={"lips_inner": CONTOUR})
    for which in ("both", "upper"):  # a half's region, the whole opening's contour
        np.testing.assert_array_equal(teeth_remnants(0.0, {"which": which}, tracked).opening, CONTOUR)


def test_the_program_keeps_the_remnants_where_no_later_edit_drew():
    """A later edit that changed part of the opening (the cavity drawn as tongue) takes that part back: what
    shows there is its, not a remnant of the teeth."""
    labels, inner = synthetic_face(), _inner()
    ctx = FrameContext(regions={"lips_inner": inner})
    teeth = {"op": "teeth", "value": 0.0}
    emptied, _, rules = apply_program_rules(parse_program({"version": 1, "edits": [teeth]}, PRIOR), labels, 0, PRIOR,
                                            ctx)
    (alone,) = [r.within for r in rules if isinstance(r, PlateRemnants)]
    np.testing.assert_array_equal(alone, teeth_remnants(0.0, {}, ctx).within)
    program = parse_program({"version": 1, "edits": [teeth, {"op": "replace", "code": MOUTH, "to": TONGUE,
                                                               "value": 1}]}, PRIOR)
    out, _, rules = apply_program_rules(program, labels, 0, PRIOR, ctx)
    (after,) = [r.within for r in rules if isinstance(r, PlateRemnants)]
    redrawn = alone & (out != emptied)
    assert redrawn.any() and not after[redrawn].any() and np.array_equal(after, alone & ~redrawn)
    kept = _moves_kept([PlateRemnants(alone)], ~redrawn, redrawn)  # the server's paint over the same pixels
    assert len(kept) == 1 and np.array_equal(kept[0].within, after)


def test_the_opening_holds_only_while_no_other_edit_changed_the_mouth():
    """The contour is the frame's as shot: another edit's change near the opening (a mouth opened, a paint)
    drops it, and the label grid draws the edge again; a change far from it (an eye) does not."""
    labels, inner = synthetic_face(), _inner()
    ctx = FrameContext(regions={"lips_inner": inner}, outlines={"lips_inner": CONTOUR})
    teeth = {"op": "teeth", "value": 0.0}

    def opening(*edits: dict) -> np.ndarray | None:
        program = parse_program({"version": 1, "edits": list(edits)}, PRIOR)
        (rule,) = [r for r in apply_program_rules(program, labels, 0, PRIOR, ctx)[2] if isinstance(r, PlateRemnants)]
        return rule.opening

    np.testing.assert_array_equal(opening(teeth), CONTOUR)
    np.testing.assert_array_equal(opening(teeth, {"op": "eye_open", "value": 0.0}), CONTOUR)
    assert opening(teeth, {"op": "mouth_open", "value": 1.6}) is None
    assert opening({"op": "mouth_open", "value": 1.6}, teeth) is None
    rule = PlateRemnants(inner, CONTOUR)
    far, near = np.ones_like(inner), np.ones_like(inner)
    far[10, 10] = False  # a paint over the forehead
    near[53, 30] = False  # and one on the lower lip, a pixel below the opening
    assert _moves_kept([rule], far, ~far)[0].opening is CONTOUR
    assert _moves_kept([rule], near, ~near)[0].opening is None


def test_outside_the_opening_the_plate_keeps_its_lips():
    """Around the contour, grown by OPENING_GROW_PX, the plate draws the edge: nothing of the weight inside it,
    all of it a pixel or more beyond it near the region, none far from the region; None without a contour."""
    tf = CropTransform.from_plate_to_crop(np.array([[0.5, 0, 0], [0, 0.5, 0]]))  # the plate at twice the crop
    within = np.zeros((32, 32), bool)
    within[14:18, 10:22] = True
    contour = np.array([[9.75, 13.5], [22.25, 13.5], [22.25, 17.5], [9.75, 17.5]])  # label coordinates
    assert outside_openings([PlateRemnants(within)], tf, 32, (64, 64)) is None
    weight = outside_openings([PlateRemnants(within, contour)], tf, 32, (64, 64))
    # on the plate the contour runs through the centres of rows 27 and 35, columns 19.5 and 44.5
    assert weight[27:36, 21:44].max() == 0.0  # the render's, the rows the contour halves too
    assert np.all(weight[[27 - OPENING_GROW_PX, 35 + OPENING_GROW_PX], 24:40] == 0.5)  # grown by a pixel
    assert weight[[24, 25, 37, 38], 24:40].min() > 0.99  # the lips above and below
    assert weight[:20].max() == 0.0 and weight[44:].max() == 0.0  # beyond the region's reach


def test_polygon_coverage_is_the_share_of_each_pixel():
    square = np.array([[1.5, 1.5], [5.5, 1.5], [5.5, 4.5], [1.5, 4.5]])  # pixel edges: whole pixels
    whole = np.zeros((7, 8), np.float32)
    whole[2:5, 2:6] = 1.0  # rows 2-4, columns 2-5, and not a pixel its outline merely touches
    np.testing.assert_array_equal(polygon_coverage(square, (7, 8)), whole)
    centres = polygon_coverage(square - 0.5, (7, 8))  # through pixel centres: halves and quarters at the rim
    assert centres.sum() == 12.0 and centres[1, 1] == 0.25 and centres[2, 1] == 0.5 and centres[2, 2] == 1.0
    assert polygon_coverage(square + 100, (7, 8)).sum() == 0.0  # off the grid
    assert polygon_coverage(square[:2], (7, 8)).sum() == 0.0  # not a polygon


def _window(plate_value: float = 0.2) -> tuple[np.ndarray, np.ndarray, CropTransform]:
    """A 64² window that is its crop (64², labels 32²), the render a flat dark cavity, the plate the same."""
    render = np.full((64, 64, 3), (0.30, 0.12, 0.12), np.float32)
    plate = render.copy()
    return render, plate, CropTransform.from_plate_to_crop(np.array([[1.0, 0, 0], [0, 1.0, 0]]))


def test_a_bright_sliver_the_labels_missed_is_a_remnant_inside_the_region_only():
    render, plate, tf = _window()
    within = np.zeros((32, 32), bool)
    within[10:20, 8:24] = True  # plate rows 20-39, columns 16-47
    plate[24:26, 20:44] = (0.75, 0.72, 0.68)  # a row of tooth tips two plate pixels tall, inside
    plate[50:52, 20:44] = (0.75, 0.72, 0.68)  # the same outside the region: not the op's
    rules = [PlateRemnants(within)]
    weight = plate_remnants(render, plate, rules, tf, 64, (64, 64), render_px=1.0)
    assert weight[24:26, 22:42].min() > 0.9 and weight[45:].max() == 0.0
    assert weight[23, 30] > 0.5  # grown by a plate pixel: the tooth's soft edge goes with it
    assert weight[30:39, 22:42].max() == 0.0  # the cavity the render draws as the plate shows it
    pink = plate.copy()
    pink[24:26, 20:44] = (0.80, 0.45, 0.45)  # a tongue lit brighter than the render: as far above, but pink
    assert 1 - 0.45 / 0.80 > REMNANT_SATURATION[1]
    assert plate_remnants(render, pink, rules, tf, 64, (64, 64), render_px=1.0) is None
    faint = plate.copy()
    faint[24:26, 20:44] = render[0, 0] + REMNANT_CONTRAST[0] - 0.01  # within the render's own error
    assert plate_remnants(render, faint, rules, tf, 64, (64, 64), render_px=1.0) is None
    assert plate_remnants(render, plate, [], tf, 64, (64, 64), render_px=1.0) is None


TEETH_0 = {"version": 1, "edits": [{"op": "teeth", "value": 0.0}]}


@pytest.fixture(scope="module")
def model(tiny_shot, tmp_path_factory) -> ShotModel:
    """The tiny shot, copied (set_prior writes the prior), with a prior naming its teeth and cavity."""
    model = ShotModel.load(shutil.copytree(tiny_shot, tmp_path_factory.mktemp("remnants") / "shot"))
    model.set_prior({"version": 1, "num_codes": model.num_codes, "segments": {
        "background": [0], "skin": [2, 3, 4, 6, 7], "mouth_interior": [5], "upper_teeth": [1]}})
    return model


def test_teeth_0_takes_the_teeth_edges_the_labels_missed_and_its_alpha_covers_them(model):
    """On the trained tiny shot (its plate at twice the crop's density) the labels leave a rim of tooth pixels
    around the removed teeth: the edit's alpha covers what the detail pass finds there, and the composite is
    darker there than the same labels rendered without the op (no remnants asked for)."""
    frame = model.frames[1]
    plate = model.detail.plates.image(frame)
    size = (plate.display_window[2], plate.display_window[3])
    (x0, y0, x1, y1), _ = _footprint(model.shot.transform(frame), model.shot.crop_size, size)
    fr = model.render_frame(frame, TEETH_0, mode="edit-only", feather=2.0)
    bare = model.render_frame(frame, None, mode="edit-only", feather=2.0, labels=fr.labels)
    assert fr.detail.remnants is not None and bare.detail.remnants is None
    remnants = np.zeros(fr.alpha.shape, np.float32)
    remnants[y0:y1, x0:x1] = fr.detail.remnants
    found = remnants > 0.5
    assert found.sum() > 10 and np.all(fr.alpha[found] >= remnants[found] - 1e-6)
    darkest = [f.composite(plate).pixels[..., :3].min(axis=-1)[found] for f in (fr, bare)]
    assert float(np.median(darkest[0] / np.maximum(darkest[1], 1e-6))) < 0.8  # linear light: a third darker


def test_on_the_trained_shot_the_lips_outside_the_contour_stay_the_plates(model, monkeypatch):
    """teeth 0 on the trained tiny shot: where labels changed outside the tracked contour (grown by a pixel) the
    composite is the plate's lips, nine times nearer to it than the same render with the contour taken away
    (the label grid's edge), and inside the opening nothing moves."""
    frame = model.frames[0]
    plate = model.detail.plates.image(frame)
    size = (plate.display_window[2], plate.display_window[3])
    (x0, y0, x1, y1), sub = _footprint(model.shot.transform(frame), model.shot.crop_size, size)
    _, _, rules = model._window(frame, TEETH_0, None, None)
    outside = outside_openings(rules, sub, model.shot.crop_size, (x1 - x0, y1 - y0))
    assert outside is not None

    def errors() -> tuple[np.ndarray, np.ndarray, float, float]:
        fr = model.render_frame(frame, TEETH_0, mode="edit-only", feather=2.0)
        alpha = fr.alpha[y0:y1, x0:x1]
        off = np.abs(fr.composite(plate).pixels - plate.pixels)[y0:y1, x0:x1, :3].mean(axis=-1)
        lips, opening = (outside > 0.999) & (alpha > 0.5), (outside < 0.001) & (alpha > 0.9)
        return lips, opening, float(off[lips].mean()), float(off[opening].mean())

    lips, opening, with_contour, inside = errors()
    assert lips.sum() > 50 and opening.sum() > 20
    teeth = OPS["teeth"]
    monkeypatch.setitem(OPS, "teeth", replace(teeth, remnants=lambda *a: _without_opening(teeth.remnants(*a))))
    _, _, grid_edge, inside_grid = errors()
    assert with_contour < grid_edge / 5
    assert inside == pytest.approx(inside_grid, rel=0.01)


def _without_opening(rule: PlateRemnants | None) -> PlateRemnants | None:
    return None if rule is None else replace(rule, opening=None)
