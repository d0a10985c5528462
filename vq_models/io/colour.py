"""Colour spaces, through OpenImageIO's built-in OCIO config.

The networks see display-referred sRGB in [0, 1]; plates live in their own space (scene-linear Rec.709
for EXR, sRGB for integer formats). Two canonical names cover almost every plate:

- ``lin_rec709``: scene-linear Rec.709 primaries (OCIO "Linear Rec.709 (sRGB)").
- ``sRGB``: the sRGB encoding of Rec.709 (OCIO "sRGB Encoded Rec.709 (sRGB)").

Any colour space of OIIO's OCIO config is accepted by its full name or one of its aliases
(``ACEScg``, ``lin_srgb``, ``srgb_texture``...), plus a few common spellings (``linear``, ``srgb``).

Values outside [0, 1]: :func:`convert` never clips. OCIO's sRGB curve continues above 1 (1.5 linear is
about 1.19 encoded) and mirrors a linear segment below 0, so linear → sRGB → linear is lossless for
highlights and negatives. Only :func:`to_network` clips to [0, 1], because the networks were trained on
display images; :func:`from_network` therefore cannot restore clipped highlights, which is why renders
are pasted back only where the edit changed something.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio

from vq_models.errors import InputError
from vq_models.io.image_data import ImageData

LINEAR = "lin_rec709"
SRGB = "sRGB"

#: Rec. 709 luma weights (R, G, B): the one brightness every measure and rule here uses
REC709_LUMA = (0.2126, 0.7152, 0.0722)

_OCIO_LINEAR = "Linear Rec.709 (sRGB)"
_OCIO_SRGB = "sRGB Encoded Rec.709 (sRGB)"

# Extra spellings people type that the OCIO config does not know (lower-case keys).
_EXTRA_ALIASES = {
    "linear": _OCIO_LINEAR,
    "lin": _OCIO_LINEAR,
    "scene_linear": _OCIO_LINEAR,
    "scene-linear": _OCIO_LINEAR,
    "linear_rec709": _OCIO_LINEAR,
    "rec709_linear": _OCIO_LINEAR,
    "srgb": _OCIO_SRGB,
    "srgb_rec709": _OCIO_SRGB,
    "srgb_display": _OCIO_SRGB,  # OCIO's 'sRGB - Display' is the same curve; plates mean the encoding
    "display": _OCIO_SRGB,
}

_CANONICAL = {_OCIO_LINEAR: LINEAR, _OCIO_SRGB: SRGB}

_INTEGER_EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dpx", ".gif", ".bmp", ".tga", ".webp", ".cin"}
_VIDEO_EXTS = {".mov", ".mp4", ".m4v", ".avi", ".mkv", ".webm"}


@functools.lru_cache(maxsize=1)
def _config() -> oiio.ColorConfig:
    return oiio.ColorConfig()


@functools.lru_cache(maxsize=1)
def _name_table() -> dict[str, str]:
    """Lower-case name or alias → OCIO colour-space name."""
    cfg = _config()
    table: dict[str, str] = {}
    for name in cfg.getColorSpaceNames():
        table[name.lower()] = name
        for alias in cfg.getAliases(name):
            table.setdefault(alias.lower(), name)
    for alias, name in _EXTRA_ALIASES.items():
        table.setdefault(alias, name)
    table[LINEAR.lower()] = _OCIO_LINEAR
    table[SRGB.lower()] = _OCIO_SRGB
    return table


def known_colorspaces() -> list[str]:
    """The names accepted: the two canonical ones first, then every OCIO colour space."""
    names = [n for n in _config().getColorSpaceNames() if n not in _CANONICAL]
    return [LINEAR, SRGB, *names]


@functools.lru_cache(maxsize=256)
def resolve_colorspace(name: str) -> str:
    """The canonical name for ``name``: ``lin_rec709``, ``sRGB`` or the full OCIO name.

    Unknown names raise :class:`InputError` listing the known ones.
    """
    ocio = _name_table().get(str(name).strip().lower())
    if ocio is None:
        raise InputError(f"colour space {name!r}: unknown (known: {', '.join(known_colorspaces())})")
    return _CANONICAL.get(ocio, ocio)


def _ocio_name(name: str) -> str:
    canonical = resolve_colorspace(name)
    return {LINEAR: _OCIO_LINEAR, SRGB: _OCIO_SRGB}.get(canonical, canonical)


def default_colorspace(path_or_ext: str | Path) -> str:
    """The colour space assumed for a file type: scene-linear for EXR/HDR/float files, sRGB otherwise."""
    text = str(path_or_ext)
    if "/" not in text and text.count(".") <= 1 and not Path(text).suffix:
        ext = "." + text.lower().lstrip(".")  # a bare extension: "exr" or ".exr"
    else:
        ext = Path(text).suffix.lower()
    if ext in (".exr", ".hdr", ".sxr", ".mxr"):
        return LINEAR
    if ext in _INTEGER_EXTS or ext in _VIDEO_EXTS:
        return SRGB
    return SRGB


def convert(pixels: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Convert colour values from ``src`` to ``dst``; float32, same shape, no clipping.

    Shapes ``(..., C)``: with C >= 3 the first three channels are converted and the rest (alpha,
    depth...) kept as they are; C = 1 or 2 is treated as grey (+ alpha). Values are converted as given,
    not unpremultiplied: callers holding premultiplied RGBA divide by alpha first.
    """
    arr = np.asarray(pixels, dtype=np.float32)
    src_o, dst_o = _ocio_name(src), _ocio_name(dst)
    if src_o == dst_o or arr.size == 0:
        return arr.copy()
    if arr.ndim == 0:
        raise ValueError("convert needs an array with a channel axis")
    c = arr.shape[-1]
    # an image's rows stay rows: OpenImageIO shares the work among its threads by rows, and the whole array as
    # one 1xN row ran on one thread
    rows = arr.reshape(-1, arr.shape[-2], c) if arr.ndim >= 3 else arr.reshape(1, -1, c)
    rgb = rows[..., :3] if c >= 3 else np.repeat(rows[..., :1], 3, axis=-1)
    buf = oiio.ImageBuf(np.ascontiguousarray(rgb))
    out = oiio.ImageBufAlgo.colorconvert(buf, src_o, dst_o)
    if out.has_error:
        raise InputError(f"colour conversion {src!r} -> {dst!r} failed: {out.geterror().splitlines()[0]}")
    conv = np.asarray(out.get_pixels(oiio.FLOAT), dtype=np.float32).reshape(rgb.shape)
    if c == 3:
        return conv.reshape(arr.shape)
    result = rows.copy()
    if c > 3:
        result[..., :3] = conv
    else:
        result[..., :1] = conv[..., :1]
    return result.reshape(arr.shape)


