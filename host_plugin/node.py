"""EditNode: the host-agnostic core of the compositing node.

Everything a host plugin does lives here so it can be tested without the host: the node's state is its
knob set (server address, shot model, edit keyframes, segment edits, paint segment, feather, mix, mode);
:meth:`EditNode.request_fields` resolves the animated knobs at a frame into one render request,
:meth:`EditNode.fetch_pass` returns a pass exactly as the server sent it (what Nuke writes to disk and
merges natively), and :meth:`EditNode.evaluate` also composites the premultiplied render over a plate
(farm and OFX bridge, where pixels pass through Python). The knobs themselves are :mod:`host_plugin.knobs`.
Host adapters (``host_plugin/nuke``,
``host_plugin/ofx``) only copy knob values in and pixels or files out.

Pure Python with pyzmq and msgpack; numpy is imported only where pixels are handled (``evaluate``).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from host_plugin.client import RenderClient
from host_plugin.errors import InputError
from host_plugin.knobs import (  # the knob vocabulary; re-exported for the adapters
    DRIVER_KNOBS,
    FACE_KNOBS,
    FILL_KNOBS,
    FLAG_KNOBS,
    driver_fields,
    edits_from_face_knobs,
    edits_from_segment_rows,
    load_program_file,
    value_at,
)
from host_plugin.modes import PASSES, RENDER_MODES

Window = tuple[int, int, int, int]
MODES = RENDER_MODES  # kept for callers of the old name

# --- compositing ----------------------------------------------------------------------------------
def composite_over(render_rgba: Any, render_window: Window, plate: Any, plate_window: Window, mix: float = 1.0) -> Any:
    """Premultiplied ``render_rgba`` over ``plate`` (each over its own data window, display coordinates),
    the rule of Nuke's Merge (over) with its mix: ``A·mix + B·(1 - a·mix)``.

    Returns pixels over the plate's data window in the plate's own dtype; where the render's alpha is 0
    the plate comes back bit for bit (selected, never blended), and channels after RGB (the plate's own
    alpha) are always the plate's. Only the render's box is touched, so a face on a 4K plate costs its
    own size.
    """
    import numpy as np

    base = np.asarray(plate)
    out = base.copy()  # C order: each row of the box below is one run of w·C values
    rgba = np.asarray(render_rgba)  # float16 (the "half" payload) or float32; blended in float32
    mix = min(float(mix), 1.0)
    if mix <= 0.0 or rgba.size == 0:
        return out
    rx, ry = int(render_window[0]), int(render_window[1])
    px, py, pw, ph = (int(v) for v in plate_window)
    x0, y0 = max(rx, px), max(ry, py)
    x1, y1 = min(rx + rgba.shape[1], px + pw), min(ry + rgba.shape[0], py + ph)
    if x1 <= x0 or y1 <= y0:
        return out
    a_rgba = rgba[y0 - ry:y1 - ry, x0 - rx:x1 - rx]
    channels = base.shape[2]
    c = min(3, channels)
    h, w = y1 - y0, x1 - x0
    # every plate channel of the box, rows flattened: each operand below is then a (rows, w·C) array that numpy
    # runs in long vector loops, where (rows, w, 3)-shaped arithmetic runs three elements per inner loop
    flat = out[y0 - py:y1 - py, x0 - px:x1 - px].reshape(h, w * channels)

    def spread(values: Any, fill: Any) -> Any:
        """(rows, w[, c]) per-pixel or per-colour values → (rows, w·C), ``fill`` in the channels after RGB."""
        if values.ndim == 2 and c == channels:
            return np.repeat(values, channels, axis=1)
        wide = np.full((values.shape[0], w, channels), fill, values.dtype)
        wide[..., :c] = values[..., None] if values.ndim == 2 else values
        return wide.reshape(values.shape[0], w * channels)

    def band(rows: slice) -> None:
        src = _float32_if_half(a_rgba[rows])
        alpha = np.array(src[..., 3], dtype=np.float32)
        if mix != 1.0:
            alpha *= np.float32(mix)
        colour = src[..., :c] if mix == 1.0 else src[..., :c] * np.float32(mix)
        blended = flat[rows] * spread(np.float32(1.0) - alpha, 1.0)  # float32 (a half plate is promoted)
        blended += spread(colour, 0.0)
        np.copyto(flat[rows], blended, casting="unsafe", where=spread(alpha > 0, False))

    # numpy releases the GIL in these loops: a face box on a 2K/4K plate is blended in row bands on the
    # host's cores (Nuke's own Merge is multithreaded too); small boxes are not worth a thread
    workers = min(_COMPOSITE_THREADS, max(1, h * w * c // 250_000))
    if workers <= 1:
        band(slice(0, h))
    else:
        step = -(-h // workers)
        list(_pool().map(band, [slice(i, min(i + step, h)) for i in range(0, h, step)]))
    return out


_HALF_TO_FLOAT: Any = None


def _float32_if_half(values: Any) -> Any:
    """Native float16 → float32 through a 65536-entry table (numpy's own half cast is scalar and was the
    largest part of the host composite); the exact same values as ``astype``. Other dtypes pass through."""
    import numpy as np

    global _HALF_TO_FLOAT
    if values.dtype != np.float16 or values.strides[-1] != 2:
        return values
    if _HALF_TO_FLOAT is None:
        _HALF_TO_FLOAT = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
    return np.take(_HALF_TO_FLOAT, values.view(np.uint16), mode="clip")  # indices are all in range


_COMPOSITE_THREADS = max(1, min(4, os.cpu_count() or 1))
_POOL: Any = None


def _pool() -> Any:
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(_COMPOSITE_THREADS, thread_name_prefix="vq-composite")
    return _POOL


@dataclass
class Plate:
    """A plate frame as the node sees it: pixels over ``data_window`` inside ``display_window``.

    ``pixels`` keep their own dtype (float32 or float16), so a composite is written back in the plate's
    own pixel type; ``bit_depth`` is the file's sample type when the plate came from a file."""

    pixels: Any
    data_window: Window
    display_window: Window
    colorspace: str = "lin_rec709"
    bit_depth: str = ""

    @classmethod
    def wrap(cls, plate: Any) -> Plate:
        """Accept a Plate, an ImageData-like object, or a bare (H, W, C) array (window at 0, 0)."""
        import numpy as np

        if isinstance(plate, Plate):
            return plate
        if hasattr(plate, "pixels") and hasattr(plate, "data_window"):
            return cls(
                np.asarray(plate.pixels),
                tuple(plate.data_window),  # type: ignore[arg-type]
                tuple(getattr(plate, "display_window", plate.data_window)),  # type: ignore[arg-type]
                str(getattr(plate, "colorspace", "lin_rec709")),
                str(getattr(plate, "bit_depth", "") or ""),
            )
        arr = np.asarray(plate)
        if arr.dtype not in (np.float16, np.float32):
            arr = arr.astype(np.float32)
        if arr.ndim != 3 or arr.shape[2] < 3:
            raise InputError(f"plate: expected (H, W, 3 or 4) pixels, got shape {arr.shape}")
        h, w = arr.shape[:2]
        return cls(arr, (0, 0, w, h), (0, 0, w, h))


