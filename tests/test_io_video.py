"""Video reading and preview writing through OpenCV, on a clip written here and on a real clip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vq_models.errors import ImageIOError
from vq_models.io.video import VideoReader, write_video

N, W, H = 12, 64, 48


def _frame(i: int) -> np.ndarray:
    """Flat colour per frame (survives lossy coding) plus a moving bar: each frame is distinguishable."""
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = 20 * i
    rgb[..., 1] = 240 - 20 * i
    rgb[..., 2] = 128
    rgb[:, 4 * i : 4 * i + 4] = 255
    return rgb


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (W, H))
    assert writer.isOpened()
    for i in range(N):
        writer.write(_frame(i)[..., ::-1].copy())  # OpenCV wants BGR
    writer.release()
    return path


def _mean_colour(rgb: np.ndarray) -> np.ndarray:
    return rgb[:, 40:].reshape(-1, 3).mean(0) if rgb.dtype != np.uint8 else rgb[:, 40:].reshape(-1, 3).mean(0) / 255


def test_reader_properties_and_rgb_order(clip: Path) -> None:
    with VideoReader(clip) as video:
        assert (len(video), video.width, video.height) == (N, W, H)
        assert video.fps == pytest.approx(12.0)
        frame = video.read(3)
        assert frame.shape == (H, W, 3) and frame.dtype == np.float32
        assert 0.0 <= frame.min() and frame.max() <= 1.0
        expected = _frame(3)[:, 40:].reshape(-1, 3).mean(0) / 255  # R=60, G=180, B=128 in RGB order
        assert np.abs(_mean_colour(frame) - expected).max() < 0.03


def test_random_access_matches_sequential(clip: Path) -> None:
    with VideoReader(clip) as video:
        sequential = [video.read_uint8(i) for i in range(N)]
    with VideoReader(clip) as video:
        for i in (9, 2, 0, 11, 5, 6, 1):
            assert np.array_equal(video.read_uint8(i), sequential[i]), i
    assert not np.array_equal(sequential[0], sequential[1])
    with VideoReader(clip) as video, pytest.raises(ImageIOError, match=r"clip\.mp4: frame index 12 out of range 0-11"):
        video.read(N)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ImageIOError, match=r"missing\.mov: video file not found"):
        VideoReader(tmp_path / "missing.mov")
    bad = tmp_path / "bad.mp4"
    bad.write_text("this is not a movie")
    with pytest.raises(ImageIOError, match=r"bad\.mp4: (cannot open video|not a readable video)"):
        VideoReader(bad)


def test_write_video_round_trip(tmp_path: Path) -> None:
    frames = [_frame(i).astype(np.float32) / 255 for i in range(6)]
    out = write_video(tmp_path / "preview.mp4", iter(frames), fps=8)
    assert out == tmp_path / "preview.mp4"
    with VideoReader(out) as video:
        assert (len(video), video.width, video.height) == (6, W, H)
        assert video.fps == pytest.approx(8.0)
        for i in (0, 5):
            assert np.abs(_mean_colour(video.read(i)) - _mean_colour(frames[i])).max() < 0.03
    assert [p.name for p in tmp_path.iterdir()] == ["preview.mp4"]


def test_write_gif(tmp_path: Path) -> None:
    import OpenImageIO as oiio

    out = write_video(tmp_path / "preview.gif", (_frame(i) for i in range(4)), fps=5)
    inp = oiio.ImageInput.open(str(out))
    assert inp is not None
    subimages = 0
    while inp.seek_subimage(subimages, 0):
        subimages += 1
    inp.close()
    assert subimages == 4


def test_write_video_failing_mid_way_leaves_nothing(tmp_path: Path) -> None:
    def frames():
        yield _frame(0)
        yield _frame(1)
        yield np.zeros((H + 2, W, 3), np.uint8)  # wrong size after two frames were encoded

    target = tmp_path / "preview.mp4"
    with pytest.raises(ImageIOError, match=r"preview\.mp4: frame of size 64x50, expected 64x48"):
        write_video(target, frames(), fps=8)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ImageIOError, match="no frames"):
        write_video(target, iter([]), fps=8)


@pytest.mark.clips
def test_real_clip(clips_dir: Path) -> None:
    with VideoReader(clips_dir / "lp_d0.mp4") as video:
        assert (video.width, video.height) == (512, 512)
        assert video.fps == pytest.approx(25.0)
        assert len(video) == 78
        frames = [video.read(i) for i in (0, 1, 40)]
    for f in frames:
        assert f.shape == (512, 512, 3) and f.dtype == np.float32
        assert 0.05 < f.mean() < 0.95
    assert np.abs(frames[0] - frames[2]).mean() > 1e-3
    assert np.abs(frames[0] - frames[1]).max() > 0.0
    # a long jump seeks in the H.264 stream; it must land on the same frame as decoding through
    with VideoReader(clips_dir / "lp_d0.mp4") as video:
        for i in range(41):
            through = video.read_uint8(i)
    assert np.array_equal(through, (frames[2] * 255 + 0.5).astype(np.uint8))
