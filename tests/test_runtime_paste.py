"""ShotModel paste-back on the real tiny trained shot: the footprint-only computation equals the
full-frame one, the bounding-box composite equals composite_image, and composites are written in the
encoding their format implies."""

from __future__ import annotations

import numpy as np
import pytest

from vq_models.composite import (
    RENDER_REACH_PX,
    composite_image,
    composite_in_box,
    edit_alpha,
    face_alpha,
    paste_to_plate,
)
from vq_models.frame_render import save_composite
from vq_models.io.colour import convert
from vq_models.io.images import ImageData, read_image
from vq_models.runtime import ShotModel


@pytest.fixture(scope="module")
def model(tiny_shot) -> ShotModel:
    return ShotModel.load(tiny_shot)


def _edited(model: ShotModel, frame: int) -> np.ndarray:
    labels = model.label_map(frame).copy()
    labels[10:16, 12:20] = (labels[10:16, 12:20] + 3) % model.num_codes
    return labels


@pytest.mark.parametrize("mode", ["identity", "edit-only"])
def test_footprint_render_equals_full_frame_paste(model, mode):
    frame = model.frames[4]
    labels = _edited(model, frame)
    fr = model.render_frame(frame, None, feather=5.0, mode=mode, labels=labels, detail="none")
    # the same paste-back done over the whole plate with composite.py directly
    tf, size, S = model.shot.transform(frame), tuple(model.plate_info["display_window"][2:]), model.shot.crop_size
    rgb, cover = paste_to_plate(fr.crop, tf, size, crop_size=S)
    face = model.shot.fg_mask(frame)
    if mode == "identity":
        alpha = face_alpha(face, tf, size, 5.0, crop_size=S)
    else:
        alpha = edit_alpha(fr.changed, tf, size, 5.0, face_mask_plate=face_alpha(face, tf, size, 5.0, crop_size=S),
                           crop_size=S, reach_px=RENDER_REACH_PX)
    alpha = np.where(cover > 0, alpha * cover, 0.0)
    np.testing.assert_allclose(fr.alpha, alpha, atol=1e-5)
    assert abs(int((fr.alpha > 0).sum()) - int((alpha > 0).sum())) <= 2  # same support (float32 warp round-off)
    shown = alpha > 0.01
    lin = convert(np.clip(rgb, 0, 1), "sRGB", fr.colorspace)
    np.testing.assert_allclose(fr.rgb[shown], lin[shown], atol=1e-4)
    assert shown.any()


def test_labels_map_or_window(model):
    frame = model.frames[3]
    labels = _edited(model, frame)
    by_map = model.render_frame(frame, labels=labels, mode="edit-only", feather=0.0)
    window = np.stack([model.label_map(model.frames[2]), labels, model.label_map(model.frames[4])])
    by_window = model.render_frame(frame, labels=window, mode="edit-only", feather=0.0)
    np.testing.assert_array_equal(by_map.rgba, by_window.rgba)
    np.testing.assert_array_equal(by_map.changed, labels != model.label_map(frame))
    x, y, w, h = by_map.alpha_box()
    inside = np.zeros_like(by_map.alpha, bool)
    inside[y:y + h, x:x + w] = True
    assert (by_map.alpha[~inside] == 0).all() and by_map.alpha[inside].max() > 0
    np.testing.assert_array_equal(by_map.rgba_image().full_frame(), by_map.rgba)


def test_composite_in_box_equals_composite_image(model):
    frame = model.frames[5]
    fr = model.render_frame(frame, None, feather=4.0)
    rng = np.random.default_rng(0)
    window = (3, 5, 70, 88)  # a data window inside the display window, with an extra channel
    plate = ImageData(rng.uniform(0, 3, (88, 70, 4)).astype(np.float32), ["R", "G", "B", "Z"], window,
                      tuple(model.plate_info["display_window"]), colorspace="lin_rec709")
    boxed = composite_in_box(fr.rgb, fr.alpha, fr.rgba_window, plate)
    full = composite_image(fr.rgb, fr.alpha, plate)
    assert np.array_equal(boxed.pixels, full.pixels) and boxed.data_window == window
    assert not np.array_equal(boxed.pixels, plate.pixels) and np.array_equal(boxed.pixels[..., 3], plate.pixels[..., 3])


def test_frame_render_keeps_only_the_alpha_box(model):
    """A render holds its alpha's tight bounding box, not the plate: the box's edges all show, the whole-frame
    views put it back in place, and its composite equals composite_image over the whole frame."""
    frame = model.frames[6]
    fr = model.render_frame(frame, labels=_edited(model, frame), mode="edit-only", feather=2.0)
    x, y, w, h = fr.box
    wx, wy, ww, wh = fr.display_window
    assert fr.box_alpha.shape == (h, w) and fr.box_rgb.shape == (h, w, 3)
    assert 0 < w * h < ww * wh  # an edit covers part of the face, not the plate
    shown = fr.box_alpha > 0
    assert shown[0].any() and shown[-1].any() and shown[:, 0].any() and shown[:, -1].any()  # tight
    full = fr.alpha
    assert full.shape == (wh, ww) and full.sum() == pytest.approx(float(fr.box_alpha.sum()))
    np.testing.assert_array_equal(full[y - wy:y - wy + h, x - wx:x - wx + w], fr.box_alpha)
    assert fr.alpha_box() == fr.box
    rng = np.random.default_rng(1)
    plate = ImageData(rng.uniform(0, 2, (wh, ww, 3)).astype(np.float32), ["R", "G", "B"], fr.display_window,
                      fr.display_window, colorspace=fr.colorspace)
    assert np.array_equal(fr.composite(plate).pixels, composite_image(fr.rgb, fr.alpha, plate).pixels)


def test_frame_render_with_nothing_shown(model):
    """An edit-only render that changes nothing holds an empty box: its composite is the plate bit for bit and
    its render pass is one transparent pixel at the window's origin."""
    frame = model.frames[2]
    fr = model.render_frame(frame, None, mode="edit-only", feather=2.0)
    assert fr.box[2:] == (0, 0) and not fr.alpha.any()
    wx, wy, ww, wh = fr.display_window
    plate = ImageData(np.full((wh, ww, 3), 0.25, np.float32), ["R", "G", "B"], fr.display_window,
                      fr.display_window, colorspace=fr.colorspace)
    assert np.array_equal(fr.composite(plate).pixels, plate.pixels)
    rgba = fr.rgba_image()
    assert rgba.data_window == (wx, wy, 1, 1) and not rgba.pixels.any()


def test_save_composite_encodings(tmp_path):
    lin = ImageData(np.linspace(0, 1, 4 * 6 * 3, dtype=np.float32).reshape(4, 6, 3), colorspace="lin_rec709")
    save_composite(tmp_path / "a.exr", lin)
    save_composite(tmp_path / "a.png", lin)
    exr, png = read_image(tmp_path / "a.exr"), read_image(tmp_path / "a.png")
    assert exr.colorspace == "lin_rec709" and png.colorspace == "sRGB"
    np.testing.assert_allclose(exr.pixels, lin.pixels, atol=1e-3)
    np.testing.assert_allclose(png.pixels, convert(lin.pixels, "lin_rec709", "sRGB"), atol=1 / 255)
    srgb = ImageData(png.pixels, colorspace="sRGB")
    save_composite(tmp_path / "b.exr", srgb)  # an sRGB plate's composite becomes scene-linear in EXR
    np.testing.assert_allclose(read_image(tmp_path / "b.exr").pixels, convert(srgb.pixels, "sRGB", "lin_rec709"),
                               atol=2e-3)
