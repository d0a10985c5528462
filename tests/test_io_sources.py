"""Frame sources: EXR sequences, video files and stills behind one interface."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vq_models.errors import ImageIOError, InputError
from vq_models.io.colour import convert
from vq_models.io.images import ImageData, write_image
from vq_models.io.sources import open_source


def _write_exr_sequence(folder: Path, frames: list[int]) -> str:
    for f in frames:
        px = np.full((6, 8, 3), 0.05 * (f - 1000), np.float32)
        img = ImageData(px, data_window=(4, 2, 8, 6), display_window=(0, 0, 20, 10), pixel_aspect=2.0,
                        colorspace="lin_rec709", metadata={"vq:frame": f})
        write_image(folder / f"plate.{f:04d}.exr", img)
    return str(folder / "plate.####.exr")


def test_exr_sequence_source(tmp_path: Path) -> None:
    pattern = _write_exr_sequence(tmp_path, [1001, 1002, 1003, 1004])
    with open_source(pattern) as src:
        assert src.kind == "sequence"
        assert src.frames == [1001, 1002, 1003, 1004]
        assert src.pattern == str(tmp_path / "plate.%04d.exr")
        assert (src.width, src.height) == (20, 10)
        assert src.display_window == (0, 0, 20, 10) and src.data_window == (4, 2, 8, 6)
        assert src.pixel_aspect == pytest.approx(2.0)
        assert src.colorspace == "lin_rec709"
        img = src.read(1003)
        assert img.metadata["vq:frame"] == 1003
        assert img.pixels[0, 0, 0] == pytest.approx(0.15, rel=1e-3)
        net = src.read_network(1003)
        assert net.shape == (10, 20, 3)
        expected = convert(np.full((1, 1, 3), 0.15, np.float32), "lin_rec709", "sRGB")[0, 0, 0]
        assert net[5, 8, 0] == pytest.approx(expected, abs=1e-3)
        assert net[0, 0, 0] == 0.0  # outside the data window
        assert src.describe()["frames"] == "1001-1004"
        rows = src.read(1003, rows=(1, 4))
        assert rows.data_window == (4, 3, 8, 3) and rows.colorspace == "lin_rec709"
        np.testing.assert_array_equal(rows.pixels, img.pixels[1:4])
        with pytest.raises(InputError, match="frame 1010 is not in the source"):
            src.read(1010)


def test_sequence_missing_frames_are_listed(tmp_path: Path) -> None:
    pattern = _write_exr_sequence(tmp_path, [1001, 1002, 1005])
    with pytest.raises(InputError, match=r"plate\.####\.exr: missing frames 1003-1004"):
        open_source(pattern)
    with pytest.raises(InputError, match=r"missing frames 1006-1007"):
        open_source(pattern, "1005-1007")
    assert open_source(pattern, "1001-1002").frames == [1001, 1002]


def test_colorspace_override(tmp_path: Path) -> None:
    pattern = _write_exr_sequence(tmp_path, [1, 2])
    src = open_source(pattern, colorspace="acescg")
    assert src.colorspace == "ACEScg"
    assert src.read(1).colorspace == "ACEScg"
    with pytest.raises(InputError, match="colour space 'bogus': unknown"):
        open_source(pattern, colorspace="bogus")


def test_video_source_numbering(tmp_path: Path) -> None:
    path = tmp_path / "clip.mov"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (32, 24))
    for i in range(5):
        writer.write(np.full((24, 32, 3), 40 * i, np.uint8))
    writer.release()
    with open_source(str(path)) as src:
        assert src.kind == "video" and src.pattern is None
        assert src.frames == [1, 2, 3, 4, 5]
        assert (src.width, src.height, src.colorspace) == (32, 24, "sRGB")
        img = src.read(3)
        assert img.pixels.shape == (24, 32, 3) and img.bit_depth == "uint8"
        assert img.pixels.mean() == pytest.approx(80 / 255, abs=0.03)
        assert src.read_network(5).mean() == pytest.approx(160 / 255, abs=0.03)
        with pytest.raises(InputError, match="frame 0 is not in the source"):
            src.read(0)
    src = open_source(str(path), "1002-1003", start=1001)
    assert src.frames == [1002, 1003]
    assert src.read(1003).pixels.mean() == pytest.approx(80 / 255, abs=0.03)
    src.close()
    with pytest.raises(InputError, match=r"clip\.mov: missing frames 6-7 \(the video has frames 1-5\)"):
        open_source(str(path), "4-7")


def test_still_and_missing(tmp_path: Path) -> None:
    write_image(tmp_path / "still.png", np.full((4, 6, 3), 0.5, np.float32))
    src = open_source(str(tmp_path / "still.png"), "10-12")
    assert src.kind == "still" and src.frames == [10, 11, 12]
    assert src.colorspace == "sRGB"
    a, b = src.read(10), src.read(12)
    a.pixels[:] = 0  # frames are independent copies
    assert b.pixels.mean() == pytest.approx(0.5, abs=1 / 255)
    part = src.read(11, rows=(1, 3))  # a source that cannot decode part of a frame cuts the whole one
    assert part.pixels.shape == (2, 6, 3) and part.data_window == (0, 1, 6, 2)
    with pytest.raises(ImageIOError, match=r"nothing\.exr: file not found"):
        open_source(str(tmp_path / "nothing.exr"))
    with pytest.raises(ImageIOError, match="is a directory"):
        open_source(str(tmp_path))
