"""A part moved by less than its labels can say: the render moved by the remainder, and the pixels redrawn."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from vq_models.edits.pulls import ColumnPull, JawPull
from vq_models.edits.spec import DetailMove, EdgeShift, label_shift
from vq_models.moved_parts import move_remainders, redrawn, shift_edges
from vq_models.shot import CropTransform


def _disc_render(size: int, cx: float, cy: float, r: float) -> np.ndarray:
    """A white render with a soft dark disc (an iris as Stage II draws it)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dark = np.clip(r + 0.5 - np.hypot(xx - cx, yy - cy), 0.0, 1.0)
    return np.repeat((0.9 - 0.8 * dark)[..., None], 3, axis=2).astype(np.float32)


def _centroid_x(render: np.ndarray) -> float:
    dark = np.clip(0.9 - render[..., 0], 0.0, None)
    return float((dark * np.arange(render.shape[1])[None, :]).sum() / dark.sum())


def test_label_shift_rounds_halves_away_from_zero():
    assert label_shift((2.5, -2.5)) == (3, -3)
    assert label_shift((0.49, -0.49)) == (0, 0)
    move = DetailMove(np.zeros((4, 4), bool), (3.3, -1.6))
    assert move.label_shift == (3, -2) and move.remainder == pytest.approx((0.3, 0.4))


@pytest.mark.parametrize("remainder", [0.25, -0.4, 0.5])
def test_the_render_moves_by_the_remainder_inside_the_part(remainder):
    L, R = 16, 64  # four render pixels per label pixel
    render = _disc_render(R, 30.0, 32.0, 6.0)
    landed = np.zeros((L, L), bool)
    cv2.circle(landed.view(np.uint8), (7, 8), 2, 1, -1)
    move = DetailMove(landed, (2.0 + remainder, 0.0))  # 2.5: the labels move 3, the render -0.5
    out = move_remainders(render, [move], L)
    assert abs(move.remainder[0]) == pytest.approx(abs(remainder))
    assert _centroid_x(out) - _centroid_x(render) == pytest.approx(move.remainder[0] * R / L, abs=0.15)
    far = np.ones((R, R), bool)
    far[16:48, 12:48] = False  # beyond the part grown by a label pixel and its feather
    np.testing.assert_array_equal(out[far], render[far])


def test_a_whole_pixel_move_leaves_the_render_as_drawn():
    render = _disc_render(32, 16.0, 16.0, 4.0)
    landed = np.zeros((16, 16), bool)
    landed[6:10, 6:10] = True
    np.testing.assert_array_equal(move_remainders(render, [DetailMove(landed, (2.0, -1.0))], 16), render)


def test_the_remainder_stays_inside_where_the_part_moves():
    """An iris under the lid: the render moves only inside the eye's opening, the lid stays put."""
    L, R = 16, 64
    render = _disc_render(R, 30.0, 32.0, 6.0)
    render[:26] = 0.3  # a lid above the opening
    landed = np.zeros((L, L), bool)
    cv2.circle(landed.view(np.uint8), (7, 8), 2, 1, -1)
    within = np.zeros((L, L), bool)
    within[7:] = True  # the opening starts at label row 7 (render row 28)
    out = move_remainders(render, [DetailMove(landed, (0.0, -0.45), within=within)], L)
    np.testing.assert_allclose(out[:24], render[:24], atol=1e-6)
    assert np.abs(out[30:40] - render[30:40]).max() > 0.05


def test_redrawn_adds_what_moved_parts_cover():
    changed = np.zeros((8, 8), bool)
    changed[0, 0] = True
    landed = np.zeros((8, 8), bool)
    landed[3:5, 3:5] = True
    assert redrawn(changed, [DetailMove(landed, (0.3, 0.0))]).sum() == 5
    assert redrawn(changed, [DetailMove(landed, (0.0, 0.0))]).sum() == 1


