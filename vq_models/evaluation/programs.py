"""The programs that measure edits: which ops a shot's prior supports, and the constant program whose render
should match each synthetic what-if frame (with the paint fallback for eye closure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vq_models.edits.prior import rasterize_regions
from vq_models.edits.program import apply_program, parse_program
from vq_models.edits.spec import FrameContext
from vq_models.errors import VQEditError
from vq_models.io.images import read_label_map
from vq_models.shot import Shot
from vq_models.tracking.schema import load_tracking

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
