"""The in-memory image: pixels over the data window plus everything needed to write it back faithfully.

Its own module so that colour conversion (``io.colour``) and file I/O (``io.images``) can both use it
without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

Window = tuple[int, int, int, int]  # (x, y, width, height)


def default_channel_names(n: int) -> list[str]:
    """Channel names for an ``n``-channel array that came without any: Y, YA, RGB(A), then channelN."""
    if n == 1:
        return ["Y"]
    if n == 2:
        return ["Y", "A"]
    names = ["R", "G", "B", "A"][:n]
    return names + [f"channel{i}" for i in range(len(names), n)]


def as_float_pixels(pixels: np.ndarray) -> np.ndarray:
    """float32 pixels; integer arrays are scaled to [0, 1] by their type's range (uint8 / 255), so an
    8-bit preview handed to :func:`write_image` is not mistaken for values in the hundreds."""
    arr = np.asarray(pixels)
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.unsignedinteger):
        return arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
    return arr.astype(np.float32, copy=False)


class DisplaySize:
    """Width and height of the display window (the frame a viewer shows), for images and image headers."""

    display_window: Window

    @property
    def width(self) -> int:
        return self.display_window[2]

    @property
    def height(self) -> int:
        return self.display_window[3]


@dataclass
class ImageData(DisplaySize):
    """An image plus everything needed to write it back faithfully.

    ``pixels`` covers the data window only (EXR plates often store just the region that holds pixels);
    :meth:`full_frame` places them into the display window, which is what a viewer shows.
    """

    pixels: np.ndarray
    channels: list[str] = field(default_factory=list)
    data_window: Window = (0, 0, 0, 0)
    display_window: Window = (0, 0, 0, 0)
    pixel_aspect: float = 1.0
    colorspace: str = "sRGB"
    metadata: dict[str, Any] = field(default_factory=dict)
    bit_depth: str = ""  # the file's sample type ("uint8", "uint16", "uint10", "half", "float"); "" if none

    def __post_init__(self) -> None:
        px = as_float_pixels(self.pixels)
        if px.ndim == 2:
            px = px[..., None]
        if px.ndim != 3:
            raise ValueError(f"ImageData pixels must be (H, W, C), got shape {px.shape}")
        self.pixels = px
        h, w, c = px.shape
        if not self.channels:
            self.channels = default_channel_names(c)
        if len(self.channels) != c:
            raise ValueError(f"ImageData has {c} channels but {len(self.channels)} names")
        if self.data_window == (0, 0, 0, 0):
            self.data_window = (0, 0, w, h)
        if self.display_window == (0, 0, 0, 0):
            self.display_window = self.data_window
        self.data_window = tuple(int(v) for v in self.data_window)  # type: ignore[assignment]
        self.display_window = tuple(int(v) for v in self.display_window)  # type: ignore[assignment]
        if self.data_window[2:] != (w, h):
            raise ValueError(f"data window {self.data_window} does not match pixels of size {w}x{h}")

    @property
    def nchannels(self) -> int:
        return self.pixels.shape[2]

    def channel_index(self, name: str) -> int | None:
        """Index of a channel by (case-insensitive) name, or None."""
        lower = [c.lower() for c in self.channels]
        return lower.index(name.lower()) if name.lower() in lower else None

    def rows(self, first: int, end: int) -> ImageData:
        """The pixel rows ``first`` to ``end`` (exclusive) of the data window, as an image whose data window
        covers just them (the display window unchanged)."""
        h = self.pixels.shape[0]
        if not 0 <= first < end <= h:
            raise ValueError(f"rows {first}-{end}: outside the data window's {h} rows")
        dx, dy, dw, _ = self.data_window
        return replace(self, pixels=self.pixels[first:end], data_window=(dx, dy + first, dw, end - first),
                       metadata=dict(self.metadata))

    def full_frame(self, fill: float = 0.0) -> np.ndarray:
        """Pixels over the display window: data outside it is cropped, missing areas get ``fill``."""
        dx, dy, dw, dh = self.data_window
        fx, fy, fw, fh = self.display_window
        if (dx, dy, dw, dh) == (fx, fy, fw, fh):
            return self.pixels.copy()
        out = np.full((fh, fw, self.nchannels), fill, dtype=np.float32)
        x0, y0 = max(dx, fx), max(dy, fy)
        x1, y1 = min(dx + dw, fx + fw), min(dy + dh, fy + fh)
        if x1 > x0 and y1 > y0:
            out[y0 - fy : y1 - fy, x0 - fx : x1 - fx] = self.pixels[y0 - dy : y1 - dy, x0 - dx : x1 - dx]
        return out

    def rgb(self) -> np.ndarray:
        """The colour channels over the data window, (H, W, 3): R, G, B by name, else the first three;
        a grey image is repeated into three channels.

        A view of :attr:`pixels` where R, G, B lie side by side in that order (the usual file), else a copy:
        a plate's rows are read for every render, and a copy of them is memory and time for nothing. Do not
        write into it."""
        idx = [self.channel_index(n) for n in ("R", "G", "B")]
        if all(i is not None for i in idx):
            first = int(idx[0])  # type: ignore[arg-type]
            if idx == [first, first + 1, first + 2]:
                return self.pixels[..., first:first + 3]
            return self.pixels[..., idx]  # type: ignore[index]
        if self.nchannels >= 3:
            return self.pixels[..., :3]
        return np.repeat(self.pixels[..., :1], 3, axis=2)

    def alpha(self) -> np.ndarray | None:
        """The alpha channel (H, W) over the data window, or None."""
        i = self.channel_index("A")
        return None if i is None else self.pixels[..., i]
