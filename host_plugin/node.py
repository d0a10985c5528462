"""EditNode: the host-agnostic core of the compositing node.

Everything a host plugin does lives here so it can be tested without the host: the node's state is
its knob set (server address, shot model, edit keyframes, feather, mix, mode); :meth:`EditNode.evaluate`
resolves the animated knobs at a frame, asks the render server for that frame, and composites the
premultiplied render over the plate. Host adapters (``host_plugin/nuke``, ``host_plugin/ofx``) only
copy knob values in and pixels out. No host module is imported here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from host_plugin.client import RenderClient
from render_server.protocol import decode_array
from vq_models.errors import InputError
from vq_models.io.images import ImageData, decode_image_bytes

Window = tuple[int, int, int, int]
MODES = ("identity", "edit-only")

# The gizmo's per-edit knobs → edit-program ops (docs/edits.md), with each knob's neutral value (no edit
# is sent while a knob sits there). One table, so the Nuke gizmo, the OFX bridge and the farm agree.
FACE_KNOBS: dict[str, tuple[dict[str, Any], float]] = {
    "eye_open_left": ({"op": "eye_open", "eye": "left"}, 1.0),
    "eye_open_right": ({"op": "eye_open", "eye": "right"}, 1.0),
    "gaze_x": ({"op": "gaze", "eye": "both"}, 0.0),
    "gaze_y": ({"op": "gaze", "eye": "both"}, 0.0),
    "teeth": ({"op": "teeth", "which": "both"}, 1.0),
    "mouth_open": ({"op": "mouth_open"}, 1.0),
    "brows": ({"op": "brows", "mode": "raise", "side": "both"}, 0.0),
}
# Text knobs that refine the teeth edit: the segment name or code the pixels freed by removing each row of
# teeth take (empty = the prior's default). A code is typed as digits. They send nothing on their own.
FILL_KNOBS: dict[str, str] = {"teeth_fill_upper": "upper", "teeth_fill_lower": "lower"}


# --- animation ------------------------------------------------------------------------------------
def value_at(value: Any, frame: float) -> Any:
    """Resolve an animatable value: a plain value, or ``{"keys": [[frame, value], ...]}`` (linear, held
    outside the keyed range). Nested maps/lists are resolved recursively so whole edits can animate."""
    if isinstance(value, Mapping):
        if set(value) == {"keys"}:
            keys = sorted((float(f), float(v)) for f, v in value["keys"])
            if not keys:
                raise InputError("animated value: 'keys' is empty")
            fs = np.array([k[0] for k in keys])
            vs = np.array([k[1] for k in keys])
            return float(np.interp(float(frame), fs, vs))
        return {k: value_at(v, frame) for k, v in value.items()}
    if isinstance(value, list):
        return [value_at(v, frame) for v in value]
    return value


def teeth_fill_from_knobs(values: Mapping[str, Any]) -> dict[str, str | int]:
    """The teeth edit's per-row ``fill`` from :data:`FILL_KNOBS` (rows left empty are left out)."""
    fill: dict[str, str | int] = {}
    for knob, row in FILL_KNOBS.items():
        text = str(values.get(knob, "") or "").strip()
        if text:
            fill[row] = int(text) if text.isdigit() else text
    return fill