@dataclass
class PaintMatte:
    """The paint input at one frame: its alpha marks the label pixels that take ``paint_segment``.

    Either ``exr``, the bytes of an EXR file as a host wrote it (its alpha, or its only channel, is the
    matte and its data window places it; the Nuke gizmo sends its paint input this way, never touching
    the pixels), or ``matte``, an (h, w) array over ``window`` (x, y, w, h, plate display coordinates)."""

    exr: bytes | None = None
    matte: Any = None
    window: Window | None = None

    def to_field(self) -> dict[str, Any]:
        """The request's ``paint`` field (docs/protocol.md)."""
        if self.exr is not None:
            return {"exr": bytes(self.exr)}
        if self.matte is None or self.window is None:
            raise InputError("paint input: give the EXR bytes, or a matte with its window")
        import numpy as np

        from host_plugin.protocol import encode_array

        matte = np.asarray(self.matte)
        if matte.ndim == 3:
            matte = matte[..., -1]
        if matte.dtype not in (np.uint8, np.float16, np.float32):
            matte = matte.astype(np.float32)
        return {"matte": encode_array(matte), "window": [int(v) for v in self.window]}


@dataclass
class FrameResult:
    """What :meth:`EditNode.evaluate` returns: the composite plus the pieces a host may want as passes."""

    frame: int
    image: Any  # composite over the plate's data window, the plate's dtype (or the bare render)
    render: Any  # premultiplied RGBA over ``render_window`` as the server sent it (float16 for format "half")
    render_window: Window
    render_exr: bytes | None  # the exact EXR bytes from the server when the request asked for EXR
    changed: Any  # (L, L) bool: label-map pixels the edit changed or moved (what the render redrew)
    data_window: Window
    display_window: Window
    colorspace: str  # the plate's colour space as the server names it
    bit_depth: str = ""  # the plate's sample type, to write the composite in


