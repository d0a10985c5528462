"""Label edits borrowed from the shot itself: a closed eye (or mouth) as this shot's own look in its codes.

Drawing a lid over the eye opening geometrically (``ops.eye_open``'s column rule) gives labels the renderer
has never seen together: the lid codes of an open eye stretched over where the iris was. On real footage the
renderer then draws a blurred smear with the iris showing through. But a shot that blinks holds real closed
eyes, and the renderer was trained on their labels. So a strongly closing ``eye_open`` takes the eye region
from the shot's most closed frame for that eye (the *exemplar*), moved onto this frame's eye with the
similarity that maps the exemplar's eye corners onto this frame's: the labels then ask for what a real
closed eye looks like in this shot. Without such a frame (a shot that never blinks) the op keeps its
geometric rule. ``mouth_open`` does the same with the shot's most closed mouth (moved by the mouth corners).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cv2
import numpy as np

# An eye counts as closed (and may lend its labels) below this share of the shot's median opening, and the
# exemplar path is taken when the asked-for opening is below it too: near-open values keep the column rule,
# which moves the lid without replacing the iris's codes.
CLOSED_SHARE = 0.5
# The replaced region: the part's contour (this frame's and the exemplar's, moved) grown by this share of its
# width, so an eye's lid and crease come from the exemplar too; a mouth's lips, but not the chin.
REGION_GROW = {"left": 0.3, "right": 0.3, "mouth": 0.12}
# part → (contour outlining it, contour whose height measures its opening; None = the outline itself)
PART_CONTOURS = {"left": ("left_eye", None), "right": ("right_eye", None), "mouth": ("lips_outer", "lips_inner")}


@dataclass(frozen=True)
class PartTrack:
    """One eye or the mouth at one frame in label-map pixels: its outline and its two corners (by x)."""

    contour: np.ndarray  # (N, 2)
    corners: np.ndarray  # (2, 2): leftmost, rightmost outline point
    opening: float  # opening height / outline width


def part_track(outline: np.ndarray, opening: np.ndarray | None = None) -> PartTrack | None:
    """A part from its outline (and the contour whose height is its opening, default the outline)."""
    pts = np.asarray(outline, np.float64)[:, :2]
    inner = pts if opening is None else np.asarray(opening, np.float64)[:, :2]
    if pts.shape[0] < 3 or inner.shape[0] < 3:
        return None
    w = float(np.ptp(pts[:, 0]))
    if w <= 0:
        return None
    corners = np.stack([pts[np.argmin(pts[:, 0])], pts[np.argmax(pts[:, 0])]])
    return PartTrack(pts, corners, float(np.ptp(inner[:, 1])) / w)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 similarity (rotation, uniform scale, translation) mapping the two ``src`` points onto ``dst``."""
    s0, s1 = src
    d0, d1 = dst
    vs, vd = complex(*(s1 - s0)), complex(*(d1 - d0))
    if abs(vs) == 0:
        return np.array([[1.0, 0.0, d0[0] - s0[0]], [0.0, 1.0, d0[1] - s0[1]]])
    z = vd / vs
    a, b = z.real, z.imag
    rot = np.array([[a, -b], [b, a]])
    t = np.asarray(d0) - rot @ np.asarray(s0)
    return np.hstack([rot, t[:, None]])


class PartExemplars:
    """Per-shot index of each eye's and the mouth's opening over every frame, and the closed-part label
    transfer.

    ``parts(frame)`` gives ``{"left": PartTrack, "right": ..., "mouth": ...}`` in label pixels (any may be
    missing); ``label_map(frame)`` the frame's Stage I labels."""

    def __init__(self, frames: list[int], parts: Callable[[int], Mapping[str, PartTrack]],
                 label_map: Callable[[int], np.ndarray]):
        self.frames = list(frames)
        self._eyes = parts
        self._label_map = label_map
        self._openings: dict[str, np.ndarray] | None = None
        self._lock = threading.Lock()

    def openings(self) -> dict[str, np.ndarray]:
        with self._lock:
            if self._openings is None:
                table: dict[str, list[float]] = {part: [] for part in PART_CONTOURS}
                for f in self.frames:
                    tracks = self._eyes(f)
                    for side in table:
                        t = tracks.get(side)
                        table[side].append(t.opening if t is not None else np.nan)
                self._openings = {k: np.asarray(v) for k, v in table.items()}
            return self._openings

    def median(self, side: str) -> float:
        return float(np.nanmedian(self.openings()[side]))

    def closed_donor(self, side: str, exclude: set[int] | None = None) -> int | None:
        """The shot's most closed frame for part ``side`` (not in ``exclude``), if it is closed at all."""
        o = self.openings()[side].copy()
        if exclude:
            for i, f in enumerate(self.frames):
                if f in exclude:
                    o[i] = np.nan
        if not np.isfinite(o).any():
            return None
        i = int(np.nanargmin(o))
        return self.frames[i] if o[i] < CLOSED_SHARE * self.median(side) else None

    def close(self, labels: np.ndarray, frame: int, side: str, value: float,
              exclude: set[int] | None = None) -> np.ndarray | None:
        """``labels`` with part ``side``'s region taken from the closed exemplar, or None when the exemplar
        path does not apply (value not closed enough, part not tracked, no closed frame in the shot)."""
        current = self._eyes(frame).get(side)
        if current is None or value * current.opening >= CLOSED_SHARE * self.median(side):
            return None
        donor = self.closed_donor(side, (exclude or set()) | {int(frame)})
        if donor is None:
            return None
        track = self._eyes(donor).get(side)
        if track is None:
            return None
        m = similarity(track.corners, current.corners)
        size = labels.shape[1], labels.shape[0]
        moved = cv2.warpAffine(self._label_map(donor), m, size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        moved_contour = track.contour @ m[:, :2].T + m[:, 2]
        region = np.zeros(labels.shape, np.uint8)
        for poly in (current.contour, moved_contour):
            cv2.fillPoly(region, [np.round(poly).astype(np.int32).reshape(-1, 1, 2)], 1)
        width = float(np.ptp(current.contour[:, 0]))
        r = max(1, int(round(REGION_GROW[side] * width)))
        region = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))).astype(bool)
        out = labels.copy()
        out[region] = moved[region]
        return out
