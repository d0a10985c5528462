"""Colour conversion through OIIO's OCIO config: names, exact round trips, network in/out."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vq_models.errors import InputError
from vq_models.io.colour import (
    chroma,
    convert,
    default_colorspace,
    from_network,
    hue,
    known_colorspaces,
    resolve_colorspace,
    to_network,
)
from vq_models.io.images import ImageData

HALF_EPS = 2.0**-11  # relative precision of a half float


def _srgb_encode(x: np.ndarray) -> np.ndarray:
    """The IEC 61966-2-1 curve, written out independently of OCIO."""
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.abs(x) ** (1 / 2.4) - 0.055)


@pytest.mark.parametrize("name, canonical", [
    ("lin_rec709", "lin_rec709"), ("Linear Rec.709 (sRGB)", "lin_rec709"), ("linear", "lin_rec709"),
    ("lin_srgb", "lin_rec709"), ("sRGB", "sRGB"), ("srgb", "sRGB"),
    ("sRGB Encoded Rec.709 (sRGB)", "sRGB"), ("srgb_texture", "sRGB"), ("ACEScg", "ACEScg"),
    ("acescg", "ACEScg"), ("lin_ap1", "ACEScg"), ("Raw", "Raw"),
])
def test_resolve_names(name: str, canonical: str) -> None:
    assert resolve_colorspace(name) == canonical


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(InputError) as err:
        resolve_colorspace("Kodak 2383")
    msg = str(err.value)
    assert msg.startswith("colour space 'Kodak 2383': unknown (known: lin_rec709, sRGB,")
    assert "ACEScg" in msg and "\n" not in msg
    assert known_colorspaces()[:2] == ["lin_rec709", "sRGB"]


def test_default_colorspace() -> None:
    assert default_colorspace("plate.%04d.exr") == "lin_rec709"
    assert default_colorspace(".exr") == "lin_rec709"
    assert default_colorspace("EXR") == "lin_rec709"
    for name in ("a.png", "b.jpg", "c.tif", "d.dpx", "clip.mov", "png"):
        assert default_colorspace(name) == "sRGB", name


def test_linear_to_srgb_matches_the_standard_curve() -> None:
    x = np.linspace(0, 1, 257, dtype=np.float32)
    rgb = np.stack([x, x, x], axis=-1)
    enc = convert(rgb, "lin_rec709", "sRGB")
    assert np.abs(enc[:, 1] - _srgb_encode(x)).max() < 1e-4


def test_round_trip_exact_to_half_precision_including_highlights() -> None:
    ramp = np.linspace(0, 1, 1024, dtype=np.float32)
    hdr = np.array([1.0001, 1.5, 2.0, 4.0, 16.0, 100.0, -0.01, -0.5], np.float32)
    values = np.concatenate([ramp, hdr])
    rgb = np.stack([values, values * 0.5, values[::-1]], axis=-1).reshape(1, -1, 3)
    enc = convert(rgb, "lin_rec709", "sRGB")
    assert enc.max() > 1.0  # highlights are not clipped by convert
    assert enc[0, 1024 + 1, 0] == pytest.approx(_srgb_encode(np.float32(1.5)), rel=1e-4)
    back = convert(enc, "sRGB", "lin_rec709")
    err = np.abs(back - rgb) / np.maximum(np.abs(rgb), 2.0**-14)
    assert err.max() < HALF_EPS
    # sRGB values stored as half floats decode with at most the curve's slope (2.4x) times half's rounding
    enc_half = enc.astype(np.float16).astype(np.float32)
    back_half = convert(enc_half, "sRGB", "lin_rec709")
    rel = (np.abs(back_half - rgb) / np.maximum(np.abs(rgb), 1e-3))[np.abs(rgb) > 1e-2]
    assert rel.max() < 2.4 * HALF_EPS


def test_alpha_and_extra_channels_are_kept() -> None:
    rng = np.random.default_rng(0)
    rgba = rng.random((3, 4, 5)).astype(np.float32)
    out = convert(rgba, "lin_rec709", "ACEScg")
    assert out.shape == rgba.shape
    assert np.array_equal(out[..., 3:], rgba[..., 3:])
    assert not np.allclose(out[..., :3], rgba[..., :3])  # saturated colours do change primaries
    grey = rng.random((3, 4, 1)).astype(np.float32)
    assert np.allclose(convert(grey, "lin_rec709", "sRGB")[..., 0], _srgb_encode(grey[..., 0]), atol=1e-4)


def test_convert_is_the_same_whatever_the_array_shape() -> None:
    """One pixel, a list of pixels, an image and a batch of images convert alike, into a new array."""
    rng = np.random.default_rng(1)
    batch = rng.uniform(-0.1, 3.0, (2, 5, 7, 3)).astype(np.float32)
    expect = _srgb_encode(batch)
    for arr in (batch, batch[0], batch[0].reshape(-1, 3), batch[0, 0, 0]):
        out = convert(arr, "lin_rec709", "sRGB")
        assert out.shape == arr.shape and out.dtype == np.float32 and not np.shares_memory(out, arr)
        np.testing.assert_allclose(out, expect.reshape(-1, 3)[: arr.size // 3].reshape(arr.shape), rtol=2e-4, atol=1e-4)


def test_to_network_uses_display_window_and_clips() -> None:
    px = np.full((2, 3, 4), 0.18, np.float32)
    px[0, 0, :3] = 5.0
    img = ImageData(px, data_window=(1, 1, 3, 2), display_window=(0, 0, 6, 4), colorspace="lin_rec709")
    net = to_network(img)
    assert net.shape == (4, 6, 3) and net.dtype == np.float32
    assert net.max() == 1.0 and net.min() == 0.0
    assert net[1, 1] == pytest.approx([1.0, 1.0, 1.0])
    assert net[2, 2] == pytest.approx([float(_srgb_encode(np.float32(0.18)))] * 3, abs=1e-4)
    assert np.all(net[0] == 0.0)


def test_from_network_inverts_to_network_within_range() -> None:
    rng = np.random.default_rng(3)
    lin = (rng.random((5, 6, 3)) ** 2.2).astype(np.float32)
    for space in ("lin_rec709", "ACEScg", "sRGB"):
        plate = convert(lin, "lin_rec709", space)
        net = to_network(plate, space)
        back = from_network(net, space)
        assert back.dtype == np.float32
        assert np.allclose(back, plate, atol=1e-4), space
    with pytest.raises(ValueError):
        to_network(lin)


def test_luma_weighs_rec709_primaries_and_keeps_float_precision():
    from vq_models.io.colour import REC709_LUMA, luma

    primaries = np.eye(3, dtype=np.float32)
    np.testing.assert_allclose(luma(primaries), REC709_LUMA, rtol=1e-6)
    rgba = np.array([[1.0, 1.0, 1.0, 0.25]], np.float64)  # alpha ignored, white is 1
    assert luma(rgba).dtype == np.float64 and luma(rgba)[0] == pytest.approx(1.0)
    assert luma(np.full((2, 2, 3), 255, np.uint8)).dtype == np.float32


def test_chroma_is_how_far_a_colour_is_from_grey():
    colours = np.array([[0.5, 0.5, 0.5], [0.8, 0.5, 0.55], [0.2, 0.9, 0.4]], np.float32)
    np.testing.assert_allclose(chroma(colours), [0.0, 0.3, 0.7], atol=1e-6)
    rgba = np.array([[0.6, 0.6, 0.6, 0.0]], np.float64)  # alpha ignored: grey
    assert chroma(rgba)[0] == 0.0 and chroma(rgba).dtype == np.float64
    assert chroma(np.array([[255, 0, 10]], np.uint8))[0] == 255.0


def test_hue_is_the_chroma_angle_near_hsv_with_reds_around_zero():
    pure = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1]], np.float32)
    np.testing.assert_allclose(hue(pure), [0, 60, 120, -120, -60], atol=1e-4)
    assert hue(np.array([0.8, 0.5, 0.5], np.float32)) == pytest.approx(0.0, abs=1e-4)  # pink: red's hue
    assert hue(np.array([0.55, 0.33, 0.28], np.float32)) > 5 > hue(np.array([0.6, 0.33, 0.36], np.float32))
    rng = np.random.default_rng(0)
    rgb = rng.random((500, 3), dtype=np.float32)
    hsv = cv2.cvtColor(rgb[None], cv2.COLOR_RGB2HSV)[0, :, 0]
    diff = (hue(rgb) - hsv + 180.0) % 360.0 - 180.0
    assert np.abs(diff).max() < 1.5  # within about a degree of HSV's hexagonal hue
