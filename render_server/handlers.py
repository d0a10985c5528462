"""What each request does: validate its fields, call the shot model, shape the reply.

These functions run on worker threads and never touch a socket. They raise
:class:`~host_plugin.protocol.ProtocolError` for anything the client got wrong; the server turns that
into an error reply. Model calls happen under the model's lock (one forward pass at a time per model).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


_AFTER_REPLY = threading.local()


@contextmanager
def collecting_releases() -> Iterator[list[Any]]:
    """Within the block, :func:`release_after_reply` puts objects in the yielded list (the server's worker
    wraps a request in it and hands the list to the I/O thread, which drops it after sending the reply)."""
    bag: list[Any] = []
    _AFTER_REPLY.objs = bag
    try:
        yield bag
    finally:
        _AFTER_REPLY.objs = None


def release_after_reply(*objs: Any) -> None:
    """Keep ``objs`` alive until this request's reply has been handed to the socket. A frame render holds
    arrays the size of the face's box on the plate, whose release (returning their pages to the system, under the GIL) is better done
    while the reply travels and the host composites than before the reply is sent. Outside
    :func:`collecting_releases` (a handler called directly) nothing is kept."""
    bag = getattr(_AFTER_REPLY, "objs", None)
    if bag is not None:
        bag.extend(objs)


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
        # the frame whose crop the image shows (optional): its ROI for a Stage I with the region tap
        frame = _frame(fields, model) if fields.get("frame") is not None else None
        labels = _call(entry, lambda: model.labels_from_image(rgb, frame))
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
        release_after_reply(fr)
        changed, colorspace, display_window = fr.changed, str(fr.colorspace), [int(v) for v in fr.display_window]
    shm = fmt in ("raw", "half") and get_field(fields, "shm", bool, False) and shm_available()
    t1 = time.perf_counter()
    payload: dict[str, Any]
    if pass_name == "render" and fmt in ("raw", "half"):
        # premultiplied RGBA over the render's bounding box, the plate's colour space, in the payload's dtype
        box, rgb, alpha = fr.alpha_box_arrays()
        payload = {"rgba": _rgba_payload(rgb, alpha, "float16" if fmt == "half" else "float32", shm)}
    else:
        if pass_name == "render":
            image = fr.rgba_image()
        box = image.data_window
        if fmt in ("raw", "half"):
            pixels = np.ascontiguousarray(image.pixels, dtype=np.float16 if fmt == "half" else np.float32)
            payload = {"rgba": encode_array_shm(pixels) if shm else encode_array(pixels)}
        else:
            payload = {"exr": wire_exr(image)}
    t2 = time.perf_counter()
    out = {
        "kind": "frame",
        "frame": frame,
        "pass": pass_name,
        "data_window": [int(v) for v in box],
        "display_window": display_window,
        "colorspace": colorspace,
        "changed": encode_array(np.asarray(changed, dtype=np.uint8)),
        **payload,
    }
    out["encode_ms"] = (t2 - t1) * 1e3  # what the payload costs the server (benchmarks/roundtrip.py)
    out["elapsed_ms"] = (t2 - t0) * 1e3
    return out


def _rgba_payload(rgb: np.ndarray, alpha: np.ndarray, dtype: str, shm: bool) -> dict[str, Any]:
    """The array map of the premultiplied RGBA of ``rgb``/``alpha`` (a render's alpha box) in ``dtype``
    (computed once, in that dtype), as a /dev/shm payload file for a same-host client (``shm``) or packed bytes."""
    dst = np.empty(alpha.shape + (4,), dtype)
    _premultiply_into(dst, rgb, alpha)
    if shm:
        sweep_shm()
        return encode_array_shm(dst)
    return encode_array(dst)


def _premultiply_into(dst: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> None:
    """``dst[..., :3] = rgb * alpha`` and ``dst[..., 3] = alpha`` (float32 arithmetic, rounded once to
    ``dst``'s dtype), the numbers ``premultiplied_rgba(...).astype(dtype)`` gives.

    In torch when it is there (it is wherever a real model renders): numpy's loops over a 3- or 4-channel
    last axis run a few elements at a time and its float32 → float16 cast is scalar; torch vectorises both.
    """
    try:
        import torch
    except ImportError:  # a model backend without torch: same numbers, slower
        np.multiply(rgb, alpha[..., None], out=dst[..., :3], casting="unsafe")
        dst[..., 3] = alpha
        return
    r, a, d = torch.from_numpy(rgb), torch.from_numpy(alpha), torch.from_numpy(dst)
    tmp = d if d.dtype == torch.float32 else torch.empty(d.shape, dtype=torch.float32)
    torch.mul(r, a[..., None], out=tmp[..., :3])
    tmp[..., 3] = a
    if tmp is not d:
        d.copy_(tmp)


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
