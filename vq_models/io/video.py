"""Video files: reading mov/mp4 plates through OpenCV, writing before/after previews.

Video frames are 8-bit display sRGB; :class:`VideoReader` returns them as float32 RGB in [0, 1], the
same thing the networks see, so a phone clip and an EXR plate feed the pipeline the same way.
Decoding forwards is cheap and seeking in long-GOP codecs is not, so reads in order take a fast path
(no seek) and short forward jumps decode through instead of seeking.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np
import OpenImageIO as oiio

from vq_models.errors import ImageIOError
from vq_models.io.atomic import atomic_path

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mov", ".mp4", ".m4v", ".avi", ".mkv", ".webm")

# Forward jumps up to this many frames decode through rather than seek (seeks restart at a keyframe).
_MAX_GRAB_AHEAD = 24


def is_video_path(path: str | Path) -> bool:
    return Path(str(path)).suffix.lower() in VIDEO_EXTENSIONS


class VideoReader:
    """Random and sequential access to the frames of a video file (0-based indices)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise ImageIOError(f"{self.path}: video file not found")
        self._cap = self._open()
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if self.width <= 0 or self.height <= 0 or self.frame_count <= 0:
            self.close()
            raise ImageIOError(f"{self.path}: not a readable video (no frames or no size)")
        self._next = 0  # index the next cap.read() returns

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise ImageIOError(f"{self.path}: cannot open video (unknown format or corrupt file)")
        return cap

    def __len__(self) -> int:
        return self.frame_count

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "_cap", None) is not None:
            self._cap.release()
            self._cap = None

    def _seek(self, index: int) -> None:
        if index == self._next:
            return
        if self._next < index <= self._next + _MAX_GRAB_AHEAD:
            while self._next < index:
                if not self._cap.grab():
                    raise ImageIOError(f"{self.path}: cannot decode frame {self._next} of {self.frame_count}")
                self._next += 1
            return
        if index == 0:  # reopening is the one seek every backend gets exactly right
            self._cap.release()
            self._cap = self._open()
        else:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        self._next = index

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based) as float32 display sRGB (H, W, 3), RGB order, in [0, 1]."""
        return self.read_uint8(index).astype(np.float32) / 255.0

    def read_uint8(self, index: int) -> np.ndarray:
        """Frame ``index`` as uint8 RGB (H, W, 3), no conversion to float."""
        if self._cap is None:
            raise ImageIOError(f"{self.path}: video reader is closed")
        if not 0 <= index < self.frame_count:
            raise ImageIOError(f"{self.path}: frame index {index} out of range 0-{self.frame_count - 1}")
        self._seek(index)
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            self._next = -1  # position unknown now: force a real seek next time
            raise ImageIOError(f"{self.path}: cannot decode frame {index} of {self.frame_count}")
        self._next = index + 1
        if bgr.ndim == 2:
            bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
        if bgr.dtype != np.uint8:
            bgr = (bgr.astype(np.float32) / np.iinfo(bgr.dtype).max * 255.0 + 0.5).astype(np.uint8)
        return np.ascontiguousarray(bgr[..., 2::-1])

    def __iter__(self):
        for i in range(self.frame_count):
            yield self.read(i)


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    arr = np.asarray(frame)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        arr = (np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(arr)


def _write_gif(path: Path, frames: list[np.ndarray], fps: float) -> None:
    h, w, _ = frames[0].shape
    spec = oiio.ImageSpec(w, h, 3, "uint8")
    spec.attribute("FramesPerSecond", oiio.TypeDesc("rational2"), (max(1, int(round(fps))), 1))
    spec.attribute("gif:LoopCount", 0)
    with atomic_path(path) as tmp:
        out = oiio.ImageOutput.create(str(tmp))
        if out is None or not out.open(str(tmp), [spec] * len(frames)):
            raise ImageIOError(f"{path}: cannot write GIF ({oiio.geterror() or 'no writer'})")
        try:
            for i, frame in enumerate(frames):
                if i and not out.open(str(tmp), spec, "AppendSubimage"):
                    raise ImageIOError(f"{path}: cannot append GIF frame {i} ({out.geterror()})")
                if not out.write_image(frame):
                    raise ImageIOError(f"{path}: cannot write GIF frame {i} ({out.geterror()})")
        finally:
            out.close()


def write_video(path: str | Path, frames_iter: Iterable[np.ndarray], fps: float = 24.0) -> Path:
    """Write display-sRGB RGB frames (float in [0, 1] or uint8, all one size) as a preview movie.

    ``.mp4``/``.mov``/``.avi``/``.mkv`` go through OpenCV's 'mp4v' (MJPG for .avi) encoder; ``.gif``
    through OpenImageIO. If OpenCV has no working encoder the frames go to a GIF beside ``path`` instead.
    Returns the path actually written. The file appears atomically, complete or not at all.
    """
    path = Path(path)
    frames = iter(frames_iter)
    try:
        first = _to_uint8(next(frames))
    except StopIteration:
        raise ImageIOError(f"{path}: no frames to write") from None
    h, w, _ = first.shape
    if path.suffix.lower() == ".gif":
        _write_gif(path, [first, *(_check_size(_to_uint8(f), w, h, path) for f in frames)], fps)
        return path
    try:
        _write_cv2(path, first, frames, fps)
        return path
    except _NoEncoderError:
        gif = path.with_suffix(".gif")
        log.warning("%s: OpenCV has no working video encoder here; writing %s instead", path, gif)
        _write_gif(gif, [first, *(_check_size(_to_uint8(f), w, h, path) for f in frames)], fps)
        return gif


class _NoEncoderError(Exception):
    """OpenCV could not open a writer; raised before any frame beyond the first is consumed."""


def _write_cv2(path: Path, first: np.ndarray, frames: Iterator[np.ndarray], fps: float) -> None:
    h, w, _ = first.shape
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), fourcc, float(fps), (w, h))
        if not writer.isOpened():
            raise _NoEncoderError()
        try:
            writer.write(np.ascontiguousarray(first[..., ::-1]))
            for frame in frames:
                writer.write(np.ascontiguousarray(_check_size(_to_uint8(frame), w, h, path)[..., ::-1]))
        finally:
            writer.release()
        if tmp.stat().st_size == 0:
            raise ImageIOError(f"{path}: the video encoder wrote nothing")


def _check_size(frame: np.ndarray, w: int, h: int, path: Path) -> np.ndarray:
    if frame.shape[:2] != (h, w):
        raise ImageIOError(f"{path}: frame of size {frame.shape[1]}x{frame.shape[0]}, expected {w}x{h}")
    return frame
