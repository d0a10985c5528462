"""The node's knob vocabulary: which knobs exist (face knobs, teeth fill, segment-edit rows), how animated
values resolve at a frame, and how knob values become edit-program entries. One table for the Nuke gizmo, the
OpenFX plug-in (its parameter table is generated from it) and the farm. Pure Python: a host's own Python runs it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from host_plugin.errors import InputError
from host_plugin.keys import INTERPOLATIONS, interpolate

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
# Checkboxes that turn on a true/false field of an op's edits (docs/edits.md): knob → (op, field). The pulls
# move the frame's own part instead of drawing it (the lids for eye_open, the lower lip and chin for
# mouth_open); off by default because a pull moves whatever lies on the part's edge with it (a glasses rim on the
# lid line). gaze_borrow takes the eye of a frame of the shot that looks there, mouth_borrow (opening) the mouth of
# one that opens that wide; off by default because a keyed gaze or opening then jumps between frames' parts. They
# send nothing on their own.
FLAG_KNOBS: dict[str, tuple[str, str]] = {
    "pull_lids": ("eye_open", "pull"), "pull_lip": ("mouth_open", "pull"), "mouth_borrow": ("mouth_open", "borrow"),
    "gaze_borrow": ("gaze", "borrow"),
}

# One row of the segment-edit table: the fields and their neutral values (a row at its neutral values, or
# with no segment, sends nothing). translate is in label-map pixels, scale about the segment's centre,
# dilate a radius in label-map pixels, replace_with a segment name or a code (digits).
SEGMENT_EDIT_FIELDS: dict[str, Any] = {
    "segment": "", "translate_x": 0.0, "translate_y": 0.0, "scale": 1.0, "dilate": 0.0, "replace_with": "",
}
SEGMENT_EDIT_ROWS = 4  # rows the Nuke gizmo and the OFX plug-in show

# Expression transfer (docs/protocol.md, render ``driver`` fields): the driver shot's name on the server (empty =
# no transfer), how much of its expression (0 = the shot as it is, 1 = the driver's; animatable) and which of its
# frames each shot frame shows (driver frame = frame + offset; animatable, so a performance can be slipped or
# held with keys). With each knob's neutral value.
DRIVER_KNOBS: dict[str, Any] = {"driver": "", "driver_strength": 1.0, "driver_frame_offset": 0.0}
MAX_DRIVER_STRENGTH = 2.0  # above 1 exaggerates the driver's expression


# --- animation ------------------------------------------------------------------------------------
def value_at(value: Any, frame: float) -> Any:
    """Resolve an animatable value: a plain value, or ``{"keys": [[frame, value], ...]}`` with an optional
    ``"interp"`` (step, linear (default) or smooth: :func:`host_plugin.keys.interpolate`, the edit
    programs' own rule). Nested maps/lists are resolved recursively so whole edits can animate."""
    if isinstance(value, Mapping):
        if "keys" in value and set(value) <= {"keys", "interp"}:
            try:
                keys = sorted((float(f), float(v)) for f, v in value["keys"])
            except (TypeError, ValueError):
                raise InputError(f"animated value: expected keys [[frame, number], ...], got {value['keys']!r:.80}") from None
            if not keys:
                raise InputError("animated value: 'keys' is empty")
            interp = value.get("interp", "linear")
            if interp not in INTERPOLATIONS:
                raise InputError(f"animated value: interp {interp!r}, expected one of {', '.join(INTERPOLATIONS)}")
            return float(interpolate(keys, float(frame), interp))
        return {k: value_at(v, frame) for k, v in value.items()}
    if isinstance(value, list):
        return [value_at(v, frame) for v in value]
    return value


def _ref(text: Any) -> Any:
    """A segment name, or a code typed as digits → int."""
    text = str(text or "").strip()
    return int(text) if text.isdigit() else text


def teeth_fill_from_knobs(values: Mapping[str, Any]) -> dict[str, Any]:
    """The teeth edit's per-row ``fill`` from :data:`FILL_KNOBS` (rows left empty are left out)."""
    fill: dict[str, Any] = {}
    for knob, row in FILL_KNOBS.items():
        if str(values.get(knob, "") or "").strip():
            fill[row] = _ref(values[knob])
    return fill


def knob_flag(name: str, value: Any) -> bool:
    """A checkbox knob's value as hosts send it (Nuke a bool, OFX an int, a JSON file true/1/"on") → bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "on", "yes"):
        return True
    if text in ("0", "false", "off", "no", ""):
        return False
    raise InputError(f"{name} knob: {value!r:.40}, expected on or off (1/0, true/false)")


def flagged_fields(values: Mapping[str, Any]) -> dict[str, dict[str, bool]]:
    """Per op, the edit fields its :data:`FLAG_KNOBS` checkboxes turn on (``{"eye_open": {"pull": True}}``)."""
    out: dict[str, dict[str, bool]] = {}
    for knob, (op, name) in FLAG_KNOBS.items():
        if knob_flag(knob, values.get(knob, False)):
            out.setdefault(op, {})[name] = True
    return out


def edits_from_face_knobs(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Gizmo knob values at one frame → edit entries with a constant ``value`` (neutral knobs add none).

    ``gaze_x``/``gaze_y`` become one ``gaze`` edit with value ``[x, y]``; the teeth fill knobs become the
    teeth edit's ``fill``; a :data:`FLAG_KNOBS` checkbox adds its field (``"pull": true``) to its op's edits.
    """
    edits: list[dict[str, Any]] = []
    flags = flagged_fields(values)
    for knob, (template, neutral) in FACE_KNOBS.items():
        if knob.startswith("gaze"):
            continue
        amount = float(values.get(knob, neutral))
        if amount != neutral:
            edits.append({**template, "value": amount})
            fill = teeth_fill_from_knobs(values) if template["op"] == "teeth" else {}
            if fill:
                edits[-1]["fill"] = fill
            edits[-1].update(flags.get(template["op"], {}))
    gx, gy = float(values.get("gaze_x", 0.0)), float(values.get("gaze_y", 0.0))
    if gx or gy:
        edits.append({**FACE_KNOBS["gaze_x"][0], "value": [gx, gy], **flags.get("gaze", {})})
    return edits


def edits_from_segment_rows(rows: Sequence[Mapping[str, Any]], frame: float) -> list[dict[str, Any]]:
    """Segment-edit table rows at ``frame`` → low-level edit entries (docs/edits.md), in this order per
    row: ``translate`` [x, y], ``scale``, ``dilate``, then ``replace`` (so a row can move a segment and
    still recolour it). Rows without a segment, and fields at their neutral values, send nothing."""
    edits: list[dict[str, Any]] = []
    for i, raw in enumerate(rows):
        unknown = sorted(set(raw) - set(SEGMENT_EDIT_FIELDS))
        if unknown:
            raise InputError(f"segment edit row {i + 1}: unknown field(s) {', '.join(unknown)} "
                             f"(known: {', '.join(SEGMENT_EDIT_FIELDS)})")
        row = {k: value_at(raw.get(k, d), frame) for k, d in SEGMENT_EDIT_FIELDS.items()}
        segment = _ref(row["segment"])
        if segment == "":
            continue
        target = {"code": segment} if isinstance(segment, int) else {"segment": segment}
        try:
            tx, ty = float(row["translate_x"]), float(row["translate_y"])
            sc, dl = float(row["scale"]), float(row["dilate"])
        except (TypeError, ValueError):
            raise InputError(f"segment edit row {i + 1}: translate, scale and dilate must be numbers") from None
        if tx or ty:
            edits.append({"op": "translate", **target, "value": [tx, ty]})
        if sc != 1.0:
            edits.append({"op": "scale", **target, "value": sc})
        if dl:
            edits.append({"op": "dilate", **target, "value": dl})
        to = _ref(row["replace_with"])
        if to != "":
            edits.append({"op": "replace", **target, "to": to, "value": 1.0})
    return edits


def driver_fields(driver: Any, strength: Any, offset: Any, frame: float) -> dict[str, Any]:
    """The driver knobs at ``frame`` → the render request's ``driver``, ``driver_frame`` and
    ``driver_strength`` fields ({} when no driver is named)."""
    name = str(driver or "").strip()
    if not name:
        return {}
    try:
        s = float(value_at(strength, frame))
        d = float(value_at(offset, frame))
    except (TypeError, ValueError):
        raise InputError(f"driver_strength/driver_frame_offset knobs at frame {frame}: expected numbers") from None
    if not 0.0 <= s <= MAX_DRIVER_STRENGTH:
        raise InputError(f"driver_strength knob at frame {frame}: {s:g}, expected 0-{MAX_DRIVER_STRENGTH:g}")
    return {"driver": name, "driver_frame": int(round(float(frame) + d)), "driver_strength": s}


def load_program_file(path: str) -> list[dict[str, Any]]:
    """The ``edits`` of an edit-program JSON file (docs/edits.md), e.g. one written by another tool."""
    try:
        with open(path, encoding="utf-8") as fh:
            obj = json.load(fh)
    except FileNotFoundError:
        raise InputError(f"edit program file {path}: not found") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"edit program file {path}: cannot read it ({str(exc).splitlines()[0]})") from None
    if not isinstance(obj, dict) or obj.get("version") != 1 or not isinstance(obj.get("edits"), list):
        raise InputError(f"edit program file {path}: expected {{\"version\": 1, \"edits\": [...]}}")
    return list(obj["edits"])
