"""Acceptance measurements of a trained shot, in process: edits against the synthetic what-if frames,
paste-back locality, held-out reconstruction, and a before/after contact sheet.

Why this module exists next to ``vq_models.demo.measure``: the demo measures through a real render server
and host node; Stage II tuning and ``benchmarks/stage2_acceptance.py`` need the same numbers without a
server (one process, one thread). So this module supplies :class:`InProcessNode`, a stand-in with the
host node's ``evaluate_many`` contract backed by :meth:`vq_models.runtime.ShotModel.render_frame`, and
reuses the demo's what-if measurement (:func:`vq_models.demo.measure.measure_whatifs`: same boxes, same
frame choice, same display-sRGB PSNR) instead of duplicating it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vq_models.errors import InputError


@dataclass
class NodeResult:
    """What :meth:`InProcessNode.evaluate_many` yields (the fields the demo's measurement reads)."""

    frame: int
    image: np.ndarray  # composite over the plate's data window, plate colour space
    alpha: np.ndarray  # (H, W) alpha over the display window
    crop: np.ndarray  # (R, R, 3) sRGB render in crop space


class InProcessNode:
    """Render ``program`` with a loaded :class:`~vq_models.runtime.ShotModel` and composite over the plates
    handed in, like the host's ``EditNode.evaluate_many`` does through the server."""

    def __init__(self, model: Any, program: dict[str, Any] | None, feather: float = 4.0, mode: str = "edit-only"):
        self.model = model
        self.program = program
        self.feather = float(feather)
        self.mode = mode

    def evaluate_many(self, frames: Sequence[int], plates: Iterable[Any], in_flight: int = 1) -> Iterator[NodeResult]:
        for frame, plate in zip(frames, plates, strict=True):
            r = self.model.render_frame(frame, self.program, feather=self.feather, mode=self.mode)
            yield NodeResult(frame=int(frame), image=r.composite(plate).pixels, alpha=r.alpha, crop=r.crop)

    def close(self) -> None:
        """Nothing to release (the host node closes its socket here)."""


def shot_facts(model: Any) -> Any:
    """The demo's :class:`~vq_models.demo.program.ShotFacts` for a loaded shot: tracked contours per frame and
    which high-level ops the prior supports (probed on frames spread over the shot)."""
    from vq_models.demo.program import ShotFacts, probe_frames, usable_ops
    from vq_models.tracking.schema import load_tracking

    shot = model.shot
    prior = model.prior()
    tracking = load_tracking(shot.tracking_path)
    contours = {f: {k: np.asarray(v) for k, v in (t.contours or {}).items()} for f, t in tracking.frames.items()}
    facts = ShotFacts(frames=shot.frames, contours=contours, skin="skin" in prior.segments)
    facts.usable = usable_ops(shot.root, prior, probe_frames(shot.frames))
    return facts


def measure_edits(model: Any, synth_dir: str | Path, feather: float = 4.0, max_frames: int = 12) -> dict[str, Any]:
    """PSNR (dB, display sRGB) of each what-if edit's composite and of the untouched plate vs the synth's
    what-if frames, in a box around the tracked part, over frames where the what-if differs from the plate.

    Returns the demo's per-what-if dicts (``psnr_edit_db``, ``psnr_plate_db``, ``gain_db``, ``frames``,
    ``program`` ...) plus ``usable`` (which ops the prior supports, or why not)."""
    from vq_models.demo.measure import measure_whatifs

    synth = Path(synth_dir)
    if not (synth / "whatif").is_dir():
        raise InputError(f"{synth}: no whatif/ folder (not a `vqedit synth` output)")
    facts = shot_facts(model)
    result = measure_whatifs(lambda program: InProcessNode(model, program, feather), synth, facts, max_frames)
    result["usable"] = dict(facts.usable)
    return result


def locality(model: Any, program: dict[str, Any], frames: Sequence[int], plate_pattern: str,
             feather: float = 4.0) -> dict[str, Any]:
    """Render ``program`` on ``frames``, composite over the plate, and count composite pixels that differ from
    the plate where the alpha is exactly 0 (must be 0), and the pixels inside the alpha."""
    from vq_models.io.images import read_image

    node = InProcessNode(model, program, feather)
    differing = outside = inside = 0
    edited: list[int] = []
    plates = [read_image(plate_pattern % f) for f in frames]
    for plate, res in zip(plates, node.evaluate_many(frames, plates), strict=True):
        a = _alpha_on_data_window(res.alpha, plate)
        zero = a == 0
        diff = np.any(res.image[..., :3] != plate.pixels[..., :3], axis=-1)
        differing += int(np.count_nonzero(diff & zero))
        outside += int(np.count_nonzero(zero))
        inside += int(np.count_nonzero(~zero))
        if (~zero).any():
            edited.append(int(res.frame))
    return {"differing_pixels_outside_alpha": differing, "pixels_outside_alpha": outside,
            "pixels_inside_alpha": inside, "frames_with_edits": edited, "frames": [int(f) for f in frames]}


def _alpha_on_data_window(alpha: np.ndarray, plate: Any) -> np.ndarray:
    """The display-window alpha re-windowed onto the plate's data window (0 where it has no value)."""
    dx, dy, dw, dh = plate.data_window
    ox, oy, ow, oh = plate.display_window
    out = np.zeros((dh, dw), np.float32)
    x0, y0, x1, y1 = max(dx, ox), max(dy, oy), min(dx + dw, ox + ow), min(dy + dh, oy + oh)
    if x1 > x0 and y1 > y0:
        out[y0 - dy:y1 - dy, x0 - dx:x1 - dx] = alpha[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    return out


def reconstruction(stage2_meta: dict[str, Any], min_ssim: float = 0.95) -> dict[str, Any]:
    """Stage II's held-out SSIM / PSNR in the face crop (from stage2/meta.json) against ``min_ssim``."""
    val = stage2_meta.get("val") or {}
    ssim = val.get("ssim")
    return {"ssim": ssim, "psnr_db": val.get("psnr"), "frames": val.get("frames", []),
            "region": val.get("region", "face mask"), "min_ssim": min_ssim,
            "pass": bool(ssim is not None and ssim >= min_ssim)}


# --- contact sheet ---------------------------------------------------------------------------------------


def _srgb(linear: np.ndarray, colorspace: str) -> np.ndarray:
    from vq_models.io.colour import to_network

    return np.clip(to_network(np.asarray(linear, np.float32)[..., :3], colorspace), 0.0, 1.0)


def zoom_box(box: tuple[int, int, int, int], size: tuple[int, int], aspect: float = 2.0) -> tuple[int, int, int, int]:
    """Grow a (x0, y0, x1, y1) box to ``aspect`` width/height around its centre, inside a (w, h) image, so
    every contact-sheet cell has the same shape."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    h = max(y1 - y0, (x1 - x0) / aspect)
    w = h * aspect
    w, h = min(w, size[0]), min(h, size[1])
    nx0 = int(round(min(max(cx - w / 2, 0), size[0] - w)))
    ny0 = int(round(min(max(cy - h / 2, 0), size[1] - h)))
    return nx0, ny0, nx0 + int(round(w)), ny0 + int(round(h))


def sheet_row(cells: Sequence[np.ndarray], height: int = 96) -> np.ndarray:
    """sRGB float cells → one uint8 row, each cell resized to ``height`` (nearest, so pixels stay honest)."""
    import cv2

    out = []
    for c in cells:
        c = np.clip(np.asarray(c, np.float32)[..., :3], 0.0, 1.0)
        w = max(1, int(round(c.shape[1] * height / c.shape[0])))
        out.append((cv2.resize(c, (w, height), interpolation=cv2.INTER_NEAREST) * 255.0 + 0.5).astype(np.uint8))
        out.append(np.full((height, 2, 3), 255, np.uint8))
    return np.concatenate(out[:-1], axis=1)


def write_sheet(path: str | Path, rows: Sequence[tuple[str, np.ndarray]], columns: Sequence[str]) -> np.ndarray:
    """Stack labelled rows (all the same width) under a header of column titles; write an 8-bit PNG."""
    import cv2

    from vq_models.io.images import write_image

    width = max(r.shape[1] for _, r in rows)
    blocks = []
    header = np.zeros((20, width + 120, 3), np.uint8)
    cell = width / max(len(columns), 1)
    for i, name in enumerate(columns):
        cv2.putText(header, name, (120 + int(i * cell) + 4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1,
                    cv2.LINE_AA)
    blocks.append(header)
    for label, row in rows:
        pad = np.zeros((row.shape[0], width + 120, 3), np.uint8)
        pad[:, 120:120 + row.shape[1]] = row
        for j, line in enumerate(label.split("\n")):
            cv2.putText(pad, line, (4, 16 + 15 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
        blocks.append(pad)
        blocks.append(np.zeros((3, width + 120, 3), np.uint8))
    sheet = np.concatenate(blocks, axis=0)
    write_image(path, sheet.astype(np.float32) / 255.0, dtype="uint8")
    return sheet


def box_psnr(a: np.ndarray, b: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """PSNR (dB) of two images inside ``box``; the demo's definition (identical pixels: +inf)."""
    from vq_models.demo.measure import box_psnr as demo_box_psnr

    return float(demo_box_psnr(a, b, box))


def finite(x: float | None) -> float | None:
    """``x`` if it is a finite number, else None (for JSON reports)."""
    return float(x) if x is not None and math.isfinite(x) else None
