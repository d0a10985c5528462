"""The demo's keyframed edit program and the programs that measure edits against the what-if frames.

Which high-level operations work depends on the artist prior Stage I made possible: at tiny sizes the
auto prior may find only ``skin`` and ``background``. Rather than fail, the demo *tries* each operation on
a real frame of the shot (:func:`usable_ops`) and, for eye closure, falls back to painting the tracked eye
contours with skin (the label-level meaning of "eye closed"), one keyed paint per frame. What was used is
recorded, so the metrics say which program they measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vq_models.errors import VQEditError

# One edit per op, at a value that changes pixels on an ordinary frame (used to probe the prior).
PROBES: dict[str, dict[str, Any]] = {
    "eye_open": {"op": "eye_open", "eye": "both", "value": 0.0},
    "gaze": {"op": "gaze", "eye": "both", "value": [-0.3, 0.0]},
    "teeth": {"op": "teeth", "which": "both", "value": 0.0},
    "mouth_open": {"op": "mouth_open", "value": 1.5},
}

# what-if name → (program op, its constant value, tracked contours whose box is compared)
WHATIFS: dict[str, tuple[str, Any, tuple[str, ...]]] = {
    "eyes_closed": ("eye_open", 0.0, ("left_eye", "right_eye")),
    "no_teeth": ("teeth", 0.0, ("lips_inner",)),
    "mouth_closed": ("mouth_open", 0.0, ("lips_outer",)),
}


@dataclass
class ShotFacts:
    """What the program builder needs from the shot: frames, tracked contours (plate px), a label probe."""

    frames: list[int]
    contours: dict[int, dict[str, np.ndarray]]
    usable: dict[str, str] = field(default_factory=dict)  # op → "ok" or the reason it cannot run
    skin: bool = False  # prior has a skin segment (the paint fallback needs it)


def usable_ops(shot_dir: Any, prior: Any, frames: int | Sequence[int]) -> dict[str, str]:
    """Try each high-level op on the Stage I labels of ``frames``: "ok" when it runs and changes pixels on
    at least one, else why not. Why several frames: one frame can show closed lips (no teeth to remove), and
    probing only the middle frame marked teeth 0 unusable on a synthetic shot whose other frames show them."""
    from vq_models.edits.ops import FrameContext, apply_program
    from vq_models.edits.prior import rasterize_regions
    from vq_models.edits.program import parse_program
    from vq_models.io.images import read_label_map
    from vq_models.shot import Shot
    from vq_models.tracking.schema import load_tracking

    shot = Shot.open(shot_dir)
    tracking = load_tracking(shot.tracking_path).frames
    probe = [frames] if isinstance(frames, int) else list(frames)
    out: dict[str, str] = {}
    for op, edit in PROBES.items():
        try:
            program = parse_program({"version": 1, "edits": [edit]}, prior)
        except VQEditError as exc:
            out[op] = str(exc).splitlines()[0]
            continue
        out[op] = f"{op}: changes no pixel on frame(s) {', '.join(map(str, probe))}"
        for frame in probe:
            labels = read_label_map(shot.label_path(frame))
            track = tracking.get(frame)
            regions = rasterize_regions(track.contours, shot.transform(frame), shot.crop_size, labels.shape[0]) if track else {}
            ctx = FrameContext(regions=regions, transform=shot.transform(frame), crop_size=shot.crop_size)
            try:
                _, changed = apply_program(program, labels, frame, prior, ctx)
            except VQEditError as exc:
                out[op] = str(exc).splitlines()[0]
                break
            if changed.any():
                out[op] = "ok"
                break
    return out


def probe_frames(frames: Sequence[int], count: int = 5) -> list[int]:
    """``count`` frames spread over the shot, the middle one first (what :func:`usable_ops` tries)."""
    mid = frames[len(frames) // 2]
    spread = [frames[int(round(i * (len(frames) - 1) / max(count - 1, 1)))] for i in range(count)]
    return [mid] + [f for f in dict.fromkeys(spread) if f != mid]


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


def paint_eyes_closed(facts: ShotFacts, frames: Sequence[int]) -> list[dict[str, Any]]:
    """Fallback eye closure: on each frame in ``frames``, paint the tracked eye contours with skin."""
    edits: list[dict[str, Any]] = []
    for f in frames:
        for name in ("left_eye", "right_eye"):
            poly = facts.contours.get(f, {}).get(name)
            if poly is None or len(poly) < 3:
                continue
            edits.append({"op": "paint", "segment": "skin", "space": "plate", "polygon": np.round(poly, 2).tolist(),
                          "keys": [[f, 1], [f + 1, 0]], "interp": "step",
                          "comment": f"fallback eye closure, frame {f} ({name})"})
            if f - 1 >= 0:
                edits[-1]["keys"].insert(0, [f - 1, 0])
    return edits


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


def whatif_program(name: str, facts: ShotFacts, frames: Sequence[int]) -> tuple[dict[str, Any] | None, str]:
    """The constant program whose render should match what-if ``name``, and how it was made (or why not)."""
    op, value, _ = WHATIFS[name]
    if facts.usable.get(op) == "ok":
        edit: dict[str, Any] = {"op": op, "value": value}
        if op in ("eye_open",):
            edit["eye"] = "both"
        if op == "teeth":
            edit["which"] = "both"
        return {"version": 1, "edits": [edit]}, f"{op} {value}"
    if name == "eyes_closed" and facts.skin:
        return {"version": 1, "edits": paint_eyes_closed(facts, frames)}, "paint skin over tracked eyes (fallback)"
    return None, f"unavailable: {facts.usable.get(op, op + ' not probed')}"


def box_around(contours: dict[str, np.ndarray], names: Sequence[str], pad: float, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Integer plate box (x0, y0, x1, y1) around the named contours, padded by ``pad`` × its height."""
    pts = [np.asarray(contours[n]) for n in names if n in contours and len(contours[n])]
    if not pts:
        return None
    allp = np.concatenate(pts)
    x0, y0 = allp.min(axis=0)
    x1, y1 = allp.max(axis=0)
    p = pad * max(y1 - y0, 2.0)
    w, h = size
    box = (int(max(0, np.floor(x0 - p))), int(max(0, np.floor(y0 - p))), int(min(w, np.ceil(x1 + p) + 1)),
           int(min(h, np.ceil(y1 + p) + 1)))
    return box if box[2] > box[0] and box[3] > box[1] else None
