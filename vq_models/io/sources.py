"""Frame sources: one interface over image sequences, video files and single stills.

Everything downstream (prep, render, the server) asks a source for frame numbers and gets
:class:`~vq_models.io.images.ImageData` back, so it never cares whether the plate is an EXR sequence or
a phone clip. Video frames are numbered from 1 (or ``start``) so they read like a sequence's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vq_models.errors import ImageIOError, InputError
from vq_models.io.colour import resolve_colorspace, to_network
from vq_models.io.images import ImageData, ImageHeader, Window, read_header, read_image
from vq_models.io.sequences import (
    FrameRange,
    find_sequence,
    format_frame_list,
    has_frame_token,
    parse_frame_range,
)
from vq_models.io.video import VideoReader, is_video_path


def _requested(frames: str | Sequence[int] | None) -> list[int] | None:
    if frames is None:
        return None
    return parse_frame_range(frames) if isinstance(frames, str) else sorted(set(int(f) for f in frames))


class FrameSource(FrameRange):
    """Base: numbered frames with a fixed format. Subclasses implement :meth:`_read`."""

    kind = "source"

    def __init__(self, path: str, frames: list[int], header: ImageHeader, colorspace: str | None):
        self.path = path
        self.frames = list(frames)
        self._header = header
        self.colorspace = resolve_colorspace(colorspace) if colorspace else header.colorspace

    # --- format --------------------------------------------------------------------------------
    @property
    def pattern(self) -> str | None:
        """The printf pattern for image sequences; None for videos and stills."""
        return None

    @property
    def display_window(self) -> Window:
        return self._header.display_window

    @property
    def data_window(self) -> Window:
        return self._header.data_window

    @property
    def pixel_aspect(self) -> float:
        return self._header.pixel_aspect

    @property
    def width(self) -> int:
        return self._header.width

    @property
    def height(self) -> int:
        return self._header.height

    def describe(self) -> dict:
        """What shot.json records about the plate."""
        return {
            "source": self.path,
            "kind": self.kind,
            "frames": format_frame_list(self.frames, limit=10_000),
            "colorspace": self.colorspace,
            "display_window": list(self.display_window),
            "data_window": list(self.data_window),
            "pixel_aspect": self.pixel_aspect,
        }

    # --- pixels --------------------------------------------------------------------------------
    def _check(self, frame: int) -> None:
        if frame not in self.frames:
            raise InputError(f"{self.path}: frame {frame} is not in the source ({format_frame_list(self.frames)})")

    def read(self, frame: int, rows: tuple[int, int] | None = None) -> ImageData:
        """Frame ``frame`` with its windows and metadata; ``colorspace`` is the source's. ``rows=(first, end)``:
        only those pixel rows of the data window (see :meth:`ImageData.rows`)."""
        self._check(int(frame))
        image = self._read(int(frame)) if rows is None else self._read_rows(int(frame), (int(rows[0]), int(rows[1])))
        image.colorspace = self.colorspace
        return image

    def _read_rows(self, frame: int, rows: tuple[int, int]) -> ImageData:
        """Rows of a frame; a source that cannot decode part of a frame (a video) reads it whole."""
        return self._read(frame).rows(*rows)

    def read_network(self, frame: int) -> np.ndarray:
        """Frame ``frame`` as the networks see it: display sRGB float32 (H, W, 3) over the display window."""
        return to_network(self.read(frame), self.colorspace)

    def _read(self, frame: int) -> ImageData:
        raise NotImplementedError

    def close(self) -> None:
        """Release file handles (videos); reading again reopens them."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SequenceSource(FrameSource):
    """A numbered image sequence (``plate.%04d.exr``)."""

    kind = "sequence"

    def __init__(self, pattern: str, frames: str | Sequence[int] | None, colorspace: str | None):
        seq = find_sequence(pattern, frames)
        self.sequence = seq
        super().__init__(seq.pattern, seq.frames, read_header(seq.path(seq.frames[0])), colorspace)

    @property
    def pattern(self) -> str:
        return self.sequence.pattern

    def _read(self, frame: int) -> ImageData:
        return read_image(self.sequence.path(frame), allow_mono=True)

    def _read_rows(self, frame: int, rows: tuple[int, int]) -> ImageData:
        return read_image(self.sequence.path(frame), allow_mono=True, rows=rows)


class VideoSource(FrameSource):
    """A video file; frame ``start`` is the first frame of the file."""

    kind = "video"

    def __init__(self, path: str, frames: str | Sequence[int] | None, colorspace: str | None, start: int = 1):
        self.start = int(start)
        self._reader: VideoReader | None = VideoReader(path)
        self.fps = self._reader.fps
        count = self._reader.frame_count
        w, h = self._reader.width, self._reader.height
        available = list(range(self.start, self.start + count))
        wanted = _requested(frames)
        if wanted is not None:
            missing = [f for f in wanted if not self.start <= f < self.start + count]
            if missing:
                raise InputError(f"{path}: missing frames {format_frame_list(missing)} "
                                 f"(the video has frames {self.start}-{self.start + count - 1})")
            available = wanted
        header = ImageHeader(Path(path), ["R", "G", "B"], (0, 0, w, h), (0, 0, w, h), 1.0, "sRGB", {}, "uint8")
        super().__init__(str(path), available, header, colorspace)

    def _read(self, frame: int) -> ImageData:
        if self._reader is None:
            self._reader = VideoReader(self.path)
        rgb = self._reader.read(frame - self.start)
        return ImageData(rgb, ["R", "G", "B"], colorspace=self.colorspace, bit_depth="uint8")

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class StillSource(FrameSource):
    """A single image file used as every requested frame (default: frame 1)."""

    kind = "still"

    def __init__(self, path: str, frames: str | Sequence[int] | None, colorspace: str | None):
        super().__init__(str(path), _requested(frames) or [1], read_header(path), colorspace)
        self._cache: ImageData | None = None

    def _read(self, frame: int) -> ImageData:
        if self._cache is None:
            self._cache = read_image(self.path, allow_mono=True)
        img = self._cache
        return ImageData(img.pixels.copy(), list(img.channels), img.data_window, img.display_window,
                         img.pixel_aspect, img.colorspace, dict(img.metadata), img.bit_depth)


def open_source(
    path_or_pattern: str | Path,
    frames: str | Sequence[int] | None = None,
    *,
    colorspace: str | None = None,
    start: int = 1,
) -> FrameSource:
    """Open a plate: an image sequence pattern, a video file (frames from ``start``) or a single image.

    ``frames`` selects frames (``"1001-1100"``, a list); missing ones raise :class:`InputError` listing
    them. ``colorspace`` overrides the colour space the files declare or their format implies.
    """
    text = str(path_or_pattern)
    if is_video_path(text):
        return VideoSource(text, frames, colorspace, start=start)
    if has_frame_token(Path(text).name):
        return SequenceSource(text, frames, colorspace)
    if Path(text).is_file():
        return StillSource(text, frames, colorspace)
    if Path(text).is_dir():
        raise ImageIOError(f"{text}: is a directory; give a sequence pattern such as {text}/plate.%04d.exr")
    raise ImageIOError(f"{text}: file not found (for a sequence use a pattern such as plate.%04d.exr)")