def to_network(image: Any, colorspace: str | None = None) -> np.ndarray:
    """Display sRGB float32 (H, W, 3) in [0, 1] for the networks, over the display window.

    ``image`` is an :class:`~vq_models.io.image_data.ImageData` (its own colour space is used unless
    ``colorspace`` is given) or an array (H, W, C) in ``colorspace``. Grey images become three equal
    channels; alpha is dropped.
    """
    if isinstance(image, ImageData):
        space = colorspace or image.colorspace
        full = ImageData(image.full_frame(), image.channels, display_window=image.display_window,
                         data_window=image.display_window)
        rgb = full.rgb()
    else:
        if colorspace is None:
            raise ValueError("to_network needs the colour space of a plain array")
        space = colorspace
        arr = np.asarray(image, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[..., None]
        rgb = arr[..., :3] if arr.shape[-1] >= 3 else np.repeat(arr[..., :1], 3, axis=-1)
    out = convert(rgb, space, SRGB)
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)


def from_network(rgb: np.ndarray, colorspace: str) -> np.ndarray:
    """Bring a network's display-sRGB output (H, W, 3) back to a plate's colour space (float32)."""
    return np.ascontiguousarray(convert(np.asarray(rgb, dtype=np.float32), SRGB, colorspace), dtype=np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 luma (:data:`REC709_LUMA`) of (..., 3) or more channels (extra channels ignored), in the
    input's float precision (integer input becomes float32)."""
    arr = np.asarray(rgb)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    r, g, b = REC709_LUMA
    return arr[..., 0] * r + arr[..., 1] * g + arr[..., 2] * b


def chroma(rgb: np.ndarray) -> np.ndarray:
    """The spread of (..., 3) display colours' channels (max minus min; extra channels ignored), in the input's
    float precision: how far from grey a colour is, what the mouth rules compare teeth, tongue and lips by."""
    arr = np.asarray(rgb)[..., :3]
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    return arr.max(axis=-1) - arr.min(axis=-1)


def hue(rgb: np.ndarray) -> np.ndarray:
    """Hue of display-sRGB (..., 3) in degrees, in (-180, 180]: the angle in the chroma plane (within about a
    degree of HSV's hue), 0 red, positive toward yellow, negative toward magenta, so that pinks and reds stay
    contiguous around 0."""
    arr = np.asarray(rgb, dtype=np.float32)[..., :3]
    r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    degrees = np.degrees(np.arctan2(np.sqrt(3.0) * (g - b), 2.0 * r - g - b))
    return np.where(degrees <= -180.0, degrees + 360.0, degrees).astype(np.float32)
