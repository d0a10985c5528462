"""A filled region's colour held to what the shot shows of its codes.

Where an op fills an area with one code (``teeth 0``: a mouthful of teeth becomes the darkest interior code),
Stage II draws something it never saw: the shot shows that code only in the gaps between the teeth. On lp_d13
the emptied mouth rendered with an orange glow in its middle; on lp_d0 as a mauve smear. The shot's own evidence
of what those codes look like is Stage II's palette (``meta.json`` ``code_colours``: each code's mean display
colour over the training frames, the colours its paint augmentation already pulls painted regions toward).

So inside the filled region the render keeps only its finest texture and takes the palette's colours:

    out = render + w * (N(palette[labels]) - N(render)),

with ``N`` a blur normalised over the filled pixels (``sigma`` label pixels; nothing outside the region pulls
its mean) and ``w`` the region feathered by ``feather`` label pixels. Figures: benchmarks/RESULTS.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vq_models.errors import InputError


@dataclass(frozen=True)
class AnchorSettings:
    """``sigma``: the blur (label pixels) below which the render's own texture stays (larger: more of what
    Stage II drew, only the region's overall colour held; at 0.5 little but its finest grain: lp_d13's emptied
    mouth kept the glow's mottling at 1.5 and 0.75, the synthetic what-ifs score alike). ``feather``: how far
    (label pixels) the correction fades at the region's edge (smaller: the label grid's stair steps show along
    the lips)."""

    sigma: float = 0.5
    feather: float = 1.0

    def __post_init__(self) -> None:
        if not self.sigma > 0 or self.feather < 0:
            raise InputError(f"fill anchor sigma {self.sigma} / feather {self.feather}: need sigma > 0, feather >= 0")


def anchor_filled(render: np.ndarray, labels: np.ndarray, filled: np.ndarray, palette: np.ndarray,
                  settings: AnchorSettings | None = None) -> np.ndarray:
    """``render`` (R, R, 3) display sRGB with the low frequencies of the ``filled`` label pixels ((L, L) bool)
    held to ``palette`` ((K, 3) display sRGB per code, NaN for codes the shot never showed: those pixels keep
    the render's own colour) of ``labels`` ((L, L) codes). R is a multiple of L or not; both are resampled."""
    settings = settings or AnchorSettings()
    region = np.asarray(filled, bool)
    if not region.any():
        return render
    size, label_size = render.shape[0], region.shape[0]
    k = size / float(label_size)
    colours = np.asarray(palette, np.float32)[np.asarray(labels)]
    target = cv2.resize(colours, (size, size), interpolation=cv2.INTER_NEAREST)
    known = np.isfinite(target).all(axis=-1)
    target = np.where(known[..., None], target, render)
    inside = cv2.resize(region.astype(np.float32), (size, size), interpolation=cv2.INTER_NEAREST)
    weight = cv2.resize(region.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    if settings.feather > 0:
        weight = cv2.GaussianBlur(weight, (0, 0), settings.feather * k)
    sigma = settings.sigma * k
    norm = np.maximum(cv2.GaussianBlur(inside, (0, 0), sigma), 1e-3)[..., None]

    def low(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image * inside[..., None], (0, 0), sigma) / norm

    out = render + np.clip(weight, 0.0, 1.0)[..., None] * (low(target) - low(render))
    return np.clip(out, 0.0, 1.0).astype(np.float32)
