"""Image files in and out, always through OpenImageIO.

Pixels travel as float32 ``(H, W, C)`` arrays covering the *data window*; the *display window*, pixel
aspect, colour space and the file's metadata ride along in :class:`ImageData` so a plate written back
after an edit keeps everything a compositor's pipeline relies on (EXR data windows, custom attributes).
Integer files (8/16-bit) come back as floats in [0, 1]; writing converts back with OIIO's rounding and
clamping. Every write is atomic: OIIO writes a temporary file beside the target that keeps the real
extension (OIIO picks the format from it), which is then renamed over the target.

Bad input raises :class:`~vq_models.errors.ImageIOError` with one line naming the file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio

from vq_models.errors import ImageIOError, InputError
from vq_models.io.atomic import atomic_path
from vq_models.io.colour import default_colorspace, resolve_colorspace
from vq_models.io.image_data import DisplaySize, ImageData, Window, as_float_pixels, default_channel_names

log = logging.getLogger(__name__)

#: dtype names accepted by :func:`write_image`, mapped to OIIO base types and bits per sample.
DTYPES: dict[str, tuple[str, int]] = {
    "uint8": ("uint8", 8),
    "uint10": ("uint16", 10),
    "uint12": ("uint16", 12),
    "uint16": ("uint16", 16),
    "half": ("half", 16),
    "float": ("float", 32),
}

#: per extension: the default dtype and the dtypes the format can store.
FORMAT_DTYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    ".exr": ("half", ("half", "float")),
    ".png": ("uint8", ("uint8", "uint16")),
    ".jpg": ("uint8", ("uint8",)),
    ".jpeg": ("uint8", ("uint8",)),
    ".tif": ("uint16", ("uint8", "uint16", "half", "float")),
    ".tiff": ("uint16", ("uint8", "uint16", "half", "float")),
    ".dpx": ("uint16", ("uint8", "uint10", "uint12", "uint16")),
}

# Attributes that describe how a particular file was stored, or that ImageData carries in its own fields:
# keeping them in ``metadata`` would make a rewritten file lie (a stale colour space, a wrong bit depth).
_STRUCTURAL_ATTRS = {"PixelAspectRatio", "colorInteropID", "ICCProfile", "ImageDescription:ColorSpace"}


# --------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------


def _oiio_error(obj: Any = None) -> str:
    """OIIO's pending error message as one line (it can span several, and stale ones must be cleared)."""
    msg = ""
    if obj is not None and hasattr(obj, "geterror"):
        msg = obj.geterror() or ""
    glob = oiio.geterror() or ""
    msg = msg or glob
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    return lines[0] if lines else "unknown OpenImageIO error"


def _bit_depth(spec: oiio.ImageSpec) -> str:
    base = str(spec.format)
    if base == "uint16":
        bits = spec.get_int_attribute("oiio:BitsPerSample", 16)
        return {10: "uint10", 12: "uint12"}.get(bits, "uint16")
    return base if base in ("uint8", "half", "float") else base


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _metadata_from_spec(spec: oiio.ImageSpec) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for attr in spec.extra_attribs:
        name = attr.name
        if name.startswith("oiio:") or name in _STRUCTURAL_ATTRS:
            continue
        try:
            meta[name] = _plain(attr.value)
        except Exception:  # an attribute type the Python binding cannot express: skip it, keep the image
            log.debug("skipping metadata attribute %s of type %s", name, attr.type)
    return meta


def _file_colorspace(spec: oiio.ImageSpec, path: Path) -> str:
    named = spec.get_string_attribute("oiio:ColorSpace", "")
    if named:
        try:
            return resolve_colorspace(named)
        except InputError:
            log.debug("%s: colour space %r not in the OCIO config; using the format default", path, named)
    return default_colorspace(path)


@dataclass
class ImageHeader(DisplaySize):
    """What a file's header says, without reading pixels (for frame sources and quick checks)."""

    path: Path
    channels: list[str]
    data_window: Window
    display_window: Window
    pixel_aspect: float
    colorspace: str
    metadata: dict[str, Any]
    bit_depth: str



def _header_from_spec(spec: oiio.ImageSpec, path: Path) -> ImageHeader:
    return ImageHeader(
        path=path,
        channels=list(spec.channelnames),
        data_window=(spec.x, spec.y, spec.width, spec.height),
        display_window=(spec.full_x, spec.full_y, spec.full_width, spec.full_height),
        pixel_aspect=float(spec.get_float_attribute("PixelAspectRatio", 1.0) or 1.0),
        colorspace=_file_colorspace(spec, path),
        metadata=_metadata_from_spec(spec),
        bit_depth=_bit_depth(spec),
    )


