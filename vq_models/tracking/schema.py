"""The tracking file: per-frame landmarks5, named contours and an optional mesh, in plate pixels.

Format (version 1, see docs/tracking.md)::

    {"version": 1, "image_size": [w, h],
     "frames": {"1001": {"landmarks5": [[x, y] x 5],
                         "contours": {"face_oval": [[x, y], ...], ...},   # optional
                         "mesh": [[x, y, z], ...]}}}                       # optional

Coordinates are plate pixels with the centre of the top-left pixel at (0, 0), x right, y down.
Validation is strict and reports the JSON path of the *first* problem, because a tracking file is often
hand-edited or produced by a third-party tracker, and "landmarks5[2] is not a number" is something a
compositor can fix, whereas a numpy traceback three stages later is not.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vq_models.errors import InputError
from vq_models.io.atomic import atomic_write_json
from vq_models.io.jsonfile import read_json

TRACKING_VERSION = 1

#: Contour names accepted in ``contours`` (left = the image's left).
CONTOUR_NAMES: tuple[str, ...] = (
    "face_oval",
    "left_brow",
    "right_brow",
    "left_eye",
    "right_eye",
    "left_iris",
    "right_iris",
    "nose",
    "lips_outer",
    "lips_inner",
)

#: Order of the five landmarks (image order, left = the image's left).
LANDMARKS5_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose_tip", "left_mouth", "right_mouth")

_FRAME_KEYS = ("landmarks5", "contours", "mesh")
_TOP_KEYS = ("version", "image_size", "frames", "meta")
_INT_KEY = re.compile(r"-?[0-9]+")


@dataclass
class FrameTrack:
    """One frame's tracking: ``landmarks5`` (5, 2), named closed ``contours`` (N, 2), optional ``mesh``."""

    landmarks5: np.ndarray
    contours: dict[str, np.ndarray] = field(default_factory=dict)
    mesh: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.landmarks5 = np.asarray(self.landmarks5, dtype=np.float64).reshape(5, 2)
        self.contours = {k: np.asarray(v, dtype=np.float64).reshape(-1, 2) for k, v in self.contours.items()}
        if self.mesh is not None:
            self.mesh = np.asarray(self.mesh, dtype=np.float64).reshape(-1, 3)


@dataclass
class Tracking:
    """A whole shot's tracking; ``image_size`` is ``(width, height)`` of the plate."""

    image_size: tuple[int, int]
    frames: dict[int, FrameTrack]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def frame_numbers(self) -> list[int]:
        return sorted(self.frames)

    def __getitem__(self, frame: int) -> FrameTrack:
        return self.frames[frame]


# --- validation --------------------------------------------------------------------------------------


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _points(value: Any, dims: int, where: str, min_count: int, exact: int | None = None) -> np.ndarray:
    """Validate a list of ``dims``-number points; returns float64 (N, dims). Fast path via numpy, slow
    path only to name the first bad element."""
    what = "[x, y]" if dims == 2 else "[x, y, z]"
    if not isinstance(value, list):
        raise InputError(f"{where}: expected a list of {what} points")
    if exact is not None and len(value) != exact:
        raise InputError(f"{where}: expected {exact} {what} points, got {len(value)}")
    if len(value) < min_count:
        raise InputError(f"{where}: expected at least {min_count} {what} points, got {len(value)}")
    for i, p in enumerate(value):
        if (
            not isinstance(p, list)
            or len(p) != dims
            or not all(_is_number(c) for c in p)
            or not all(math.isfinite(c) for c in p)
        ):
            raise InputError(f"{where}[{i}]: expected {what} numbers")
    return np.asarray(value, dtype=np.float64).reshape(-1, dims)


