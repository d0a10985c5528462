"""The demo's keyframed edit program.

Which high-level operations work depends on the artist prior Stage I made possible: at tiny sizes the
auto prior may find only ``skin`` and ``background``. Rather than fail, the demo *tries* each operation on
real frames of the shot (:func:`vq_models.evaluation.programs.usable_ops`) and, for eye closure, falls back to
painting the tracked eye contours with skin (the label-level meaning of "eye closed"), one keyed paint per
frame. What was used is recorded, so the metrics say which program they measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vq_models.evaluation.programs import ShotFacts, paint_eyes_closed


def _at(frames: Sequence[int], fraction: float) -> int:
    return int(frames[int(round(fraction * (len(frames) - 1)))])


def eye_keys(frames: Sequence[int]) -> list[list[Any]]:
    """Eyes close and reopen over the first half of the shot (about 20 frames in the 48-frame demo)."""
    return [[_at(frames, 0.05), 1.0], [_at(frames, 0.2), 0.0], [_at(frames, 0.35), 0.0], [_at(frames, 0.5), 1.0]]


def _keys_value(keys: list[list[Any]], frame: int) -> float:
    """Linear value of scalar ``keys`` at ``frame`` (only used to decide the paint fallback's on/off)."""
    xs = [k[0] for k in keys]
    ys = [float(k[1]) for k in keys]
    return float(np.interp(frame, xs, ys))


def demo_program(facts: ShotFacts) -> tuple[dict[str, Any], list[str]]:
    """The demo's keyframed program and one note per choice (used op, fallback or skip).

    Eyes close and reopen; the gaze drifts left and back; the teeth go for a stretch; the mouth opens
    wider and settles. Keys are placed at fractions of the shot so any length works.
    """
    frames = facts.frames
    edits: list[dict[str, Any]] = []
    notes: list[str] = []
    keys = eye_keys(frames)
    if facts.usable.get("eye_open") == "ok":
        edits.append({"op": "eye_open", "eye": "both", "keys": keys, "interp": "smooth"})
        notes.append("eye_open: eyes close and reopen")
    elif facts.skin:
        shut = [f for f in frames if _keys_value(keys, f) < 0.5]
        edits += paint_eyes_closed(facts, shut)
        notes.append(f"eye_open unavailable ({facts.usable.get('eye_open')}); painting skin over the tracked eyes "
                     f"on {len(shut)} frames instead")
    else:
        notes.append(f"eyes: skipped ({facts.usable.get('eye_open')}; no skin segment for the fallback)")
    optional = (
        ("gaze", {"op": "gaze", "eye": "both", "interp": "linear", "keys": [
            [_at(frames, 0.45), [0.0, 0.0]], [_at(frames, 0.6), [-0.3, 0.0]], [_at(frames, 0.8), [0.0, 0.0]]]},
         "gaze drifts left and back"),
        ("teeth", {"op": "teeth", "which": "both", "interp": "step", "keys": [
            [frames[0], 1.0], [_at(frames, 0.55), 0.0], [_at(frames, 0.8), 1.0]]}, "teeth removed for a stretch"),
        ("mouth_open", {"op": "mouth_open", "interp": "smooth", "keys": [
            [_at(frames, 0.6), 1.0], [_at(frames, 0.75), 1.5], [_at(frames, 0.95), 1.0]]}, "mouth opens 50 % wider"),
    )
    for op, edit, what in optional:
        if facts.usable.get(op) == "ok":
            edits.append(edit)
            notes.append(f"{op}: {what}")
        else:
            notes.append(f"{op}: skipped ({facts.usable.get(op, 'not probed')})")
    return {"version": 1, "edits": edits}, notes
