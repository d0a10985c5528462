"""How far a shot's upper lip follows its mouth's opening, read from the shot's own tracked mouths.

A mouth opens with the jaw, so ``mouth_open`` moves the lower lip; but the upper lip's inner edge rises too as the
lips part (it rolls and stretches over the upper teeth), and comes back down when they close. Closing a mouth by
the lower lip alone leaves the upper lip as thin as it is open and brings the lower lip up into the place where
the closed upper lip should be. How much of the opening is the upper lip's differs by face and by performance, so
each shot says it: over its frames, the inner lips' upper edge at the mouth's middle (label rows, in the aligned
crop, so the head's motion is taken out) is fitted against the opening there, and the upper lip's share is the
slope, negated.

Figures (the shares the shots' tracking gives, and what they do to the closed-mouth what-ifs): benchmarks/RESULTS.md,
"The upper lip closes part of the mouth".
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from vq_models.edits.geometry import polygon_column_edges

__all__ = ["MIDDLE_SHARE", "MAX_UPPER_SHARE", "MIN_FRAMES", "MIN_SPREAD", "mouth_middle", "fit_upper_lip_share"]

#: the columns a frame's mouth is read at: within this share of the inner lips' width either side of their middle
#: (the corners close differently, and the opening is smallest there)
MIDDLE_SHARE = 0.15
#: the most of an opening the upper lip may take: a fit above it is a tracking artefact (a lip that rises more
#: than the jaw drops is a sneer, not an opening)
MAX_UPPER_SHARE = 0.5
#: frames with a tracked mouth needed for a fit; fewer and the upper lip stays where it is (share 0)
MIN_FRAMES = 8
#: spread (standard deviation, label rows) the shot's openings must have for a slope to mean anything
MIN_SPREAD = 1.0


def mouth_middle(outline: np.ndarray, width: int) -> tuple[float, float] | None:
    """The inner lips' upper edge and opening (label rows) at the mouth's middle: medians over the columns within
    :data:`MIDDLE_SHARE` of the outline's width from its centre. ``outline``: the tracked inner-lip contour in
    label coordinates (N, 2); ``width``: the label map's. None where the contour spans no such column."""
    pts = np.asarray(outline, np.float64)
    if pts.ndim != 2 or len(pts) < 3:
        return None
    top, bottom = polygon_column_edges(pts, width)
    left, right = pts[:, 0].min(), pts[:, 0].max()
    centre, reach = 0.5 * (left + right), MIDDLE_SHARE * (right - left)
    x = np.arange(int(width))
    middle = (np.abs(x - centre) <= max(reach, 0.5)) & np.isfinite(top)
    if not middle.any():
        return None
    return float(np.median(top[middle])), float(np.median(bottom[middle] - top[middle]))


def fit_upper_lip_share(samples: Iterable[tuple[float, float]]) -> float:
    """The share of an opening the upper lip takes, from ``(upper edge, opening)`` samples (one per frame, label
    rows): the least-squares slope of the upper edge on the opening, negated and clipped to
    [0, :data:`MAX_UPPER_SHARE`]. 0 (the upper lip holds still) from fewer than :data:`MIN_FRAMES` samples or
    openings that hardly vary (:data:`MIN_SPREAD`)."""
    data = np.asarray([s for s in samples if s is not None and np.all(np.isfinite(s))], np.float64).reshape(-1, 2)
    if len(data) < MIN_FRAMES or data[:, 1].std() < MIN_SPREAD:
        return 0.0
    upper, opening = data[:, 0], data[:, 1]
    slope = np.polyfit(opening, upper, 1)[0]
    return float(np.clip(-slope, 0.0, MAX_UPPER_SHARE))