def edits_from_face_knobs(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Gizmo knob values at one frame → edit entries with a constant ``value`` (neutral knobs add none).

    ``gaze_x``/``gaze_y`` become one ``gaze`` edit with value ``[x, y]``; the teeth fill knobs become the
    teeth edit's ``fill``.
    """
    edits: list[dict[str, Any]] = []
    for knob, (template, neutral) in FACE_KNOBS.items():
        if knob.startswith("gaze"):
            continue
        amount = float(values.get(knob, neutral))
        if amount != neutral:
            edits.append({**template, "value": amount})
            if template["op"] == "teeth" and (fill := teeth_fill_from_knobs(values)):
                edits[-1]["fill"] = fill
    gx, gy = float(values.get("gaze_x", 0.0)), float(values.get("gaze_y", 0.0))
    if gx or gy:
        edits.append({**FACE_KNOBS["gaze_x"][0], "value": [gx, gy]})
    return edits


# --- compositing ----------------------------------------------------------------------------------
def composite_over(
    render_rgba: np.ndarray,
    render_window: Window,
    plate: np.ndarray,
    plate_window: Window,
    mix: float = 1.0,
) -> np.ndarray:
    """Premultiplied ``render_rgba`` over ``plate`` (each over its own data window, display coordinates).

    A thin host-side wrapper around :func:`vq_models.composite.composite_image` (through
    :func:`vq_models.runtime.composite_in_box`: one compositing rule for the CLI, the server and every
    host): ``mix`` scales the render's alpha, the render is un-premultiplied and blended in. Returns pixels over the plate's data window; where the mixed alpha is 0 the plate comes
    back bit for bit, and channels after RGB (the plate's own alpha) are always the plate's.
    """
    from vq_models.runtime import composite_in_box

    base = np.asarray(plate, dtype=np.float32)
    rgba = np.asarray(render_rgba, dtype=np.float32)
    ys, xs = np.nonzero(rgba[..., 3] > 0)
    if mix <= 0.0 or not ys.size:
        return base.copy()
    # un-premultiply only the render's bounding box (a face is a small part of a 2K/4K frame)
    rgba = rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    render_window = (render_window[0] + int(xs.min()), render_window[1] + int(ys.min()), rgba.shape[1], rgba.shape[0])
    alpha = rgba[..., 3] * np.float32(min(float(mix), 1.0))
    safe = np.where(rgba[..., 3] > 0, rgba[..., 3], 1.0)[..., None]
    rgb = np.where(rgba[..., 3:4] > 0, rgba[..., :3] / safe, 0.0).astype(np.float32)
    window = tuple(int(v) for v in plate_window)
    return composite_in_box(rgb, alpha, render_window, ImageData(base, data_window=window, display_window=window)).pixels


@dataclass
class Plate:
    """A plate frame as the node sees it: pixels over ``data_window`` inside ``display_window``."""

    pixels: np.ndarray
    data_window: Window
    display_window: Window
    colorspace: str = "lin_rec709"

    @classmethod
    def wrap(cls, plate: Any) -> Plate:
        """Accept a Plate, an ImageData-like object, or a bare (H, W, C) array (window at 0, 0)."""
        if isinstance(plate, Plate):
            return plate
        if hasattr(plate, "pixels") and hasattr(plate, "data_window"):
            return cls(
                np.asarray(plate.pixels, dtype=np.float32),
                tuple(plate.data_window),  # type: ignore[arg-type]
                tuple(getattr(plate, "display_window", plate.data_window)),  # type: ignore[arg-type]
                str(getattr(plate, "colorspace", "lin_rec709")),
            )
        arr = np.asarray(plate, dtype=np.float32)
        if arr.ndim != 3 or arr.shape[2] < 3:
            raise InputError(f"plate: expected (H, W, 3 or 4) pixels, got shape {arr.shape}")
        h, w = arr.shape[:2]
        return cls(arr, (0, 0, w, h), (0, 0, w, h))


@dataclass
class FrameResult:
    """What :meth:`EditNode.evaluate` returns: the composite plus the pieces a host may want as passes."""

    frame: int
    image: np.ndarray  # composite over the plate's data window
    render: ImageData  # premultiplied RGBA in plate space, as the server sent it (decoded)
    render_exr: bytes  # the exact EXR bytes from the server (write as-is for a "render" pass)
    changed: np.ndarray  # (L, L) bool: label-map pixels the edit changed
    data_window: Window
    display_window: Window
    colorspace: str  # the plate's colour space as the server names it


@dataclass
class EditKnobs:
    """The node's whole state. ``edits`` travel as written (the edit format keyframes them itself);
    ``face``, ``feather`` and ``mix`` may be animated with :func:`value_at`'s ``{"keys": ...}`` form."""

    server: str = "tcp://127.0.0.1:5555"
    model: str = ""
    edits: list[dict[str, Any]] = field(default_factory=list)  # edit-program entries, with their own keys
    face: dict[str, Any] = field(default_factory=dict)  # FACE_KNOBS values (plain or {"keys": ...}), FILL_KNOBS text
    feather: Any = 8.0
    mix: Any = 1.0
    mode: str = "identity"
    timeout: float = 60.0
    retries: int = 2


class EditNode:
    """Host-agnostic node: knobs in, composited frames out, rendering through a :class:`RenderClient`."""

    def __init__(self, knobs: EditKnobs | None = None, client: RenderClient | None = None, **client_kw: Any):
        self.knobs = knobs or EditKnobs()
        self._client = client
        self._client_kw = client_kw
        self._client_addr = client.address if client is not None else None

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
    def program_at(self, frame: int) -> dict[str, Any] | None:
        """The edit program for ``frame``: the keyframed ``edits`` as written plus the face knobs' values at
        ``frame`` (None when there is nothing to edit). Validated here when the edits module is present,
        so a typo fails in the host before any request."""
        face = {k: value_at(v, frame) for k, v in self.knobs.face.items()}
        known = [*FACE_KNOBS, *FILL_KNOBS]
        unknown = sorted(set(face) - set(known))
        if unknown:
            raise InputError(f"face knobs: unknown {', '.join(unknown)} (known: {', '.join(known)})")
        edits = [copy.deepcopy(e) for e in self.knobs.edits] + edits_from_face_knobs(face)
        if not edits:
            return None
        program = {"version": 1, "edits": edits}
        try:
            from vq_models.edits.program import parse_program
        except ImportError:
            return program
        parse_program(program)
        return program

    def _checked(self, frame: int) -> tuple[float, float, str]:
        if not self.knobs.model:
            raise InputError("model knob: no shot model chosen (pick one after Connect)")
        if self.knobs.mode not in MODES:
            raise InputError(f"mode knob: {self.knobs.mode!r}, expected one of {', '.join(MODES)}")
        feather = float(value_at(self.knobs.feather, frame))
        mix = float(value_at(self.knobs.mix, frame))
        if feather < 0 or not 0.0 <= mix <= 1.0:
            raise InputError(f"feather/mix knobs at frame {frame}: feather must be ≥ 0 and mix in 0-1")
        return feather, mix, self.knobs.mode

    def request_fields(self, frame: int, labels: np.ndarray | None = None) -> dict[str, Any]:
        feather, _mix, mode = self._checked(frame)
        return RenderClient.render_fields(self.knobs.model, frame, self.program_at(frame), feather, mode, labels)

    # --- evaluation ----------------------------------------------------------------------------
    def _finish(self, frame: int, reply: dict[str, Any], plate: Any) -> FrameResult:
        render = decode_image_bytes(reply["exr"])
        changed = decode_array(reply["changed"], "changed").astype(bool)
        mix = float(value_at(self.knobs.mix, frame))
        if plate is None:
            image = render.pixels
            dw, disp = render.data_window, render.display_window
        else:
            p = Plate.wrap(plate)
            image = composite_over(render.pixels, render.data_window, p.pixels, p.data_window, mix)
            dw, disp = p.data_window, p.display_window
        return FrameResult(frame, image, render, bytes(reply["exr"]), changed, dw, disp, str(reply.get("colorspace", "")))

    def evaluate(self, frame: int, plate: Any, labels: np.ndarray | None = None) -> FrameResult:
        """Render ``frame`` through the server and composite it over ``plate`` (None: the bare render)."""
        reply = self.client.request("render", **self.request_fields(frame, labels))
        return self._finish(frame, reply, plate)

    def evaluate_many(self, frames: Sequence[int], plates: Iterable[Any] | None = None, in_flight: int = 4) -> Iterator[FrameResult]:
        """Like :meth:`evaluate` for a frame range, with ``in_flight`` requests on the wire at once."""
        requests = (("render", self.request_fields(f)) for f in frames)
        plate_iter = iter(plates) if plates is not None else None
        for frame, reply in zip(frames, self.client.pipeline(requests, in_flight), strict=True):
            yield self._finish(frame, reply, next(plate_iter) if plate_iter is not None else None)
