"""What each request does: validate its fields, call the shot model, shape the reply.

These functions run on worker threads and never touch a socket. They raise
:class:`~host_plugin.protocol.ProtocolError` for anything the client got wrong; the server turns that
into an error reply. Model calls happen under the model's lock (one forward pass at a time per model).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from host_plugin.modes import PASSES
from host_plugin.modes import RENDER_MODES as MODES
from host_plugin.protocol import (
    BAD_FRAME,
    BAD_PRIOR,
    BAD_PROGRAM,
    BAD_REQUEST,
    INTERNAL,
    ProtocolError,
    decode_array,
    encode_array,
    encode_array_shm,
    get_field,
    shm_available,
    sweep_shm,
)
from render_server import paint, transfer
from render_server.models import Entry, ModelCache
from render_server.protocol import check_labels, model_name
from vq_models.errors import VQEditError
from vq_models.io.images import ImageData, encode_exr_bytes

log = logging.getLogger(__name__)
FORMATS = ("exr", "raw", "half")
MAX_FEATHER = 1024.0
MAX_IMAGE_SIDE = 16384


def validate_program(program: Any, entry: Entry | None = None) -> dict[str, Any] | None:
    """Check an edit program map with the edits module's parser (docs/edits.md), using the model's artist
    prior for custom segment names when it has one, so a bad program fails before any model work."""
    if program is None:
        return None
    if not isinstance(program, dict):
        raise ProtocolError(BAD_PROGRAM, "program: expected a map {version, edits}")
    try:
        from vq_models.edits.program import parse_program
    except ImportError:  # edits module not installed: the model validates
        if program.get("version") != 1 or not isinstance(program.get("edits"), list):
            raise ProtocolError(BAD_PROGRAM, "program: expected {\"version\": 1, \"edits\": [...]}") from None
        return program
    prior = None
    if entry is not None:
        try:
            from vq_models.edits.prior import validate_prior

            with entry.lock:
                prior = validate_prior(entry.model.get_prior())
        except Exception:  # noqa: BLE001 - no usable prior: standard segment names only
            prior = None
    try:
        parse_program(program, prior)
    except VQEditError as exc:
        raise ProtocolError(BAD_PROGRAM, str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - hostile input must never escape as a crash
        raise ProtocolError(BAD_PROGRAM, f"program: {type(exc).__name__}: {exc}") from None
    return program


def wire_exr(image: ImageData) -> bytes:
    """Half-float EXR bytes for a reply, uncompressed: the payload crosses loopback or a LAN, where
    compressing costs more time than the bytes it saves (benchmarks/roundtrip.py)."""
    return encode_exr_bytes(ImageData(image.pixels, image.channels, image.data_window, image.display_window,
                                      colorspace=image.colorspace, metadata={"compression": "none"}), dtype="half")


def _frame(fields: dict[str, Any], model: Any) -> int:
    frame = get_field(fields, "frame", int)
    if frame not in set(int(f) for f in model.frames):
        frames = list(model.frames)
        span = f"{frames[0]}-{frames[-1]}" if frames else "none"
        raise ProtocolError(BAD_FRAME, f"frame: {frame} is not in the shot ({span})")
    return frame


def _call(entry: Entry, fn: Callable[[], Any]) -> Any:
    """Run a model call under its lock, mapping model-side user errors to BAD_REQUEST."""
    with entry.lock:
        try:
            return fn()
        except ProtocolError:
            raise
        except VQEditError as exc:
            raise ProtocolError(BAD_REQUEST, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
        except Exception as exc:
            log.exception("model %s failed", entry.name)
            raise ProtocolError(INTERNAL, f"model {entry.name!r} failed: {type(exc).__name__}: {exc}") from None


def do_load(cache: ModelCache, fields: dict[str, Any]) -> dict[str, Any]:
    entry = cache.get(model_name(fields))
    return {"model": cache.describe(entry)}


def do_unload(cache: ModelCache, fields: dict[str, Any]) -> dict[str, Any]:
    return {"unloaded": cache.unload(model_name(fields))}


def do_labels(cache: ModelCache, fields: dict[str, Any]) -> dict[str, Any]:
    entry = cache.get(model_name(fields))
    model = entry.model
    if fields.get("image") is not None:
        image = decode_array(fields["image"], "image", ("float32", "float16"), ndim=(3,))
        if image.shape[2] != 3 or max(image.shape[:2]) > MAX_IMAGE_SIDE:
            raise ProtocolError(BAD_REQUEST, f"image.shape: expected (H, W, 3) with sides ≤ {MAX_IMAGE_SIDE}")
        if not np.isfinite(image).all():
            raise ProtocolError(BAD_REQUEST, "image: contains NaN or inf")
        rgb = np.ascontiguousarray(image, dtype=np.float32)
        labels = _call(entry, lambda: model.labels_from_image(rgb))
    else:
        frame = _frame(fields, model)
        labels = _call(entry, lambda: model.label_map(frame))
    return {"labels": encode_array(np.asarray(labels, dtype=np.uint8))}


def do_render(cache: ModelCache, fields: dict[str, Any]) -> dict[str, Any]:
    entry = cache.get(model_name(fields))
    model = entry.model
    fmt = get_field(fields, "format", str, "exr")
    if fmt not in FORMATS:
        raise ProtocolError(BAD_REQUEST, f"format: expected one of {', '.join(FORMATS)}")
    K, L = int(model.num_codes), int(model.label_size)
    t0 = time.perf_counter()
    if fields.get("window") is not None:
        window = decode_array(fields["window"], "window", ("uint8",), ndim=(3,))
        window = check_labels(window, K, L, "window", stacked=True)
        rgb = np.asarray(_call(entry, lambda: model.render_window(window)), dtype=np.float32)
        out: dict[str, Any] = {"kind": "window", "elapsed_ms": 0.0}
        if fmt in ("raw", "half"):
            out["rgb"] = encode_array(rgb if fmt == "raw" else rgb.astype(np.float16))
        else:
            out["exr"] = wire_exr(ImageData(rgb, ["R", "G", "B"], colorspace="sRGB"))
        out["elapsed_ms"] = (time.perf_counter() - t0) * 1e3
        return out

    frame = _frame(fields, model)
    program = validate_program(fields.get("program"), entry)
    feather = float(get_field(fields, "feather", (int, float), 8.0))
    if not 0.0 <= feather <= MAX_FEATHER:
        raise ProtocolError(BAD_REQUEST, f"feather: expected 0-{MAX_FEATHER:g} pixels")
    mode = get_field(fields, "mode", str, "identity")
    if mode not in MODES:
        raise ProtocolError(BAD_REQUEST, f"mode: expected one of {', '.join(MODES)}")
    pass_name = get_field(fields, "pass", str, "render")
    if pass_name not in PASSES:
        raise ProtocolError(BAD_REQUEST, f"pass: expected one of {', '.join(PASSES)}")
    labels = None
    if fields.get("labels") is not None:
        labels = check_labels(decode_array(fields["labels"], "labels", ("uint8",), ndim=(2,)), K, L, "labels", stacked=False)
    # expression transfer: the driver's expression is where the labels start (program, labels, paint on top)
    override = None
    if fields.get("driver") is not None:
        override = _call(entry, lambda: transfer.driver_override(cache, entry, fields, frame))
    matte = paint.decode_paint(fields)
    if matte is not None:
        base = labels
        if base is None:
            base = _call(entry, lambda: model.edited_labels(frame, program, override=override)[0])
        labels = _call(entry, lambda: paint.painted_labels(model, frame, base, matte))
    if pass_name == "labels":
        if labels is None:
            labels = _call(entry, lambda: model.edited_labels(frame, program, override=override)[0])
        original = _call(entry, lambda: model.label_map(frame))
        image = _call(entry, lambda: paint.labels_pass(model, frame, labels))
        changed = np.asarray(labels) != np.asarray(original)
        colorspace, display_window = str(image.colorspace), [int(v) for v in image.display_window]
    else:
        fr = _call(entry, lambda: model.render_frame(frame, program, feather=feather, mode=mode, labels=labels,
                                                     override=override))
        # premultiplied RGBA over the render's bounding box, the plate's colour space; for the raw formats the
        # premultiply writes the payload's dtype directly (one pass over the box instead of three)
        image = fr.rgba_image() if fmt == "exr" else _rgba_box(fr, np.float16 if fmt == "half" else np.float32)
        changed, colorspace, display_window = fr.changed, str(fr.colorspace), [int(v) for v in fr.display_window]
    out = {
        "kind": "frame",
        "frame": frame,
        "pass": pass_name,
        "data_window": [int(v) for v in image.data_window],
        "display_window": display_window,
        "colorspace": colorspace,
        "changed": encode_array(np.asarray(changed, dtype=np.uint8)),
    }
    t1 = time.perf_counter()
    if fmt in ("raw", "half"):
        payload = np.ascontiguousarray(image.pixels, dtype=np.float16 if fmt == "half" else np.float32)
        if get_field(fields, "shm", bool, False) and shm_available():  # a client on this host: hand over a file
            sweep_shm()
            out["rgba"] = encode_array_shm(payload)
        else:
            out["rgba"] = encode_array(payload)
    else:
        out["exr"] = wire_exr(image)
    t2 = time.perf_counter()
    out["encode_ms"] = (t2 - t1) * 1e3  # what the payload costs the server (benchmarks/roundtrip.py)
    out["elapsed_ms"] = (t2 - t0) * 1e3
    return out


class _Box:
    """The fields of the render's box a raw reply needs (``pixels``, ``data_window``)."""

    def __init__(self, pixels: np.ndarray, data_window: tuple[int, int, int, int]):
        self.pixels, self.data_window = pixels, data_window


