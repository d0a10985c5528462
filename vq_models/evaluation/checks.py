"""Pass/fail checks of a trained shot: held-out reconstruction against bounds, and locality (outside the edit's
alpha the composite is the plate bit for bit), counted the same way in process and on written files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vq_models.io.images import read_image


def reconstruction(stage2_meta: dict[str, Any], min_ssim: float = 0.95, min_psnr: float | None = None) -> dict[str, Any]:
    """Stage II's held-out SSIM / PSNR (face crop, frames never trained on) and whether they are within bounds."""
    val = stage2_meta.get("val") or {}
    ssim, psnr = val.get("ssim"), val.get("psnr")
    ok = ssim is not None and ssim >= min_ssim and (min_psnr is None or (psnr is not None and psnr >= min_psnr))
    return {"ssim": ssim, "psnr_db": psnr, "frames": val.get("frames", []), "region": val.get("region", "face mask"),
            "bounds": {"min_ssim": min_ssim, "min_psnr_db": min_psnr}, "within_bounds": bool(ok),
            "source": "stage2/meta.json (held-out frames)"}


def on_window(values: np.ndarray, src: tuple[int, int, int, int], dst: tuple[int, int, int, int]) -> np.ndarray:
    """Re-window a 2-D array from data window ``src`` to ``dst`` (zeros where ``src`` has no data)."""
    out = np.zeros((dst[3], dst[2]), np.float32)
    x0, y0 = max(src[0], dst[0]), max(src[1], dst[1])
    x1, y1 = min(src[0] + src[2], dst[0] + dst[2]), min(src[1] + src[3], dst[1] + dst[3])
    if x1 > x0 and y1 > y0:
        out[y0 - dst[1]:y1 - dst[1], x0 - dst[0]:x1 - dst[0]] = values[y0 - src[1]:y1 - src[1], x0 - src[0]:x1 - src[0]]
    return out


class LocalityCount:
    """Composite pixels that differ from the plate where the alpha is exactly 0 (must stay 0)."""

    def __init__(self) -> None:
        self.differing = self.outside = self.inside = 0
        self.edited: list[int] = []

    def add(self, frame: int, comp: np.ndarray, plate: np.ndarray, alpha: np.ndarray) -> None:
        zero = alpha == 0
        diff = np.any(comp[..., :3] != plate[..., :3], axis=-1)
        self.differing += int(np.count_nonzero(diff & zero))
        self.outside += int(np.count_nonzero(zero))
        self.inside += int(np.count_nonzero(~zero))
        if (~zero).any():
            self.edited.append(int(frame))

    def report(self, frames: Sequence[int]) -> dict[str, Any]:
        return {"differing_pixels_outside_alpha": self.differing, "pixels_outside_alpha": self.outside,
                "pixels_inside_alpha": self.inside, "frames_with_edits": self.edited, "frames": [int(f) for f in frames]}


def locality(model: Any, program: dict[str, Any], frames: Sequence[int], plate_pattern: str,
             feather: float = 4.0) -> dict[str, Any]:
    """Render ``program`` on ``frames`` in process, composite over the plate, count (see :class:`LocalityCount`)."""
    from vq_models.evaluation.whatif import InProcessNode

    node = InProcessNode(model, program, feather)
    count = LocalityCount()
    plates = [read_image(plate_pattern % f) for f in frames]
    for plate, res in zip(plates, node.evaluate_many(frames, plates), strict=True):
        alpha = on_window(res.alpha, plate.display_window, plate.data_window)
        count.add(res.frame, res.image, plate.pixels, alpha)
    return count.report(frames)


def locality_of_files(comp_paths: Sequence[Path], render_paths: Sequence[Path], plate_pattern: str,
                      frames: Sequence[int]) -> dict[str, Any]:
    """The same count on written composites, with the alpha from the RGBA passes beside them."""
    count = LocalityCount()
    for f, cpath, rpath in zip(frames, comp_paths, render_paths, strict=True):
        comp, plate, rgba = read_image(cpath), read_image(plate_pattern % f), read_image(rpath)
        alpha = on_window(rgba.pixels[..., rgba.channel_index("A") or 3], rgba.data_window, comp.data_window)
        count.add(f, comp.pixels, plate.pixels, alpha)
    return count.report(frames)
