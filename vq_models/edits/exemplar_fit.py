"""How much of a borrowed closed eye's surroundings to take, decided by the shot's own blinks.

A borrowed closed eye (:mod:`vq_models.edits.exemplars`) brings the exemplar's labels from the eye's outline
grown by some share of its width. On real footage the closed lid's fold and the crease above it differ from
the open eye's, so a wide region helps (lp_d13's blinks). But the codes around the eye also carry the exemplar
frame's shading: on synthetic shots whose head turns between blinks the wide region pastes the other frame's
shading and loses. No single share suits both (figures: benchmarks/RESULTS.md, "eye_open's exemplar region").

The shot can say which suits it: a shot with two or more blinks is its own ground truth. For each blink,
``eye_open 0`` on the open frame before it (that blink left out, as the blink what-if does it) is rendered
by the shot's renderer for each candidate share and compared with the real closed frame in the eyes' boxes,
in crop space; the share with the best mean PSNR wins. It costs one 128² render per blink and candidate,
once per shot (and once per left-out set while measuring).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vq_models.edits.exemplars import PART_CONTOURS, REGION_GROW_CHOICES, PartExemplars
from vq_models.events import BLINK_CLOSED, BLINK_GAP, BLINK_LEAVE_OUT, BLINK_OPEN, find_events, left_out
from vq_models.metrics import psnr_in_boxes

__all__ = ["GrowFit", "fit_region_grow", "own_blinks", "BOX_GROW", "MIN_BLINKS"]

log = logging.getLogger("vqedit.exemplars")

# The boxes compared: each eye's outline grown by this share of its width (the blink what-if's boxes).
BOX_GROW = 0.35
# Fewer usable blinks than this and the shot keeps REGION_GROW: one blink says nothing about another.
MIN_BLINKS = 2


@dataclass(frozen=True)
class GrowFit:
    """The chosen share, each candidate's mean PSNR (dB) over the blinks, and the (open, closed) frames used."""

    grow: float
    scores: dict[float, float]
    blinks: list[tuple[int, int]]


def own_blinks(exemplars: PartExemplars, exclude: frozenset[int] = frozenset()) -> list[tuple[int, int]]:
    """The shot's blinks as (open frame, deepest closed frame), found as the blink what-if finds them
    (:mod:`vq_models.events`) on the mean of both eyes' openings; a blink whose frames from the open one to
    the closed one's leave-out window touch ``exclude`` is dropped (it may not be looked at)."""
    o = exemplars.openings()
    with warnings.catch_warnings():  # a frame where neither eye is tracked is NaN, and stays out of every blink
        warnings.simplefilter("ignore", RuntimeWarning)
        eyes = np.nanmean(np.stack([o[side] for side in PART_CONTOURS]), axis=0)
    if not np.isfinite(eyes).any():
        return []
    median = float(np.nanmedian(eyes))
    frames = exemplars.frames
    out = []
    for ref_i, event_i in find_events(eyes, BLINK_CLOSED * median, BLINK_OPEN * median, BLINK_GAP):
        span = frames[ref_i:min(len(frames), event_i + BLINK_LEAVE_OUT + 1)]
        if not exclude.intersection(span):
            out.append((frames[ref_i], frames[event_i]))
    return out


def _boxes(exemplars: PartExemplars, frames: Sequence[int], scale: float, size: int) -> list[tuple[int, int, int, int]]:
    """Per eye, the union over ``frames`` of its outline's box grown by :data:`BOX_GROW`, in render pixels."""
    boxes = []
    for side in PART_CONTOURS:
        tracks = [exemplars.track(f, side) for f in frames]
        if any(t is None for t in tracks):
            continue
        pts = np.concatenate([t.contour for t in tracks])
        g = BOX_GROW * max(float(np.ptp(t.contour[:, 0])) for t in tracks)
        x0, y0 = (pts.min(axis=0) - g) * scale
        x1, y1 = (pts.max(axis=0) + g) * scale
        boxes.append((max(0, int(x0)), max(0, int(y0)), min(size, int(np.ceil(x1)) + 1), min(size, int(np.ceil(y1)) + 1)))
    return boxes


def _closed_window(exemplars: PartExemplars, label_map: Callable[[int], np.ndarray], ref: int,
                   leave: set[int], grow: float) -> np.ndarray | None:
    """The (3, L, L) label window at ``ref`` (t-1, t, t+1, edges repeated) with each tracked eye closed by
    borrowing, as ``eye_open 0`` asks; None when an eye finds no exemplar outside ``leave``."""
    frames = exemplars.frames
    i = frames.index(ref)
    window = []
    for f in (frames[max(0, i - 1)], ref, frames[min(len(frames) - 1, i + 1)]):
        labels = label_map(f)
        for side in PART_CONTOURS:
            if exemplars.track(f, side) is None:
                continue
            closed = exemplars.close(labels, f, side, 0.0, leave, grow=grow)
            if closed is None:
                return None
            labels = closed
        window.append(labels)
    return np.stack(window)


def fit_region_grow(exemplars: PartExemplars, label_map: Callable[[int], np.ndarray],
                    render_window: Callable[[np.ndarray], np.ndarray], closed_image: Callable[[int], np.ndarray],
                    exclude: frozenset[int] = frozenset(),
                    choices: Sequence[float] = REGION_GROW_CHOICES) -> GrowFit | None:
    """Replay ``eye_open 0`` on the shot's own blinks (:func:`own_blinks`, none touching ``exclude``) for each
    share in ``choices`` and keep the best (ties: the wider). ``render_window`` renders a (3, L, L) label window
    to an (R, R, 3) sRGB crop; ``closed_image(frame)`` is that frame's real crop at the same size. None when
    fewer than :data:`MIN_BLINKS` blinks can be replayed (each needs an exemplar outside its own window)."""
    scores: dict[float, list[float]] = {float(g): [] for g in choices}
    used = []
    for ref, event in own_blinks(exemplars, exclude):
        leave = set(exclude) | left_out(exemplars.frames, event, BLINK_LEAVE_OUT)
        windows = {g: _closed_window(exemplars, label_map, ref, leave, g) for g in scores}
        if any(w is None for w in windows.values()):
            continue
        target = np.asarray(closed_image(event), np.float32)
        size = target.shape[0]
        boxes = _boxes(exemplars, (ref, event), size / float(label_map(ref).shape[0]), size)
        if not boxes:
            continue
        for g, window in windows.items():
            scores[g].append(psnr_in_boxes(np.asarray(render_window(window), np.float32), target, boxes))
        used.append((ref, event))
    if len(used) < MIN_BLINKS:
        return None
    means = {g: float(np.mean(v)) for g, v in scores.items()}
    best = max(means, key=lambda g: (round(means[g], 6), g))
    log.info("eye_open exemplars: region grow %.2f chosen on %d of the shot's own blinks (%s)", best, len(used),
             ", ".join(f"{g:.2f}: {v:.2f} dB" for g, v in means.items()))
    return GrowFit(best, means, used)