def _frame(value: Any, where: str) -> FrameTrack:
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected an object with landmarks5")
    for key in value:
        if key not in _FRAME_KEYS:
            raise InputError(f"{where}.{key}: unknown key (known: {', '.join(_FRAME_KEYS)})")
    if "landmarks5" not in value:
        raise InputError(f"{where}: missing key 'landmarks5'")
    lm = _points(value["landmarks5"], 2, f"{where}.landmarks5", 5, exact=5)
    contours: dict[str, np.ndarray] = {}
    raw_contours = value.get("contours")
    if raw_contours is not None:
        if not isinstance(raw_contours, dict):
            raise InputError(f"{where}.contours: expected an object of named polygons")
        for name, poly in raw_contours.items():
            if name not in CONTOUR_NAMES:
                raise InputError(
                    f"{where}.contours.{name}: unknown contour (known: {', '.join(CONTOUR_NAMES)})"
                )
            contours[name] = _points(poly, 2, f"{where}.contours.{name}", 3)
    mesh = None
    if value.get("mesh") is not None:
        mesh = _points(value["mesh"], 3, f"{where}.mesh", 1)
    return FrameTrack(lm, contours, mesh)


def validate_tracking(obj: Any, source: str) -> Tracking:
    """Check a parsed tracking JSON object and build a :class:`Tracking`.

    Raises :class:`InputError` naming ``source`` and the JSON path of the first problem, e.g.
    ``tracking.json: frames["1001"].landmarks5[2]: expected [x, y] numbers``.
    """
    if not isinstance(obj, dict):
        raise InputError(f"{source}: expected a JSON object at the top level")
    for key in obj:
        if key not in _TOP_KEYS:
            raise InputError(f"{source}: {key}: unknown key (known: {', '.join(_TOP_KEYS)})")
    for key in ("version", "image_size", "frames"):
        if key not in obj:
            raise InputError(f"{source}: missing key {key!r}")
    version = obj["version"]
    if version != TRACKING_VERSION or isinstance(version, bool):
        raise InputError(f"{source}: version: expected {TRACKING_VERSION}, got {version!r}")
    size = obj["image_size"]
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    ):
        raise InputError(f"{source}: image_size: expected [width, height] positive integers")
    meta = obj.get("meta", {})
    if not isinstance(meta, dict):
        raise InputError(f"{source}: meta: expected an object")
    frames_raw = obj["frames"]
    if not isinstance(frames_raw, dict):
        raise InputError(f"{source}: frames: expected an object keyed by frame number")
    frames: dict[int, FrameTrack] = {}
    for key, value in frames_raw.items():
        where = f'frames["{key}"]'
        if not isinstance(key, str) or not _INT_KEY.fullmatch(key):
            raise InputError(f"{source}: {where}: frame key is not an integer")
        number = int(key)
        if number in frames:
            raise InputError(f"{source}: {where}: frame {number} appears twice")
        try:
            frames[number] = _frame(value, where)
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from None
    return Tracking((int(size[0]), int(size[1])), dict(sorted(frames.items())), dict(meta))


def load_tracking(path: str | Path) -> Tracking:
    """Read and validate a tracking file."""
    path = Path(path)
    obj = read_json(path, "tracking file not found")
    return validate_tracking(obj, str(path))


# --- writing -----------------------------------------------------------------------------------------


def _round(a: np.ndarray, ndigits: int = 3) -> list[Any]:
    """Plain nested lists with coordinates rounded to 1/1000 px: exact enough, and files stay small."""
    return np.round(np.asarray(a, dtype=np.float64), ndigits).tolist()


def tracking_to_json(tracking: Tracking) -> dict[str, Any]:
    """The JSON-ready dict for ``tracking`` (validated on the way out, so we never write a bad file)."""
    frames: dict[str, Any] = {}
    for number in tracking.frame_numbers:
        ft = tracking.frames[number]
        entry: dict[str, Any] = {"landmarks5": _round(ft.landmarks5)}
        if ft.contours:
            entry["contours"] = {name: _round(poly) for name, poly in ft.contours.items()}
        if ft.mesh is not None:
            entry["mesh"] = _round(ft.mesh)
        frames[str(int(number))] = entry
    out: dict[str, Any] = {
        "version": TRACKING_VERSION,
        "image_size": [int(tracking.image_size[0]), int(tracking.image_size[1])],
        "frames": frames,
    }
    if tracking.meta:
        out["meta"] = tracking.meta
    validate_tracking(out, "tracking (in memory)")
    return out


def save_tracking(tracking: Tracking, path: str | Path) -> None:
    """Write ``tracking`` as JSON, atomically."""
    atomic_write_json(Path(path), tracking_to_json(tracking), indent=None)