@contextlib.contextmanager
def _open_input(path: Path) -> Iterator[oiio.ImageInput]:
    if not path.exists():
        raise ImageIOError(f"{path}: file not found")
    if path.is_dir():
        raise ImageIOError(f"{path}: is a directory, not an image file")
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise ImageIOError(f"{path}: cannot read image ({_oiio_error()})")
    try:
        yield inp
    finally:
        inp.close()


def read_header(path: str | Path) -> ImageHeader:
    """Read only the header of an image file (windows, channels, colour space, metadata)."""
    path = Path(path)
    with _open_input(path) as inp:
        return _header_from_spec(inp.spec(), path)


def read_image(
    path: str | Path,
    *,
    allow_mono: bool = False,
    channels: int | None = None,
    require_8bit: bool = False,
    rows: tuple[int, int] | None = None,
) -> ImageData:
    """Read an image file as float32 over its data window.

    ``rows=(first, end)`` reads only those pixel rows of the data window (0 = its top row; end exclusive), and
    the image's data window covers just them: a render needs the face's rows of a 4K plate, and decoding the
    rest cost more than the render.

    ``allow_mono=False`` rejects grey images where colour is expected (a wrong file picked as a plate).
    ``channels=N`` returns exactly N channels: extra ones are dropped, RGB gains an opaque alpha for N=4,
    and (with ``allow_mono``) grey is repeated for N=3/4. ``require_8bit`` rejects anything but 8-bit
    integer files, for inputs whose values are codes rather than intensities.
    """
    path = Path(path)
    with _open_input(path) as inp:
        spec = inp.spec()
        header = _header_from_spec(spec, path)
        if require_8bit and str(spec.format) != "uint8":
            raise ImageIOError(f"{path}: {header.bit_depth} image where an 8-bit image is required")
        first, end = (0, spec.height) if rows is None else (int(rows[0]), int(rows[1]))
        if not 0 <= first < end <= spec.height:
            raise ImageIOError(f"{path}: rows {first}-{end} are outside its {spec.height} rows")
        if rows is None:
            pixels = inp.read_image(0, 0, 0, spec.nchannels, "float")
        else:
            pixels = inp.read_scanlines(0, 0, spec.y + first, spec.y + end, 0, 0, spec.nchannels, "float")
        if pixels is None:
            raise ImageIOError(f"{path}: cannot read pixels, file truncated or corrupt ({_oiio_error(inp)})")
    pixels = np.asarray(pixels, dtype=np.float32).reshape(end - first, spec.width, spec.nchannels)
    data_window = header.data_window
    if rows is not None:
        data_window = (data_window[0], data_window[1] + first, data_window[2], end - first)
    names = header.channels
    colour_names = {"r", "g", "b"}
    is_mono = spec.nchannels < 3 and not colour_names & {n.lower() for n in names}
    if is_mono and not allow_mono:
        raise ImageIOError(f"{path}: single-channel (grey) image where a colour image was expected")
    if channels is not None:
        pixels, names = _fit_channels(pixels, names, channels, path)
    return ImageData(
        pixels=np.ascontiguousarray(pixels),
        channels=list(names),
        data_window=data_window,
        display_window=header.display_window,
        pixel_aspect=header.pixel_aspect,
        colorspace=header.colorspace,
        metadata=header.metadata,
        bit_depth=header.bit_depth,
    )


def _fit_channels(pixels: np.ndarray, names: list[str], n: int, path: Path) -> tuple[np.ndarray, list[str]]:
    c = pixels.shape[2]
    if n == c:
        return pixels, names
    if n < c:
        return pixels[..., :n], names[:n]
    if c == 1 and n in (3, 4):
        rgb = np.repeat(pixels, 3, axis=2)
        if n == 4:
            rgb = np.concatenate([rgb, np.ones_like(pixels)], axis=2)
        return rgb, default_channel_names(n)
    if c == 2 and n == 4:  # grey + alpha
        return np.concatenate([np.repeat(pixels[..., :1], 3, axis=2), pixels[..., 1:2]], axis=2), ["R", "G", "B", "A"]
    if c == 3 and n == 4:
        return np.concatenate([pixels, np.ones_like(pixels[..., :1])], axis=2), names + ["A"]
    raise ImageIOError(f"{path}: has {c} channels, cannot provide {n}")