@dataclass
class PassResult:
    """A pass as the server sent it: the EXR file's bytes (write them as they are) and what they cover."""

    frame: int
    name: str
    exr: bytes
    data_window: Window
    display_window: Window
    colorspace: str


@dataclass
class EditKnobs:
    """The node's whole state. ``edits`` travel as written (the edit format keyframes them itself);
    ``face``, ``segment_edits`` fields, ``feather`` and ``mix`` may be animated with :func:`value_at`'s
    ``{"keys": ...}`` form."""

    server: str = "tcp://127.0.0.1:5555"
    model: str = ""
    edits: list[dict[str, Any]] = field(default_factory=list)  # edit-program entries, with their own keys
    face: dict[str, Any] = field(default_factory=dict)  # FACE_KNOBS values (plain or {"keys": ...}), FILL_KNOBS text, FLAG_KNOBS flags
    segment_edits: list[dict[str, Any]] = field(default_factory=list)  # rows of SEGMENT_EDIT_FIELDS
    paint_segment: str = ""  # segment name (or code) the paint input's pixels take
    program_file: str = ""  # an edit-program JSON file whose edits come first
    feather: Any = 8.0
    mix: Any = 1.0
    mode: str = "identity"
    driver: str = DRIVER_KNOBS["driver"]  # expression transfer: the driver shot's name on the server (empty = none)
    driver_strength: Any = DRIVER_KNOBS["driver_strength"]  # 0-2, animatable
    driver_frame_offset: Any = DRIVER_KNOBS["driver_frame_offset"]  # driver frame = frame + offset, animatable
    timeout: float = 60.0
    retries: int = 2


