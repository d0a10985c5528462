"""Measuring expression transfer on synthetic shots: how open the rendered mouth is, against the driver's.

The driver's mouth-interior area is exact (its ground-truth part labels). The rendered target's is read
from the composite's pixels with a nearest-colour classifier fitted on the *target's* own ground truth (the
mean display colour of each lower-face part over its frames), inside the transferred outer-lip polygon
(grown a little): independent of the model that drew it, so a render that paints no mouth scores none.
Both areas are divided by the squared eye distance of their own frame, so faces of different sizes and
identities compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vq_models.edits.geometry import grow_square
from vq_models.evaluation.whatif import srgb
from vq_models.io.images import read_image, read_label_map
from vq_models.synth.face_model import PART_ID

#: Parts whose pixels are the mouth interior (what opening the mouth shows).
MOUTH_PARTS = ("mouth_interior", "upper_teeth", "lower_teeth", "tongue")
#: Parts the classifier chooses between around the mouth.
LOWER_FACE_PARTS = ("skin", "upper_lip", "lower_lip", *MOUTH_PARTS)


def eye_distance(landmarks5: np.ndarray) -> float:
    lm = np.asarray(landmarks5, np.float64)
    return float(np.linalg.norm(lm[1] - lm[0]))


def gt_mouth_area(synth_dir: str | Path, frame: int) -> float:
    """Mouth-interior pixels of a synthetic frame's ground-truth labels."""
    labels = read_label_map(Path(synth_dir) / "labels" / f"frame.{frame:04d}.png")
    return float(np.isin(labels, [PART_ID[p] for p in MOUTH_PARTS]).sum())


@dataclass(frozen=True)
class PartColours:
    """Mean display colour per lower-face part of a synthetic shot (the classifier's centroids)."""

    names: tuple[str, ...]
    centroids: np.ndarray  # (P, 3) sRGB

    @classmethod
    def fit(cls, synth_dir: str | Path, frames: Sequence[int]) -> PartColours:
        sums = {p: np.zeros(3) for p in LOWER_FACE_PARTS}
        counts = dict.fromkeys(LOWER_FACE_PARTS, 0)
        for f in frames:
            rgb = srgb(read_image(Path(synth_dir) / "plate" / f"frame.{f:04d}.exr").full_frame())
            labels = read_label_map(Path(synth_dir) / "labels" / f"frame.{f:04d}.png")
            for p in LOWER_FACE_PARTS:
                sel = labels == PART_ID[p]
                sums[p] += rgb[sel].sum(0)
                counts[p] += int(sel.sum())
        names = tuple(p for p in LOWER_FACE_PARTS if counts[p] > 0)
        return cls(names, np.stack([sums[p] / counts[p] for p in names]))

    def mouth_pixels(self, rgb: np.ndarray, lips_outer: np.ndarray, grow: int = 2) -> np.ndarray:
        """Boolean (H, W): pixels inside ``lips_outer`` (plate pixels, grown by ``grow``) whose nearest part
        colour is a mouth-interior part."""
        h, w = rgb.shape[:2]
        inside = np.zeros((h, w), np.uint8)
        cv2.fillPoly(
            inside,
            [np.round(np.asarray(lips_outer, np.float64)[:, :2] * 16).astype(np.int32)],
            1,
            lineType=cv2.LINE_8,
            shift=4,
        )
        if grow > 0:
            inside = grow_square(inside, grow)
        d = np.linalg.norm(rgb[..., None, :3] - self.centroids[None, None], axis=-1)
        nearest = np.asarray(self.names)[np.argmin(d, axis=-1)]
        return inside & np.isin(nearest, MOUTH_PARTS)
