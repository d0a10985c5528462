"""Edits against ground truth: the synthetic shot's what-if frames (the same frame drawn again with one state
changed), measured through any node with the host node's ``evaluate_many`` contract: the demo's real render
server and host node, or :class:`InProcessNode` for Stage II tuning and the acceptance benchmarks (one process,
one thread). Same boxes, same frame choice, same display-sRGB PSNR everywhere."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vq_models.errors import InputError
from vq_models.evaluation.programs import (
    WHATIFS,
    ShotFacts,
    box_around,
    probe_frames,
    usable_ops,
    whatif_program,
)
from vq_models.io.colour import to_network
from vq_models.io.images import read_image
from vq_models.metrics import ssim
from vq_models.tracking.schema import load_tracking


def srgb(linear: np.ndarray, colorspace: str = "lin_rec709") -> np.ndarray:
    """Display sRGB in [0, 1] of an image's first three channels."""
    return np.clip(to_network(np.asarray(linear, np.float32)[..., :3], colorspace), 0.0, 1.0)


def box_psnr(a: np.ndarray, b: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """PSNR in dB of two sRGB images inside ``box``; identical pixels give +inf."""
    x0, y0, x1, y1 = box
    d = a[y0:y1, x0:x1].astype(np.float64) - b[y0:y1, x0:x1].astype(np.float64)
    mse = float(np.mean(d * d))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def box_ssim(a: np.ndarray, b: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Mean SSIM (metrics.ssim, per colour channel) of two sRGB images inside ``box``: a second opinion beside
    :func:`box_psnr`, which scores a blurred guess and a sharp one drawn a pixel off on one scale only."""
    x0, y0, x1, y1 = box
    return ssim(a[y0:y1, x0:x1], b[y0:y1, x0:x1])


def _differs(plate: np.ndarray, whatif: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    x0, y0, x1, y1 = box
    return bool(np.any(plate[y0:y1, x0:x1] != whatif[y0:y1, x0:x1]))


def measure_whatifs(node_factory: Any, synth_dir: Path, facts: ShotFacts, max_frames: int) -> dict[str, Any]:
    """For each what-if: PSNR (dB) of the edited composite and of the untouched plate vs the what-if frame.

    ``node_factory(program)`` returns an object with ``evaluate_many(frames, plates)`` (the host node).
    Only frames where the what-if differs from the plate in the box are used (a blink frame already has
    its eyes closed); at most ``max_frames`` of them, spread over the shot.
    """
    out: dict[str, Any] = {}
    for name, (_op, _value, contour_names) in WHATIFS.items():
        wdir = synth_dir / "whatif" / name
        if not wdir.is_dir():
            out[name] = {"status": f"unavailable: {wdir} missing"}
            continue
        cand: list[tuple[int, tuple[int, int, int, int]]] = []
        plates, whatifs = {}, {}
        for f in facts.frames:
            plate = read_image(synth_dir / "plate" / f"frame.{f:04d}.exr")
            whatif = read_image(wdir / f"frame.{f:04d}.exr")
            size = (plate.display_window[2], plate.display_window[3])
            box = box_around(facts.contours.get(f, {}), contour_names, 0.6, size)
            if box is not None and _differs(plate.pixels, whatif.pixels, box):
                cand.append((f, box))
                plates[f], whatifs[f] = plate, whatif
        if not cand:
            out[name] = {"status": "unavailable: the what-if never differs from the plate in this shot"}
            continue
        pick = [cand[int(i)] for i in np.unique(np.linspace(0, len(cand) - 1, min(max_frames, len(cand))).round())]
        frames = [f for f, _ in pick]
        program, how = whatif_program(name, facts, frames)
        if program is None:
            out[name] = {"status": how, "frames": frames}
            continue
        node = node_factory(program)
        try:
            results = list(node.evaluate_many(frames, [plates[f] for f in frames], in_flight=len(frames)))
        finally:
            node.close()
        edit_db, plate_db = [], []
        for (f, box), res in zip(pick, results, strict=True):
            target = srgb(whatifs[f].pixels)
            edit_db.append(box_psnr(srgb(res.image), target, box))
            plate_db.append(box_psnr(srgb(plates[f].pixels), target, box))
        out[name] = {
            "status": "ok", "program": how, "frames": frames,
            "psnr_edit_db": finite_mean(edit_db), "psnr_plate_db": finite_mean(plate_db),
            "gain_db": finite_mean(edit_db) - finite_mean(plate_db),
            "region": f"box around tracked {'+'.join(contour_names)} (padded 0.6x height), display sRGB",
        }
    return out


def finite_mean(values: Sequence[float]) -> float:
    vals = [min(v, 100.0) for v in values]  # cap identical boxes at 100 dB so the mean stays finite
    return float(np.mean(vals)) if vals else float("nan")


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
    """The demo's :class:`~vq_models.evaluation.programs.ShotFacts` for a loaded shot: tracked contours per frame and
    which high-level ops the prior supports (probed on frames spread over the shot)."""
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
    synth = Path(synth_dir)
    if not (synth / "whatif").is_dir():
        raise InputError(f"{synth}: no whatif/ folder (not a `vqedit synth` output)")
    facts = shot_facts(model)
    result = measure_whatifs(lambda program: InProcessNode(model, program, feather), synth, facts, max_frames)
    result["usable"] = dict(facts.usable)
    return result




def finite(x: float | None) -> float | None:
    """``x`` if it is a finite number, else None (for JSON reports)."""
    return float(x) if x is not None and math.isfinite(x) else None
