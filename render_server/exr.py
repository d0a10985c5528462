"""EXR bytes in memory, written and read by OpenImageIO.

The OIIO Python binding has no in-memory IOProxy, so the bytes go through a file on a RAM disk
(/dev/shm when present): no disk I/O, and the EXR on the wire is exactly what OIIO writes — data
window, display window, half float, colour space attribute — so a compositor can save it as-is.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vq_models.errors import ImageIOError

Window = tuple[int, int, int, int]  # x, y, width, height
_TMP_DIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


@dataclass
class ExrImage:
    """Decoded EXR: pixels over the data window (float32 H, W, C) and the header fields we carry."""

    pixels: np.ndarray
    channels: tuple[str, ...]
    data_window: Window
    display_window: Window
    colorspace: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def full_frame(self, fill: float = 0.0) -> np.ndarray:
        """Pixels over the display window (outside the data window filled with ``fill``)."""
        dx, dy, dw, dh = self.display_window
        x, y, w, h = self.data_window
        out = np.full((dh, dw, self.pixels.shape[2]), fill, dtype=np.float32)
        x0, y0 = max(x, dx), max(y, dy)
        x1, y1 = min(x + w, dx + dw), min(y + h, dy + dh)
        if x1 > x0 and y1 > y0:
            out[y0 - dy : y1 - dy, x0 - dx : x1 - dx] = self.pixels[y0 - y : y1 - y, x0 - x : x1 - x]
        return out


def _spec(pixels: np.ndarray, channels: tuple[str, ...], data_window: Window, display_window: Window, colorspace: str, half: bool):
    import OpenImageIO as oiio

    h, w, c = pixels.shape
    if c != len(channels):
        raise ValueError(f"{c} channels of pixels, {len(channels)} names")
    if (w, h) != (data_window[2], data_window[3]):
        raise ValueError(f"pixels {w}x{h} do not match the data window {data_window}")
    spec = oiio.ImageSpec(w, h, c, oiio.HALF if half else oiio.FLOAT)
    spec.x, spec.y = int(data_window[0]), int(data_window[1])
    spec.full_x, spec.full_y = int(display_window[0]), int(display_window[1])
    spec.full_width, spec.full_height = int(display_window[2]), int(display_window[3])
    spec.channelnames = tuple(channels)
    if "A" in channels:
        spec.alpha_channel = channels.index("A")
    spec.attribute("oiio:ColorSpace", colorspace)
    spec.attribute("compression", "none")  # speed over size: the payload crosses loopback or a LAN
    return spec


def write_exr(
    path: str | Path,
    pixels: np.ndarray,
    channels: tuple[str, ...] = ("R", "G", "B", "A"),
    data_window: Window | None = None,
    display_window: Window | None = None,
    colorspace: str = "lin_rec709",
    half: bool = True,
) -> None:
    """Write an EXR file (not atomic by itself: callers wrap it in :func:`atomic_path`)."""
    import OpenImageIO as oiio

    px = np.ascontiguousarray(pixels, dtype=np.float32)
    if px.ndim == 2:
        px = px[..., None]
    h, w = px.shape[:2]
    dw = tuple(data_window) if data_window is not None else (0, 0, w, h)
    disp = tuple(display_window) if display_window is not None else dw
    spec = _spec(px, tuple(channels), dw, disp, colorspace, half)  # type: ignore[arg-type]
    out = oiio.ImageOutput.create(str(path))
    if out is None or not out.open(str(path), spec):
        raise ImageIOError(f"{path}: cannot open for writing ({oiio.geterror() or (out and out.geterror())})")
    try:
        if not out.write_image(px):
            raise ImageIOError(f"{path}: cannot write ({out.geterror()})")
    finally:
        out.close()


def read_exr(path: str | Path) -> ExrImage:
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise ImageIOError(f"{path}: cannot read EXR ({oiio.geterror()})")
    try:
        spec = inp.spec()
        px = inp.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT)
        if px is None:
            raise ImageIOError(f"{path}: cannot read pixels ({inp.geterror()})")
        px = np.asarray(px, dtype=np.float32).reshape(spec.height, spec.width, spec.nchannels)
        meta = {a.name: a.value for a in spec.extra_attribs if isinstance(a.value, str | int | float)}
        return ExrImage(
            pixels=px,
            channels=tuple(spec.channelnames),
            data_window=(spec.x, spec.y, spec.width, spec.height),
            display_window=(spec.full_x, spec.full_y, spec.full_width, spec.full_height),
            colorspace=str(spec.get_string_attribute("oiio:ColorSpace") or ""),
            metadata=meta,
        )
    finally:
        inp.close()


def encode_exr_bytes(
    pixels: np.ndarray,
    channels: tuple[str, ...] = ("R", "G", "B", "A"),
    data_window: Window | None = None,
    display_window: Window | None = None,
    colorspace: str = "lin_rec709",
    half: bool = True,
) -> bytes:
    """The bytes of an EXR that OIIO writes for these pixels (through a RAM-disk temp file)."""
    fd, tmp = tempfile.mkstemp(prefix="vqedit-", suffix=".exr", dir=_TMP_DIR)
    os.close(fd)
    try:
        write_exr(tmp, pixels, channels, data_window, display_window, colorspace, half)
        return Path(tmp).read_bytes()
    finally:
        os.unlink(tmp)


def decode_exr_bytes(data: bytes) -> ExrImage:
    """Decode EXR bytes (e.g. a render reply) with OIIO."""
    if not isinstance(data, bytes | bytearray) or data[:4] != b"\x76\x2f\x31\x01":
        raise ImageIOError("render reply: payload is not an OpenEXR file")
    fd, tmp = tempfile.mkstemp(prefix="vqedit-", suffix=".exr", dir=_TMP_DIR)
    try:
        os.write(fd, data)
        os.close(fd)
        return read_exr(tmp)
    finally:
        os.unlink(tmp)
