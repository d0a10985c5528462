"""Demo metrics: held-out reconstruction, edits against the synthetic what-if frames, and locality.

* Reconstruction comes from Stage II's held-out evaluation (SSIM / PSNR in the face crop of renders vs
  aligned targets, frames never trained on), checked against the demo preset's bounds.
* An edit is measured where ground truth exists: the synth wrote each frame again with one state changed
  (``whatif/eyes_closed`` ...). We render the matching constant program through the server, composite it
  over the plate, and compare with the what-if in a box around the tracked part, in display sRGB. The
  plate itself against the what-if is the do-nothing baseline; a useful edit beats it.
* Locality: outside the edit's alpha the composite must be the plate bit for bit; we count differing
  pixels there (must be exactly 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vq_models.demo.program import WHATIFS, ShotFacts, box_around, whatif_program


def _srgb(linear: np.ndarray) -> np.ndarray:
    from vq_models.io.colour import to_network

    return np.clip(to_network(np.asarray(linear, np.float32)[..., :3], "lin_rec709"), 0.0, 1.0)


def box_psnr(a: np.ndarray, b: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """PSNR in dB of two sRGB images inside ``box``; identical pixels give +inf."""
    x0, y0, x1, y1 = box
    d = a[y0:y1, x0:x1].astype(np.float64) - b[y0:y1, x0:x1].astype(np.float64)
    mse = float(np.mean(d * d))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def reconstruction(stage2_meta: dict[str, Any], min_ssim: float, min_psnr: float) -> dict[str, Any]:
    """Stage II's held-out SSIM / PSNR (face crop) and whether they are within the demo's bounds."""
    val = stage2_meta.get("val") or {}
    ssim, psnr = val.get("ssim"), val.get("psnr")
    ok = ssim is not None and psnr is not None and ssim >= min_ssim and psnr >= min_psnr
    return {"ssim": ssim, "psnr_db": psnr, "frames": val.get("frames", []), "region": val.get("region", "face crop"),
            "bounds": {"min_ssim": min_ssim, "min_psnr_db": min_psnr}, "within_bounds": bool(ok),
            "source": "stage2/meta.json (held-out frames)"}


def _differs(plate: np.ndarray, whatif: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    x0, y0, x1, y1 = box
    return bool(np.any(plate[y0:y1, x0:x1] != whatif[y0:y1, x0:x1]))


def measure_whatifs(node_factory: Any, synth_dir: Path, facts: ShotFacts, max_frames: int) -> dict[str, Any]:
    """For each what-if: PSNR (dB) of the edited composite and of the untouched plate vs the what-if frame.

    ``node_factory(program)`` returns an object with ``evaluate_many(frames, plates)`` (the host node).
    Only frames where the what-if differs from the plate in the box are used (a blink frame already has
    its eyes closed); at most ``max_frames`` of them, spread over the shot.
    """
    from vq_models.io.images import read_image as read_exr

    out: dict[str, Any] = {}
    for name, (_op, _value, contour_names) in WHATIFS.items():
        wdir = synth_dir / "whatif" / name
        if not wdir.is_dir():
            out[name] = {"status": f"unavailable: {wdir} missing"}
            continue
        cand: list[tuple[int, tuple[int, int, int, int]]] = []
        plates, whatifs = {}, {}
        for f in facts.frames:
            plate = read_exr(synth_dir / "plate" / f"frame.{f:04d}.exr")
            whatif = read_exr(wdir / f"frame.{f:04d}.exr")
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
            target = _srgb(whatifs[f].pixels)
            edit_db.append(box_psnr(_srgb(res.image), target, box))
            plate_db.append(box_psnr(_srgb(plates[f].pixels), target, box))
        out[name] = {
            "status": "ok", "program": how, "frames": frames,
            "psnr_edit_db": _finite_mean(edit_db), "psnr_plate_db": _finite_mean(plate_db),
            "gain_db": _finite_mean(edit_db) - _finite_mean(plate_db),
            "region": f"box around tracked {'+'.join(contour_names)} (padded 0.6x height), display sRGB",
        }
    return out


def _finite_mean(values: Sequence[float]) -> float:
    vals = [min(v, 100.0) for v in values]  # cap identical boxes at 100 dB so the mean stays finite
    return float(np.mean(vals)) if vals else float("nan")


def locality(comp_paths: Sequence[Path], render_paths: Sequence[Path], plate_pattern: str, frames: Sequence[int]) -> dict[str, Any]:
    """Count composite pixels that differ from the plate where the RGBA pass's alpha is exactly 0."""
    from vq_models.io.images import read_image

    differing = 0
    outside = 0
    edited_frames = []
    alpha_px = 0
    for f, cpath, rpath in zip(frames, comp_paths, render_paths, strict=True):
        comp = read_image(cpath)
        plate = read_image(plate_pattern % f)
        rgba = read_image(rpath)
        a = _on_window(rgba.pixels[..., rgba.channel_index("A") or 3], rgba.data_window, comp.data_window)
        zero = a == 0
        diff = np.any(comp.pixels[..., :3] != plate.pixels[..., :3], axis=-1)
        differing += int(np.count_nonzero(diff & zero))
        outside += int(np.count_nonzero(zero))
        alpha_px += int(np.count_nonzero(~zero))
        if (~zero).any():
            edited_frames.append(int(f))
    return {"differing_pixels_outside_alpha": differing, "pixels_outside_alpha": outside,
            "pixels_inside_alpha": alpha_px, "frames_with_edits": edited_frames}


def _on_window(values: np.ndarray, src: tuple[int, int, int, int], dst: tuple[int, int, int, int]) -> np.ndarray:
    """Re-window a 2-D array from data window ``src`` to ``dst`` (zeros where ``src`` has no data)."""
    out = np.zeros((dst[3], dst[2]), np.float32)
    x0, y0 = max(src[0], dst[0]), max(src[1], dst[1])
    x1, y1 = min(src[0] + src[2], dst[0] + dst[2]), min(src[1] + src[3], dst[1] + dst[3])
    if x1 > x0 and y1 > y0:
        out[y0 - dst[1]:y1 - dst[1], x0 - dst[0]:x1 - dst[0]] = values[y0 - src[1]:y1 - src[1], x0 - src[0]:x1 - src[0]]
    return out