def _rgba_box(fr: Any, dtype: Any) -> _Box:
    """``fr.rgba_image()``'s pixels and window, premultiplied straight into ``dtype``."""
    x, y, w, h = fr.alpha_box()
    wx, wy = fr.rgba_window[:2]
    rows, cols = slice(y - wy, y + h - wy), slice(x - wx, x + w - wx)
    alpha = fr.alpha[rows, cols, None]
    out = np.empty((h, w, 4), dtype)
    np.multiply(fr.rgb[rows, cols], alpha, out=out[..., :3], casting="unsafe")
    out[..., 3:] = alpha
    return _Box(out, (x, y, w, h))


def do_exemplar(cache: ModelCache, fields: dict[str, Any]) -> dict[str, Any]:
    entry = cache.get(model_name(fields))
    frame = _frame(fields, entry.model) if fields.get("frame") is not None else None
    png = _call(entry, lambda: entry.model.exemplar_png(frame))
    return {"png": bytes(png)}


def do_prior(cache: ModelCache, fields: dict[str, Any]) -> dict[str, Any]:
    entry = cache.get(model_name(fields))
    new = fields.get("set")
    if new is not None:
        if not isinstance(new, dict):
            raise ProtocolError(BAD_PRIOR, "set: expected a map of segment names to code lists")
        with entry.lock:
            try:
                entry.model.set_prior(new)
            except VQEditError as exc:
                raise ProtocolError(BAD_PRIOR, f"set: {exc}") from None
            except Exception as exc:  # noqa: BLE001
                raise ProtocolError(BAD_PRIOR, f"set: {type(exc).__name__}: {exc}") from None
    return {"prior": _call(entry, entry.model.get_prior)}


HANDLERS: dict[str, Callable[[ModelCache, dict[str, Any]], dict[str, Any]]] = {
    "load": do_load,
    "unload": do_unload,
    "labels": do_labels,
    "render": do_render,
    "exemplar": do_exemplar,
    "prior": do_prior,
}