def read_label_map(path: str | Path) -> np.ndarray:
    """Read a label map: a single-channel 8-bit lossless file holding one code per pixel, uint8 (H, W).

    Labels are codes, not intensities, so a 16-bit file or an RGB file is refused rather than guessed at
    (a resampled or colour-managed label map would silently invent codes).
    """
    path = Path(path)
    with _open_input(path) as inp:
        spec = inp.spec()
        if str(spec.format) != "uint8":
            raise ImageIOError(f"{path}: label map must be 8-bit, file is {_bit_depth(spec)}")
        if spec.nchannels != 1:
            raise ImageIOError(f"{path}: label map must be single-channel, file has {spec.nchannels} channels")
        pixels = inp.read_image(0, 0, 0, 1, "uint8")
        if pixels is None:
            raise ImageIOError(f"{path}: cannot read pixels, file truncated or corrupt ({_oiio_error(inp)})")
    return np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8).reshape(spec.height, spec.width))


def write_label_map(path: str | Path, labels: np.ndarray) -> None:
    """Write a label map as a single-channel 8-bit PNG (lossless, exact codes)."""
    path = Path(path)
    arr = np.asarray(labels)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise ValueError(f"label map must be (H, W), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255 or not np.all(np.equal(np.mod(arr, 1), 0))):
            raise ValueError("label map values must be integers in 0..255")
        arr = arr.astype(np.uint8)
    if path.suffix.lower() != ".png":
        raise ImageIOError(f"{path}: label maps are written as .png (lossless 8-bit)")
    spec = oiio.ImageSpec(arr.shape[1], arr.shape[0], 1, "uint8")
    spec.channelnames = ("Y",)
    _write_spec(path, spec, np.ascontiguousarray(arr[..., None]))


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------


def _typed_attribute(spec: oiio.ImageSpec, name: str, value: Any) -> None:
    """Set a metadata attribute, choosing an OIIO type that round-trips through EXR headers."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int | float | str):
        spec.attribute(name, value)
        return
    if isinstance(value, list | tuple) and value:
        vals = list(value)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            spec.attribute(name, oiio.TypeDesc(f"int[{len(vals)}]"), tuple(vals))
            return
        if all(isinstance(v, int | float) for v in vals):
            fvals = tuple(float(v) for v in vals)
            typ = {2: "float2", 3: "vector", 9: "matrix33", 16: "matrix"}.get(len(vals), f"float[{len(vals)}]")
            spec.attribute(name, oiio.TypeDesc(typ), fvals)
            return
        if all(isinstance(v, str) for v in vals):
            spec.attribute(name, oiio.TypeDesc(f"string[{len(vals)}]"), tuple(vals))
            return
    log.debug("metadata %s=%r has no image-header type; not written", name, value)


def _write_spec(path: Path, spec: oiio.ImageSpec, pixels: np.ndarray) -> None:
    """Write pixels with a prepared spec, atomically; any failure is an ImageIOError naming ``path``."""
    try:
        with atomic_path(path) as tmp:
            out = oiio.ImageOutput.create(str(tmp))
            if out is None:
                raise ImageIOError(f"{path}: no image writer for this extension ({_oiio_error()})")
            try:
                if not out.open(str(tmp), spec):
                    raise ImageIOError(f"{path}: cannot write image ({_oiio_error(out)})")
                if not out.write_image(pixels):
                    raise ImageIOError(f"{path}: cannot write image ({_oiio_error(out)})")
            finally:
                ok = out.close()
            if not ok:
                raise ImageIOError(f"{path}: cannot finish writing image ({_oiio_error(out)})")
    except OSError as exc:
        raise ImageIOError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _pick_dtype(path: Path, requested: str | None, source_depth: str | None) -> str:
    ext = path.suffix.lower()
    default, allowed = FORMAT_DTYPES.get(ext, ("float", tuple(DTYPES)))
    if requested is not None:
        if requested not in DTYPES:
            raise InputError(f"{path}: unknown dtype {requested!r} (choose from {', '.join(DTYPES)})")
        if requested not in allowed:
            raise ImageIOError(f"{path}: {ext} cannot store {requested} (choose from {', '.join(allowed)})")
        return requested
    if source_depth in allowed:
        return source_depth  # keep the plate's own depth when the target format can hold it
    return default


def write_image(
    path: str | Path,
    image: ImageData | np.ndarray,
    *,
    dtype: str | None = None,
    colorspace: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    data_window: Window | None = None,
    display_window: Window | None = None,
    pixel_aspect: float | None = None,
    channels: list[str] | None = None,
) -> None:
    """Write an image atomically.

    ``dtype`` (``half``/``float``/``uint8``/``uint16``, ``uint10``/``uint12`` for DPX) defaults to the
    source's bit depth when the format can hold it, else half for EXR, uint8 for PNG/JPEG, uint16 for
    TIFF/DPX. Keyword arguments override what ``image`` carries; ``metadata`` is merged over its metadata.
    Formats without data windows (PNG, JPEG) get the full display frame. JPEG drops channels after the
    third (it has no alpha). The pixel values are written as given: no colour conversion happens here,
    ``colorspace`` only labels them.
    """
    path = Path(path)
    if isinstance(image, ImageData):
        base = image
    else:
        base = ImageData(pixels=as_float_pixels(image))
        if colorspace is None:
            base.colorspace = default_colorspace(path)
    pixels = base.pixels
    names = list(channels) if channels is not None else list(base.channels)
    if len(names) != pixels.shape[2]:
        raise ValueError(f"{path}: {len(names)} channel names for {pixels.shape[2]} channels")
    dwin = tuple(data_window) if data_window is not None else base.data_window
    fwin = tuple(display_window) if display_window is not None else base.display_window
    if data_window is not None and tuple(dwin[2:]) != (pixels.shape[1], pixels.shape[0]):
        raise ValueError(f"{path}: data window {dwin} does not match pixels {pixels.shape[1]}x{pixels.shape[0]}")
    if data_window is not None and display_window is None and not isinstance(image, ImageData):
        fwin = dwin
    aspect = float(pixel_aspect if pixel_aspect is not None else base.pixel_aspect)
    if colorspace is not None:
        cs = resolve_colorspace(colorspace)
    else:
        cs = base.colorspace
    meta = dict(base.metadata)
    meta.update(metadata or {})

    ext = path.suffix.lower()
    chosen = _pick_dtype(path, dtype, base.bit_depth or None)
    oiio_type, bits = DTYPES[chosen]

    probe = oiio.ImageOutput.create(str(path))
    if probe is None:
        raise ImageIOError(f"{path}: no image writer for extension {ext!r} ({_oiio_error()})")
    if dwin != fwin and not probe.supports("displaywindow"):
        full = ImageData(pixels, names, dwin, fwin).full_frame()  # type: ignore[arg-type]
        pixels, dwin = full, fwin
    if ext in (".jpg", ".jpeg") and pixels.shape[2] > 3:
        pixels, names = pixels[..., :3], names[:3]

    h, w, c = pixels.shape
    spec = oiio.ImageSpec(w, h, c, oiio_type)
    spec.channelnames = tuple(names)
    lower = [n.lower() for n in names]
    spec.alpha_channel = lower.index("a") if "a" in lower else -1
    spec.x, spec.y = int(dwin[0]), int(dwin[1])
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = (int(v) for v in fwin)
    for name, value in meta.items():
        _typed_attribute(spec, str(name), value)
    spec.attribute("PixelAspectRatio", aspect)
    spec.attribute("oiio:ColorSpace", cs)
    if oiio_type == "uint16" and bits != 16:
        spec.attribute("oiio:BitsPerSample", bits)
    _write_spec(path, spec, np.ascontiguousarray(pixels, dtype=np.float32))


# --------------------------------------------------------------------------------------------------
# in-memory EXR for the render server
# --------------------------------------------------------------------------------------------------


def _scratch_dir() -> str | None:
    """RAM-backed scratch space when there is one, so in-memory encoding does not touch a disk."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def encode_exr_bytes(image: ImageData | np.ndarray, *, dtype: str = "half") -> bytes:
    """Encode an image as the bytes of an EXR file (windows, colour space and metadata included).

    OpenImageIO's Python binding (3.2) exposes no in-memory IOProxy, so this writes a private temporary
    file (in /dev/shm where available) and reads it back.
    """
    with tempfile.TemporaryDirectory(prefix="vqedit-exr-", dir=_scratch_dir()) as tmpdir:
        tmp = Path(tmpdir) / "image.exr"
        write_image(tmp, image, dtype=dtype)
        return tmp.read_bytes()


def decode_image_bytes(data: bytes, ext: str = ".exr") -> ImageData:
    """Decode image file bytes (EXR by default) into ImageData; through a private temp file, see above."""
    if not ext.startswith("."):
        ext = "." + ext
    with tempfile.TemporaryDirectory(prefix="vqedit-img-", dir=_scratch_dir()) as tmpdir:
        tmp = Path(tmpdir) / f"image{ext}"
        tmp.write_bytes(bytes(data))
        try:
            return read_image(tmp, allow_mono=True)
        except ImageIOError as exc:
            msg = str(exc).replace(str(tmp), f"<{len(data)} bytes of {ext[1:]}>")
            raise ImageIOError(msg) from None