def _edge_row(image: np.ndarray, x: int) -> float:
    """Sub-pixel row where column ``x`` of a dark-over-light image crosses half way (its edge)."""
    col = image[:, x, 0]
    y = int(np.nonzero(col > 0.5)[0][0])
    return y - 1 + (0.5 - col[y - 1]) / (col[y] - col[y - 1]) + 0.5


@pytest.mark.parametrize("rest", [0.3, -0.45])
def test_an_edge_field_moves_the_edge_along_the_crops_vertical_by_its_rest(rest):
    """A lid's edge at a label row, the field's rest over the rows around it: on a plate where a label pixel
    is 6 plate pixels, the edge moves 6 × rest plate pixels down, and nothing beyond the smoothed field moves."""
    L, crop, scale = 32, 64, 3.0  # 2 crop pixels per label pixel, 3 plate pixels per crop pixel
    transform = CropTransform.from_plate_to_crop(np.array([[1 / scale, 0.0, 0.0], [0.0, 1 / scale, 0.0]]))
    size = int(crop * scale)
    yy = np.arange(size, dtype=np.float32)[:, None, None]
    image = np.broadcast_to(np.clip(yy - 83.5 + 0.5, 0.0, 1.0) * 0.8 + 0.1, (size, size, 3)).copy()  # edge at 84
    rows = np.zeros((L, L), np.float32)
    rows[11:18, 4:28] = rest  # label rows 11-17 (plate rows 66-108) hold the edge, a lid 24 columns wide
    out = shift_edges(image, [EdgeShift(rows)], transform, crop)
    label_px = scale * crop / L
    assert _edge_row(out, size // 2) - _edge_row(image, size // 2) == pytest.approx(rest * label_px, abs=0.15)
    far = np.ones((size, size), bool)
    far[40:136] = False  # the field's rows grown by its smoothing (3 sigma) and the resampling
    np.testing.assert_array_equal(out[far], image[far])
    assert shift_edges(image, [EdgeShift(np.zeros((L, L), np.float32))], transform, crop) is image


def test_an_edge_field_that_changes_from_column_to_column_keeps_a_line_across_it_straight():
    """Columns' rests alternate (each column rounds its own share of a row): the plate moved by them must not
    bend a straight line crossing the lid edge (a glasses rim on lp_d13's lid line came out wavy)."""
    L, crop, scale = 32, 64, 3.0
    transform = CropTransform.from_plate_to_crop(np.array([[1 / scale, 0.0, 0.0], [0.0, 1 / scale, 0.0]]))
    size = int(crop * scale)
    yy = np.arange(size, dtype=np.float32)[:, None, None]
    image = np.broadcast_to(np.clip(yy - 83.5 + 0.5, 0.0, 1.0) * 0.8 + 0.1, (size, size, 3)).copy()
    rows = np.zeros((L, L), np.float32)
    rows[11:18, 4:28] = np.where(np.arange(4, 28) % 2 == 0, 0.45, -0.35)  # mean 0.05 row
    out = shift_edges(image, [EdgeShift(rows)], transform, crop)
    edge = [_edge_row(out, x) for x in range(60, 132, 3)]  # across the middle of the lid
    assert np.ptp(edge) < 0.5, edge  # within half a plate pixel: straight, where a label pixel is 6


def test_redrawn_adds_what_an_edge_field_moves():
    changed = np.zeros((8, 8), bool)
    rows = np.zeros((8, 8), np.float32)
    rows[2, 1:4] = -0.2
    assert redrawn(changed, [], [EdgeShift(rows)]).sum() == 3


def _flat_lid(value: float) -> ColumnPull:
    nan = np.full(16, np.nan)
    opening, bottom, rest = nan.copy(), nan.copy(), nan.copy()
    opening[4:13], bottom[4:13], rest[4:13] = 10.0, 14.0, 0.0  # an opening of rows 10-14 in columns 4-12
    return ColumnPull(opening, bottom, rest, value, margin=2, skin=3)


def test_a_pulled_lid_moves_its_margin_to_the_new_edge_and_stretches_the_skin_above():
    """Half closed: the lid's edge (row boundary 9.5) moves 2.5 rows down. Just above the new edge the plate
    shows the old edge (the lashes moved), the skin above stretches from nothing at the fold, the opening
    that stays and the columns beyond the lid do not move."""
    lid = _flat_lid(0.5)
    edge = 9.5 + 2.5
    assert lid.rows_at(8.0, edge - 0.01) == pytest.approx(2.5)  # shows row 9.49: the old edge
    assert lid.rows_at(8.0, edge + 0.01) == 0.0  # the opening below is itself
    assert lid.rows_at(8.0, 9.5 - 2 - 3 - 0.01) == 0.0  # above the fold
    fold, margin_top = 4.5, 9.5 - 2 + 2.5
    mid = lid.rows_at(8.0, (fold + margin_top) / 2)
    assert mid == pytest.approx(1.25, abs=1e-4)  # stretched linearly from the fold to the margin's new top
    assert lid.rows_at(1.0, 11.0) == 0.0 and lid.rows_at(15.0, 11.0) == 0.0  # beyond the lid's columns
    assert lid.rows_at(3.5, 10.5) == pytest.approx(0.5 * lid.rows_at(8.0, 10.5))  # fading out past the end


def test_a_pulled_lid_leaves_its_rest_to_the_edge_field():
    """The finished edit is moved by the smoothed rest afterwards, so the pull is the closing less the rest."""
    lid = _flat_lid(0.5)
    rest = lid.rest.copy()
    rest[4:13] = 0.3
    assert dataclasses.replace(lid, rest=rest).rows_at(8.0, 11.0) == pytest.approx(2.5 - 0.3, abs=0.01)


@pytest.mark.parametrize(("value", "strength"), [(1.0, 1.0), (0.5, 1.0), (0.375, 0.5), (0.25, 0.0), (0.0, 0.0)])
def test_the_pulled_lid_gives_way_to_the_closed_eyes_detail_as_the_eye_closes(value, strength):
    assert _flat_lid(value).strength == pytest.approx(strength)


def test_a_closed_lid_still_shows_its_lashes_moved_but_not_its_skin_stretched():
    """``eye_open`` 0: the fold unfolds, so the stretched skin shows nothing of the pull (strength 0), but the
    moved margin (its lashes, now along the lower lid) shows in full; a squint shows all of its pull; part way
    between, the skin fades and the lashes stay."""
    closed = _flat_lid(0.0)
    edge = 9.5 + 5.0  # the whole opening (rows 10-14) closed: the edge reaches the bottom
    assert closed.strength == 0.0 and closed.rows_at(8.0, edge - 0.5) == pytest.approx(5.0)
    assert closed.weight_at(8.0, edge - 0.5) == pytest.approx(1.0)  # the lashes' own row
    assert closed.weight_at(8.0, edge + 0.25) == pytest.approx(0.25)  # fading out below the edge
    assert closed.weight_at(8.0, edge + 0.6) == 0.0
    assert closed.weight_at(8.0, edge - 2.0) == 0.0  # the margin's top: its first row fades in
    assert closed.weight_at(8.0, edge - 1.5) == pytest.approx(0.5)
    assert closed.weight_at(8.0, 9.0) == 0.0 and closed.weight_at(8.0, 4.0) == 0.0  # stretched skin, above the fold
    assert closed.weight_at(1.0, edge - 0.5) == 0.0  # beyond the lid's columns
    # past the end the lid comes down half as far (to 12.0) and its lashes fade like the pull
    assert closed.weight_at(3.5, 12.0 - 0.5) == pytest.approx(0.5)
    np.testing.assert_array_equal(_flat_lid(0.5).weight_at(np.arange(16.0), np.full(16, 11.0)), 1.0)
    between = _flat_lid(0.375)  # strength 0.5
    assert between.weight_at(8.0, 6.0) == pytest.approx(0.5)
    assert between.weight_at(8.0, 9.5 + 0.625 * 5.0 - 0.5) == pytest.approx(1.0)  # its edge at 12.625


def test_a_moved_lip_shows_its_strength_everywhere():
    jaw = _flat_jaw(0.375)
    np.testing.assert_allclose(jaw.weight_at(np.arange(16.0), np.full(16, 15.0)), 0.5)


def _flat_jaw(value: float) -> JawPull:
    nan = np.full(16, np.nan)
    top, height, lip, rest = nan.copy(), nan.copy(), nan.copy(), nan.copy()
    top[4:13], height[4:13], lip[4:13], rest[4:13] = 10.0, 4.0, 16.0, 0.0  # interior rows 10-13, lip 14-16
    return JawPull(top, height, lip, rest, value, grow=(value - 1.0) * height)


def test_a_moved_lip_takes_its_own_plate_along_and_the_chin_and_interior_give_way():
    """mouth_open 1.5 on a 4-row interior: the lip moves 2 rows down. Its top shows the old lip top, the
    interior above scales into the moved lip (continuous at its top), the chin below stretches back to
    nothing CHIN_ROWS under the old lip, and above the interior nothing moves."""
    jaw = _flat_jaw(1.5)
    assert jaw.rows_at(8.0, 15.5 + 0.01) == pytest.approx(2.0)  # shows 13.51: the old lip's top
    assert jaw.rows_at(8.0, 17.0) == pytest.approx(2.0)
    assert jaw.rows_at(8.0, 15.5 - 0.01) == pytest.approx(2.0, abs=0.01)  # the interior's bottom meets it
    assert jaw.rows_at(8.0, 12.5) == pytest.approx(1.0)  # the interior scales about its top
    assert jaw.rows_at(8.0, 9.0) == 0.0
    assert jaw.rows_at(8.0, 20.5) == pytest.approx(1.0)  # half way down the stretched chin
    assert jaw.rows_at(8.0, 22.6) == 0.0 and jaw.rows_at(1.0, 17.0) == 0.0
    closing = _flat_jaw(0.5)
    assert closing.rows_at(8.0, 12.0) == pytest.approx(-2.0)  # the lip moved up shows row 14, the old lip


@pytest.mark.parametrize(("value", "strength"), [(1.5, 1.0), (0.5, 1.0), (0.375, 0.5), (0.0, 0.0)])
def test_a_moved_lip_gives_way_to_the_closed_mouths_detail_as_the_mouth_closes(value, strength):
    assert _flat_jaw(value).strength == pytest.approx(strength)


def test_a_lid_or_lip_too_narrow_for_its_curve_pulls_nothing():
    lid = _flat_lid(0.5)
    narrow = dataclasses.replace(lid, opening=np.where(np.arange(16) < 6, lid.opening, np.nan))
    assert lid.defined and not narrow.defined and narrow.rows_at(4.5, 11.0) == 0.0
    jaw = _flat_jaw(1.5)
    one = dataclasses.replace(jaw, lip=np.where(np.arange(16) == 8, jaw.lip, np.nan))
    assert jaw.defined and not one.defined and one.rows_at(8.0, 17.0) == 0.0


def test_paint_over_a_programs_edge_keeps_its_field_only_where_the_program_shows():
    """The server's paint input: where the given map no longer shows what the program drew, its edge field
    goes (the paint's pixels are the paint's); an edge painted over entirely leaves no field."""
    from vq_models.runtime import _moves_kept

    rows = np.zeros((8, 8), np.float32)
    rows[2:4, 1:6] = 0.4
    same = np.ones((8, 8), bool)
    same[:, :3] = False  # the paint changed the left part
    kept = _moves_kept([EdgeShift(rows)], same, np.zeros((8, 8), bool))
    assert len(kept) == 1 and np.array_equal(kept[0].support, (rows != 0) & same)
    assert _moves_kept([EdgeShift(rows)], np.zeros((8, 8), bool), np.zeros((8, 8), bool)) == []
