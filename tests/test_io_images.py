"""Image files through OpenImageIO: EXR windows/aspect/metadata round trips, integer formats, label maps,
bad input and atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from vq_models.errors import ImageIOError, InputError
from vq_models.io.atomic import atomic_path
from vq_models.io.images import (
    ImageData,
    decode_image_bytes,
    encode_exr_bytes,
    read_header,
    read_image,
    read_label_map,
    write_image,
    write_label_map,
)


def _plate(channels: int = 4, seed: int = 0) -> ImageData:
    rng = np.random.default_rng(seed)
    px = (rng.random((6, 8, channels)) * 3.0 - 0.5).astype(np.float32)  # HDR values, negatives included
    return ImageData(
        pixels=px,
        data_window=(2, 3, 8, 6),
        display_window=(0, 0, 16, 12),
        pixel_aspect=2.0,
        colorspace="lin_rec709",
        metadata={"vq:note": "shot 42 plate", "vq:gain": 1.25, "vq:offset": (0.5, -0.25), "vq:take": 3},
    )


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("dtype, tol", [("half", 0.0), ("float", 0.0)])
def test_exr_round_trip_keeps_windows_aspect_metadata(tmp_path: Path, dtype: str, tol: float) -> None:
    img = _plate()
    path = tmp_path / "plate.exr"
    write_image(path, img, dtype=dtype)
    back = read_image(path)
    expected = img.pixels.astype(np.float16).astype(np.float32) if dtype == "half" else img.pixels
    assert np.abs(back.pixels - expected).max() <= tol
    assert back.bit_depth == dtype
    assert back.channels == ["R", "G", "B", "A"]
    assert back.data_window == (2, 3, 8, 6)
    assert back.display_window == (0, 0, 16, 12)
    assert (back.width, back.height) == (16, 12)
    assert back.pixel_aspect == pytest.approx(2.0)
    assert back.colorspace == "lin_rec709"
    assert back.metadata["vq:note"] == "shot 42 plate"
    assert back.metadata["vq:gain"] == pytest.approx(1.25)
    assert back.metadata["vq:offset"] == pytest.approx((0.5, -0.25))
    assert back.metadata["vq:take"] == 3
    # a second round trip of what was read keeps the file's own depth and everything else
    write_image(tmp_path / "again.exr", back)
    again = read_image(tmp_path / "again.exr")
    assert again.bit_depth == dtype
    assert again.metadata["vq:note"] == "shot 42 plate"
    assert np.array_equal(again.pixels, back.pixels)
    assert _no_temp_files(tmp_path)


def test_exr_rgb_default_half_and_colorspace_label(tmp_path: Path) -> None:
    px = np.linspace(0, 4, 5 * 7 * 3, dtype=np.float32).reshape(5, 7, 3)
    write_image(tmp_path / "a.exr", px, colorspace="ACEScg")
    back = read_image(tmp_path / "a.exr")
    assert back.bit_depth == "half"
    assert back.channels == ["R", "G", "B"]
    assert back.colorspace == "ACEScg"
    assert back.data_window == back.display_window == (0, 0, 7, 5)
    assert np.allclose(back.pixels, px, rtol=1e-3)


def test_full_frame_places_data_window(tmp_path: Path) -> None:
    img = _plate(channels=3)
    full = img.full_frame(fill=-1.0)
    assert full.shape == (12, 16, 3)
    assert np.array_equal(full[3:9, 2:10], img.pixels)
    assert np.all(full[:3] == -1.0) and np.all(full[:, 10:] == -1.0)
    # data window sticking out of the display window is cropped
    out = ImageData(img.pixels, data_window=(12, -2, 8, 6), display_window=(0, 0, 16, 12))
    full = out.full_frame()
    assert np.array_equal(full[0:4, 12:16], img.pixels[2:6, 0:4])


@pytest.mark.parametrize("ext", ["exr", "png"])
def test_reading_some_rows_gives_those_rows_and_says_where_they_are(tmp_path: Path, ext: str) -> None:
    rng = np.random.default_rng(7)
    if ext == "exr":  # a data window inside the display window, as EXR plates store it
        img = _plate(channels=3)
        path = tmp_path / "plate.exr"
        write_image(path, img, dtype="float")
    else:
        img = ImageData(rng.random((9, 5, 3)).astype(np.float32))
        path = tmp_path / "plate.png"
        write_image(path, img, dtype="uint16")
    whole = read_image(path)
    part = read_image(path, rows=(2, 5))
    np.testing.assert_array_equal(part.pixels, whole.pixels[2:5])
    dx, dy, dw, _ = whole.data_window
    assert part.data_window == (dx, dy + 2, dw, 3) and part.display_window == whole.display_window
    # placed on the display window, the rows land where the whole image has them
    np.testing.assert_array_equal(part.full_frame()[dy + 2:dy + 5], whole.full_frame()[dy + 2:dy + 5])
    assert part.rows(1, 2).data_window == (dx, dy + 3, dw, 1)
    for bad in ((3, 3), (-1, 2), (0, whole.pixels.shape[0] + 1)):
        with pytest.raises(ImageIOError, match="outside"):
            read_image(path, rows=bad)


def test_rgb_picks_colour_channels_by_name() -> None:
    """R, G, B side by side come back as a view (no copy of a 4K plate); any other order or layout as the
    named channels in R, G, B order; grey repeated."""
    px = np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5)
    after_z = ImageData(px, ["Z", "R", "G", "B", "A"])
    assert np.shares_memory(after_z.rgb(), px) and np.array_equal(after_z.rgb(), px[..., 1:4])
    shuffled = ImageData(px, ["B", "Z", "G", "R", "A"])
    assert np.array_equal(shuffled.rgb(), px[..., [3, 2, 0]]) and not np.shares_memory(shuffled.rgb(), px)
    grey = ImageData(px[..., :1], ["Y"])
    assert np.array_equal(grey.rgb(), np.repeat(px[..., :1], 3, axis=2))


def test_png_keeps_full_frame_when_format_has_no_data_window(tmp_path: Path) -> None:
    img = _plate(channels=3)
    img.pixels = np.clip(img.pixels, 0, 1)
    write_image(tmp_path / "a.png", img, colorspace="sRGB")
    back = read_image(tmp_path / "a.png")
    assert back.pixels.shape == (12, 16, 3)
    assert back.bit_depth == "uint8"
    assert back.colorspace == "sRGB"
    assert np.abs(back.pixels[3:9, 2:10] - img.pixels).max() <= 0.5 / 255 + 1e-6
    assert back.pixels[0, 0].max() == 0.0


@pytest.mark.parametrize("ext, dtype, step", [
    (".png", "uint8", 1 / 255), (".png", "uint16", 1 / 65535), (".jpg", "uint8", None),
    (".tif", "uint16", 1 / 65535), (".tif", "float", 0.0), (".dpx", "uint16", 1 / 65535),
    (".dpx", "uint10", 1 / 1023),
])
def test_integer_and_other_formats(tmp_path: Path, ext: str, dtype: str, step: float | None) -> None:
    ramp = np.linspace(0, 1, 16 * 12 * 3, dtype=np.float32).reshape(12, 16, 3)
    path = tmp_path / f"img{ext}"
    write_image(path, ramp, dtype=dtype)
    back = read_image(path)
    assert back.pixels.shape == (12, 16, 3)
    assert back.bit_depth == dtype
    assert 0.0 <= back.pixels.min() and back.pixels.max() <= 1.0
    if step is None:  # lossy JPEG: close, not exact
        assert np.abs(back.pixels - ramp).mean() < 0.02
    else:  # OIIO widens 10-bit DPX codes to 16 bits by bit replication: within one 10-bit step
        assert np.abs(back.pixels - ramp).max() <= (step if dtype == "uint10" else step / 2) + 1e-6


def test_default_dtypes_per_format(tmp_path: Path) -> None:
    px = np.full((4, 4, 3), 0.5, np.float32)
    for ext, expected in ((".exr", "half"), (".png", "uint8"), (".tif", "uint16"), (".dpx", "uint16")):
        write_image(tmp_path / f"d{ext}", px)
        assert read_header(tmp_path / f"d{ext}").bit_depth == expected, ext
    with pytest.raises(ImageIOError, match=r"d\.jpg: \.jpg cannot store half"):
        write_image(tmp_path / "d.jpg", px, dtype="half")
    with pytest.raises(InputError, match="unknown dtype"):
        write_image(tmp_path / "d.png", px, dtype="int7")


def test_integer_arrays_are_scaled_not_clipped(tmp_path: Path) -> None:
    u8 = np.array([[[0, 128, 255]]], np.uint8)
    write_image(tmp_path / "u8.png", u8)
    assert np.array_equal(np.round(read_image(tmp_path / "u8.png").pixels * 255), u8.astype(np.float32))
    u16 = np.array([[[0, 1000, 65535]]], np.uint16)
    write_image(tmp_path / "u16.tif", u16)
    assert np.array_equal(np.round(read_image(tmp_path / "u16.tif").pixels * 65535), u16.astype(np.float32))


def test_sixteen_bit_png_accepted_as_plate_and_channels_option(tmp_path: Path) -> None:
    px = np.zeros((4, 5, 3), np.float32)
    px[..., 0] = 1000 / 65535
    write_image(tmp_path / "p16.png", px, dtype="uint16")
    back = read_image(tmp_path / "p16.png", channels=4)
    assert back.channels == ["R", "G", "B", "A"]
    assert back.pixels[0, 0, 0] == pytest.approx(1000 / 65535, abs=1e-7)
    assert np.all(back.pixels[..., 3] == 1.0)
    with pytest.raises(ImageIOError, match=r"p16\.png: uint16 image where an 8-bit image is required"):
        read_image(tmp_path / "p16.png", require_8bit=True)


def test_mono_image_where_colour_expected(tmp_path: Path) -> None:
    grey = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    write_image(tmp_path / "grey.png", grey)
    with pytest.raises(ImageIOError, match=r"grey\.png: single-channel \(grey\) image where a colour image"):
        read_image(tmp_path / "grey.png")
    mono = read_image(tmp_path / "grey.png", allow_mono=True)
    assert mono.pixels.shape == (4, 5, 1)
    rgb = read_image(tmp_path / "grey.png", allow_mono=True, channels=3)
    assert np.array_equal(rgb.pixels[..., 0], rgb.pixels[..., 2])
    assert np.allclose(rgb.pixels[..., 1], grey, atol=0.5 / 255 + 1e-6)


def test_label_map_round_trip_and_refusals(tmp_path: Path) -> None:
    labels = (np.arange(12 * 9).reshape(9, 12) % 256).astype(np.uint8)
    labels[0, 0] = 255
    write_label_map(tmp_path / "labels.png", labels)
    back = read_label_map(tmp_path / "labels.png")
    assert back.dtype == np.uint8 and np.array_equal(back, labels)

    write_image(tmp_path / "l16.png", labels.astype(np.float32)[..., None] / 255, dtype="uint16")
    with pytest.raises(ImageIOError, match=r"l16\.png: label map must be 8-bit, file is uint16"):
        read_label_map(tmp_path / "l16.png")
    write_image(tmp_path / "lrgb.png", np.zeros((3, 3, 3), np.float32))
    with pytest.raises(ImageIOError, match=r"lrgb\.png: label map must be single-channel, file has 3"):
        read_label_map(tmp_path / "lrgb.png")
    with pytest.raises(ImageIOError, match=r"labels\.exr: label maps are written as \.png"):
        write_label_map(tmp_path / "labels.exr", labels)


def test_missing_and_truncated_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ImageIOError, match=r"nope\.exr: file not found"):
        read_image(tmp_path / "nope.exr")
    write_image(tmp_path / "good.exr", np.random.default_rng(1).random((64, 64, 3)).astype(np.float32),
                metadata={"compression": "none"})
    data = (tmp_path / "good.exr").read_bytes()
    (tmp_path / "half.exr").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageIOError, match=r"half\.exr: cannot read pixels, file truncated or corrupt") as err:
        read_image(tmp_path / "half.exr")
    assert "\n" not in str(err.value)
    (tmp_path / "head.exr").write_bytes(data[:100])
    with pytest.raises(ImageIOError, match=r"head\.exr: cannot read image") as err:
        read_image(tmp_path / "head.exr")
    assert "\n" not in str(err.value)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ImageIOError, match=r"text\.png: cannot read image"):
        read_image(tmp_path / "text.png")
    with pytest.raises(ImageIOError, match="is a directory"):
        read_image(tmp_path)


def test_exr_bytes_round_trip_for_the_wire() -> None:
    img = _plate()
    data = encode_exr_bytes(img)
    assert data[:4] == b"\x76\x2f\x31\x01"  # EXR magic number
    back = decode_image_bytes(data)
    assert back.data_window == (2, 3, 8, 6) and back.display_window == (0, 0, 16, 12)
    assert back.metadata["vq:note"] == "shot 42 plate"
    assert np.array_equal(back.pixels, img.pixels.astype(np.float16).astype(np.float32))
    with pytest.raises(ImageIOError, match=r"<\d+ bytes of exr>: cannot") as err:
        decode_image_bytes(data[: len(data) // 3])
    assert "vqedit-img-" not in str(err.value)


def test_atomic_write_leaves_old_file_when_rename_fails(tmp_path: Path) -> None:
    target = tmp_path / "frame.exr"
    target.mkdir()  # the final rename cannot replace a directory: fails after OIIO wrote the temp file
    with pytest.raises(ImageIOError, match=r"frame\.exr: cannot write"):
        write_image(target, np.ones((4, 4, 3), np.float32))
    assert target.is_dir()
    assert _no_temp_files(tmp_path)


def test_atomic_write_never_leaves_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "frame.png"
    write_image(target, np.full((4, 4, 3), 0.25, np.float32))
    before = target.read_bytes()
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:  # a writer that dies mid-way
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(before[:10])
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == before
    with pytest.raises(ImageIOError):  # JPEG cannot hold floats: refused before touching the target
        write_image(tmp_path / "frame.jpg", np.ones((4, 4, 3), np.float32), dtype="float")
    assert not (tmp_path / "frame.jpg").exists()
    assert _no_temp_files(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_directory_gives_one_line(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ImageIOError, match=r"locked/a\.exr: cannot write"):
            write_image(locked / "a.exr", np.ones((2, 2, 3), np.float32))
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageIOError, match=r"file/a\.exr: cannot write"):
        write_image(tmp_path / "file" / "a.exr", np.ones((2, 2, 3), np.float32))


def test_written_exr_is_readable_by_plain_oiio(tmp_path: Path) -> None:
    """What other tools see: the windows and aspect live in the EXR header itself."""
    write_image(tmp_path / "p.exr", _plate())
    spec = oiio.ImageInput.open(str(tmp_path / "p.exr")).spec()
    assert (spec.x, spec.y, spec.width, spec.height) == (2, 3, 8, 6)
    assert (spec.full_width, spec.full_height) == (16, 12)
    assert spec.get_float_attribute("PixelAspectRatio") == pytest.approx(2.0)
    assert spec.get_string_attribute("vq:note") == "shot 42 plate"


def test_unknown_formats_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ImageIOError, match=r"a\.xyz: no image writer for extension '\.xyz'"):
        write_image(tmp_path / "a.xyz", np.zeros((2, 2, 3), np.float32))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageIOError, match=r"notes\.txt: cannot read image"):
        read_image(tmp_path / "notes.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
