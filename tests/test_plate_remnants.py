"""What ``teeth 0`` removed but the plate still shows finer than the label grid (vq_models.edits.spec
PlateRemnants, vq_models.detail.plate_remnants): on synthetic arrays, hand-drawn labels and the real tiny
trained shot."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_edits_ops import MOUTH, PRIOR, TONGUE, synthetic_face

from vq_models.detail import REMNANT_CONTRAST, REMNANT_SATURATION, plate_remnants
from vq_models.edits import FrameContext, parse_program
from vq_models.edits.ops import teeth_remnants
from vq_models.edits.program import apply_program_rules
from vq_models.edits.spec import PlateRemnants
from vq_models.runtime import ShotModel, _footprint, _moves_kept
from vq_models.shot import CropTransform


def _inner() -> np.ndarray:
    """The hand-drawn face's opening between the inner lips (rows 47-52)."""
    inner = np.zeros(synthetic_face().shape, bool)
    inner[47:53, 24:41] = True
    return inner


def test_teeth_0_names_the_opening_and_a_partial_removal_nothing():
    inner = _inner()
    ctx = FrameContext(regions={"lips_inner": inner})
    whole = teeth_remnants(0.0, {}, ctx)
    np.testing.assert_array_equal(whole, inner)
    assert teeth_remnants(0.5, {}, ctx) is None  # the rest of each tooth stays there
    assert teeth_remnants(0.0, {}, FrameContext()) is None
    upper, lower = (teeth_remnants(0.0, {"which": w}, ctx) for w in ("upper", "lower"))
    assert not (upper & lower).any() and np.array_equal(upper | lower, whole)
    top_half = inner.copy()
    top_half[50:] = False  # rows 47-49 of 47-52
    np.testing.assert_array_equal(upper, top_half)


def test_the_program_keeps_the_remnants_where_no_later_edit_drew():
    """A later edit that changed part of the opening (the cavity drawn as tongue) takes that part back: what
    shows there is its, not a remnant of the teeth."""
    labels, inner = synthetic_face(), _inner()
    ctx = FrameContext(regions={"lips_inner": inner})
    teeth = {"op": "teeth", "value": 0.0}
    emptied, _, rules = apply_program_rules(parse_program({"version": 1, "edits": [teeth]}, PRIOR), labels, 0, PRIOR,
                                            ctx)
    (alone,) = [r.within for r in rules if isinstance(r, PlateRemnants)]
    np.testing.assert_array_equal(alone, teeth_remnants(0.0, {}, ctx))
    program = parse_program({"version": 1, "edits": [teeth, {"op": "replace", "code": MOUTH, "to": TONGUE,
                                                               "value": 1}]}, PRIOR)
    out, _, rules = apply_program_rules(program, labels, 0, PRIOR, ctx)
    (after,) = [r.within for r in rules if isinstance(r, PlateRemnants)]
    redrawn = alone & (out != emptied)
    assert redrawn.any() and not after[redrawn].any() and np.array_equal(after, alone & ~redrawn)
    kept = _moves_kept([PlateRemnants(alone)], ~redrawn, redrawn)  # the server's paint over the same pixels
    assert len(kept) == 1 and np.array_equal(kept[0].within, after)


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