class EditNode:
    """Host-agnostic node: knobs in, passes or composited frames out, rendering through a :class:`RenderClient`."""

    def __init__(self, knobs: EditKnobs | None = None, client: RenderClient | None = None, **client_kw: Any):
        self.knobs = knobs or EditKnobs()
        self._client = client
        self._client_kw = client_kw
        self._client_addr = client.address if client is not None else None
        self._program_cache: tuple[str, float, list[dict[str, Any]]] = ("", 0.0, [])

    @property
    def client(self) -> RenderClient:
        """The client for the current ``server`` knob (re-created when the knob changes)."""
        if self._client is None or self._client_addr != self.knobs.server:
            if self._client is not None:
                self._client.close()
            self._client = RenderClient(self.knobs.server, self.knobs.timeout, self.knobs.retries, **self._client_kw)
            self._client_addr = self.knobs.server
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # --- knob resolution -----------------------------------------------------------------------
    def _file_edits(self) -> list[dict[str, Any]]:
        path = str(self.knobs.program_file or "").strip()
        if not path:
            return []
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            mtime = -1.0
        if self._program_cache[:2] != (path, mtime):
            self._program_cache = (path, mtime, load_program_file(path))
        return copy.deepcopy(self._program_cache[2])

    def program_at(self, frame: int) -> dict[str, Any] | None:
        """The edit program for ``frame``: the program file's edits, the keyframed ``edits`` as written, the
        face knobs' and the segment-edit rows' values at ``frame`` (None when there is nothing to edit).
        Validated here when the edits module is present, so a typo fails in the host before any request;
        the server validates again against the model's own prior."""
        face = {k: value_at(v, frame) for k, v in self.knobs.face.items()}
        known = [*FACE_KNOBS, *FILL_KNOBS, *FLAG_KNOBS]
        unknown = sorted(set(face) - set(known))
        if unknown:
            raise InputError(f"face knobs: unknown {', '.join(unknown)} (known: {', '.join(known)})")
        edits = (self._file_edits() + [copy.deepcopy(e) for e in self.knobs.edits] + edits_from_face_knobs(face)
                 + edits_from_segment_rows(self.knobs.segment_edits, frame))
        if not edits:
            return None
        return {"version": 1, "edits": edits}

    def _checked(self, frame: int) -> tuple[float, float, str]:
        if not str(self.knobs.model or "").strip():
            raise InputError("model knob: no shot model chosen (press Connect and pick one, or type its name)")
        if self.knobs.mode not in RENDER_MODES:
            raise InputError(f"mode knob: {self.knobs.mode!r}, expected one of {', '.join(RENDER_MODES)}")
        try:
            feather = float(value_at(self.knobs.feather, frame))
            mix = float(value_at(self.knobs.mix, frame))
        except (TypeError, ValueError):
            raise InputError(f"feather/mix knobs at frame {frame}: expected numbers") from None
        if feather < 0 or not 0.0 <= mix <= 1.0:
            raise InputError(f"feather/mix knobs at frame {frame}: feather must be ≥ 0 and mix in 0-1")
        return feather, mix, self.knobs.mode

    def request_fields(self, frame: int, labels: Any = None, paint: PaintMatte | None = None,
                       pass_name: str = "render", fmt: str = "exr") -> dict[str, Any]:
        """The fields of the ``render`` request for ``frame`` (docs/protocol.md): what the node sends, and
        what a host hashes to know whether a frame must be rendered again."""
        feather, _mix, mode = self._checked(frame)
        if pass_name not in PASSES:
            raise InputError(f"pass {pass_name!r}: expected one of {', '.join(PASSES)}")
        shm = fmt != "exr" and self.client.same_host
        fields = RenderClient.render_fields(self.knobs.model, frame, self.program_at(frame), feather, mode, labels, fmt, shm)
        if pass_name != "render":
            fields["pass"] = pass_name
        fields.update(driver_fields(self.knobs.driver, self.knobs.driver_strength, self.knobs.driver_frame_offset, frame))
        if paint is not None:
            segment = str(self.knobs.paint_segment or "").strip()
            if not segment:
                raise InputError("paint_segment knob: the paint input is connected; name the segment (or code) it paints")
            fields["paint"] = paint.to_field()
            fields["paint_segment"] = int(segment) if segment.isdigit() else segment
        return fields

    # --- passes as files (Nuke) ----------------------------------------------------------------
    def fetch_pass(self, frame: int, pass_name: str = "render", paint: PaintMatte | None = None,
                   fields: dict[str, Any] | None = None) -> PassResult:
        """One pass of ``frame`` as the server's EXR bytes, untouched (a host writes them to disk as they
        are and reads them natively). ``fields`` may be given when the caller already built them."""
        fields = fields if fields is not None else self.request_fields(frame, paint=paint, pass_name=pass_name)
        reply = self.client.request("render", **fields)
        return _pass_result(frame, pass_name, reply)

    def fetch_passes(self, requests: Sequence[tuple[int, str, dict[str, Any]]], in_flight: int = 4) -> Iterator[PassResult]:
        """:meth:`fetch_pass` for many (frame, pass, fields) at once, ``in_flight`` on the wire."""
        replies = self.client.pipeline((("render", f) for _, _, f in requests), in_flight)
        for (frame, name, _), reply in zip(requests, replies):
            yield _pass_result(frame, name, reply)

    # --- evaluation (pixels through Python) ---------------------------------------------------
    def _finish(self, frame: int, reply: dict[str, Any], plate: Any) -> FrameResult:
        from host_plugin.protocol import decode_array

        exr = None
        if reply.get("exr") is not None:
            exr = bytes(reply["exr"])
            try:
                from vq_models.io.images import decode_image_bytes
            except ImportError:
                raise InputError("EXR replies need the full vqedit environment (OpenImageIO); "
                                 "ask for format 'half' on a thin host") from None
            img = decode_image_bytes(exr)
            rgba, rwin = img.pixels, tuple(int(v) for v in img.data_window)
        else:
            rgba = decode_array(reply["rgba"], "rgba", shm=True)  # float16 stays float16 until the composite
            rwin = tuple(int(v) for v in reply["data_window"])
        changed = decode_array(reply["changed"], "changed").astype(bool)
        mix = float(value_at(self.knobs.mix, frame))
        disp = tuple(int(v) for v in reply.get("display_window", rwin))
        if plate is None:
            return FrameResult(frame, rgba, rgba, rwin, exr, changed, rwin, disp, str(reply.get("colorspace", "")))  # type: ignore[arg-type]
        p = Plate.wrap(plate)
        image = composite_over(rgba, rwin, p.pixels, p.data_window, mix)  # type: ignore[arg-type]
        return FrameResult(frame, image, rgba, rwin, exr, changed, p.data_window, p.display_window,  # type: ignore[arg-type]
                           str(reply.get("colorspace", "")) or p.colorspace, p.bit_depth)

    def evaluate(self, frame: int, plate: Any, labels: Any = None, paint: PaintMatte | None = None,
                 fmt: str = "half") -> FrameResult:
        """Render ``frame`` through the server and composite it over ``plate`` (None: the bare render).
        ``fmt`` ``half`` (default) needs only numpy; ``exr`` also keeps the server's EXR bytes."""
        reply = self.client.request("render", **self.request_fields(frame, labels, paint, fmt=fmt))
        return self._finish(frame, reply, plate)

    def evaluate_many(self, frames: Sequence[int], plates: Iterable[Any] | None = None, in_flight: int = 4,
                      fmt: str = "half", paints: Iterable[PaintMatte | None] | None = None) -> Iterator[FrameResult]:
        """Like :meth:`evaluate` for a frame range, with ``in_flight`` requests on the wire at once."""
        paint_list = list(paints) if paints is not None else [None] * len(frames)
        requests = [("render", self.request_fields(f, paint=p, fmt=fmt)) for f, p in zip(frames, paint_list)]
        plate_iter = iter(plates) if plates is not None else None
        for frame, reply in zip(frames, self.client.pipeline(requests, in_flight)):
            yield self._finish(frame, reply, next(plate_iter) if plate_iter is not None else None)


def _pass_result(frame: int, name: str, reply: dict[str, Any]) -> PassResult:
    exr = reply.get("exr")
    if not isinstance(exr, bytes) or not exr:
        raise InputError(f"frame {frame}: the server sent no EXR for the {name} pass")
    return PassResult(frame, name, exr, tuple(reply.get("data_window") or (0, 0, 0, 0)),  # type: ignore[arg-type]
                      tuple(reply.get("display_window") or (0, 0, 0, 0)), str(reply.get("colorspace", "")))  # type: ignore[arg-type]
