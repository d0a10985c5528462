"""Paste-back: edit alpha in plate space, feathering, bit-exact composite outside the alpha."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vq_models.composite import (
    changed_mask_to_plate,
    composite_image,
    composite_over,
    distance_inside,
    edit_alpha,
    face_alpha,
    premultiplied_rgba,
    scale_transform,
)
from vq_models.io.images import ImageData
from vq_models.shot import CropTransform

# plate 200x160; crop of 128 px covering plate x 40..168, y 10..138 at 1 crop px per plate px
TF = CropTransform.from_plate_to_crop(np.array([[1.0, 0.0, -40.0], [0.0, 1.0, -10.0]]))
PLATE = (200, 160)


def test_scale_transform_keeps_pixel_centres():
    half = scale_transform(TF, 128, 64)
    pts = np.array([[40.0, 10.0], [100.0, 70.0], [167.0, 137.0]])
    crop = TF.to_crop(pts)
    assert np.allclose(half.to_crop(pts), (crop + 0.5) * 0.5 - 0.5)
    assert np.allclose(half.to_plate(half.to_crop(pts)), pts)


def test_changed_mask_lands_where_the_transform_says():
    mask = np.zeros((64, 64), bool)
    mask[20:30, 10:20] = True  # label px -> crop px 20..40, 40..60 -> plate x 60..80, y 50..70
    plate_mask = changed_mask_to_plate(mask, TF, PLATE, crop_size=128)
    ys, xs = np.nonzero(plate_mask)
    assert abs(xs.min() - 60) <= 1 and abs(xs.max() - 79) <= 1
    assert abs(ys.min() - 50) <= 1 and abs(ys.max() - 69) <= 1


def test_single_label_pixel_survives_a_coarse_plate():
    small = CropTransform.from_plate_to_crop(np.array([[4.0, 0.0, -40.0], [0.0, 4.0, -40.0]]))  # 4 crop px / plate px
    mask = np.zeros((128, 128), bool)
    mask[61, 37] = True
    assert changed_mask_to_plate(mask, small, (64, 64)).any()


@pytest.mark.parametrize("feather", [0, 3, 8])
def test_alpha_is_one_on_change_feathers_monotonically_and_stays_in_the_band(feather):
    mask = np.zeros((128, 128), bool)
    cv2.circle(mask.view(np.uint8), (64, 64), 12, 1, -1)
    alpha = edit_alpha(mask, TF, PLATE, feather)
    assert alpha.dtype == np.float32 and alpha.shape == (160, 200)
    core = changed_mask_to_plate(mask, TF, PLATE)
    assert np.all(alpha[core] == 1.0)
    band = cv2.dilate(core.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * feather + 3,) * 2))
    assert not np.any((alpha > 0) & (band == 0)), "alpha must stay within the dilated band"
    row = alpha[74, 104:]  # ray going right from the circle's centre (plate 104, 74)
    assert np.all(np.diff(row) <= 1e-7), "monotone fall-off"
    if feather:
        assert 0 < np.count_nonzero((row > 0) & (row < 1)) <= feather
    assert np.all((alpha >= 0) & (alpha <= 1))


def test_face_mask_limits_alpha_and_empty_change_gives_zero():
    mask = np.zeros((128, 128), bool)
    mask[40:90, 40:90] = True
    face = np.zeros((160, 200), np.float32)
    face[:, :110] = 1.0
    alpha = edit_alpha(mask, TF, PLATE, 4, face_mask_plate=face)
    assert np.all(alpha[:, 110:] == 0) and alpha[:, :110].max() == 1.0
    assert not edit_alpha(np.zeros((128, 128), bool), TF, PLATE, 4).any()


def test_face_alpha_feathers_inward_only():
    fg = np.zeros((128, 128), np.float32)
    cv2.circle(fg, (64, 64), 40, 1.0, -1)
    alpha = face_alpha(fg, TF, PLATE, 6)
    inside = changed_mask_to_plate(fg > 0.5, TF, PLATE)
    assert not np.any((alpha > 0) & ~inside)
    assert alpha[74, 104] == 1.0 and 0 < alpha[74, 104 + 39] < 1


def test_composite_is_bit_exact_outside_alpha():
    rng = np.random.default_rng(0)
    plate = rng.normal(0.3, 2.0, (160, 200, 4)).astype(np.float32)  # scene-linear values, outside [0, 1]
    plate[0, 0, 0] = np.float32(1e-30)
    render = rng.random((160, 200, 3), dtype=np.float32)
    mask = np.zeros((128, 128), bool)
    mask[50:70, 50:70] = True
    alpha = edit_alpha(mask, TF, PLATE, 5)
    out = composite_over(render, alpha, plate)
    outside = alpha == 0
    assert outside.any() and (~outside).any()
    assert out[outside].tobytes() == plate[outside].tobytes()
    assert np.array_equal(out[..., 3], plate[..., 3])
    full = alpha == 1
    assert np.allclose(out[full][:, :3], render[full])
    mid = (alpha > 0.2) & (alpha < 0.8)
    expect = render[mid] * alpha[mid][:, None] + plate[mid][:, :3] * (1 - alpha[mid][:, None])
    assert np.allclose(out[mid][:, :3], expect, atol=1e-6)
    rgba = premultiplied_rgba(render, alpha)
    assert rgba.shape == (160, 200, 4) and np.allclose(rgba[..., :3], render * alpha[..., None])


def test_composite_image_keeps_windows_and_metadata():
    rng = np.random.default_rng(1)
    pixels = rng.random((100, 120, 3), dtype=np.float32)
    plate = ImageData(pixels, ["R", "G", "B"], data_window=(30, 20, 120, 100), display_window=(0, 0, 200, 160),
                      colorspace="lin_rec709", metadata={"comment": "kept"})
    alpha = np.zeros((160, 200), np.float32)
    alpha[40:60, 50:70] = 1.0
    alpha[0:10, 0:10] = 1.0  # outside the data window: nothing to composite there
    render = np.full((160, 200, 3), 0.25, np.float32)
    out = composite_image(render, alpha, plate)
    assert out.data_window == (30, 20, 120, 100) and out.display_window == (0, 0, 200, 160)
    assert out.metadata == {"comment": "kept"} and out.colorspace == "lin_rec709"
    assert np.all(out.pixels[20:40, 20:40] == 0.25)
    changed = np.any(out.pixels != pixels, axis=2)
    assert changed.sum() == 400


def test_edit_alpha_reach_grows_the_changed_mask_in_its_own_pixels() -> None:
    """``reach_px`` covers the labels next to the change (where Stage II shades too) and no further."""
    mask = np.zeros((128, 128), bool)
    mask[60:68, 60:68] = True
    plain = edit_alpha(mask, TF, PLATE, 0.0)
    grown = edit_alpha(mask, TF, PLATE, 0.0, reach_px=2)
    ring = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))).astype(bool)
    assert np.array_equal(grown > 0, changed_mask_to_plate(ring, TF, PLATE))
    assert (grown > 0).sum() > (plain > 0).sum()
    assert np.all(grown[plain > 0] == 1.0)


def test_distance_inside_is_near_euclidean_and_the_same_every_call() -> None:
    """The feather's distance: within 2 % of the exact one, and bit-identical from call to call (OpenCV's exact
    transform was not, so two renders of one frame differed in alpha)."""
    mask = np.zeros((64, 80), bool)
    cv2.circle(mask.view(np.uint8), (40, 32), 25, 1, -1)
    mask[30:34, 10:70] = True
    exact = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    first = distance_inside(mask)
    assert first.dtype == np.float32 and (first[~mask] == 0).all()
    inside = exact > 0
    assert np.abs(first[inside] - exact[inside]).max() <= 0.02 * exact[inside].max() + 0.05
    for _ in range(50):
        assert distance_inside(mask).tobytes() == first.tobytes()
