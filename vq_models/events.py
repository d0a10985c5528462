"""Events in a per-frame signal: blinks in the eye opening, closed and opening mouths in the mouth opening.

Its own module because the blink and mouth what-ifs (``evaluation.plate``) and the exemplar fit
(``edits.exemplar_fit``, which replays the what-if on the shot's own blinks to choose how eye_open borrows)
must find the same events.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["BLINK_CLOSED", "BLINK_GAP", "BLINK_LEAVE_OUT", "BLINK_OPEN", "find_events", "gaze_events", "left_out", "ratio_events"]

# A blink: a run of frames whose eye opening is below BLINK_CLOSED x the shot's median; its open frame is
# BLINK_GAP frames before the run and at least BLINK_OPEN x the median. While a blink is the answer, frames
# within BLINK_LEAVE_OUT of its deepest frame lend nothing (neither labels nor plate detail).
BLINK_CLOSED = 0.5
BLINK_OPEN = 0.8
BLINK_GAP = 4
BLINK_LEAVE_OUT = 3


def find_events(values: np.ndarray, low: float, high: float, gap: int, before: bool = True) -> list[tuple[int, int]]:
    """(reference index, event index) pairs: each run of ``values < low`` is one event (its minimum); its
    reference is the index ``gap`` before the run (after it when ``before`` is False) if ``values`` there is
    at least ``high``. Used for blinks (eye opening) and closed mouths."""
    v = np.nan_to_num(np.asarray(values, np.float64), nan=np.inf)
    below = v < low
    pairs: list[tuple[int, int]] = []
    i = 0
    while i < len(v):
        if not below[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(v) and below[j + 1]:
            j += 1
        event = i + int(np.argmin(v[i:j + 1]))
        ref = i - gap if before else j + gap
        if 0 <= ref < len(v) and v[ref] >= high and np.isfinite(v[ref]):
            pairs.append((ref, event))
        i = j + 1
    return pairs


def left_out(frames: Iterable[int], event: int, leave_out: int) -> set[int]:
    """The frames within ``leave_out`` of ``event``: while that event is a what-if's answer they lend nothing
    (labels or plate detail), so the answer is not copied in."""
    return {f for f in frames if abs(f - event) <= leave_out}


#: An opening mouth (the jaw what-if): the mouth's opening (inner-lip height / mouth width) grows by JAW_RATIO
#: to MAX_JAW_RATIO times within ``gap`` frames, from a mouth at least JAW_MIN_OPEN open (a closed mouth has no
#: interior in its labels to open).
JAW_RATIO = 1.4
MAX_JAW_RATIO = 4.0
JAW_MIN_OPEN = 0.08
#: A half-closed eye (the squint what-if): the eyes' opening falls to SQUINT_LOW to SQUINT_HIGH of an open frame's
#: (at least BLINK_OPEN x the shot's median) within ``gap`` frames: a blink's first or last frames, caught half way.
SQUINT_LOW = 0.3
SQUINT_HIGH = 0.85
#: A gaze (the gaze what-if): both irises move sideways by at least GAZE_MIN_MOVE of the eye's width within
#: ``gap`` frames while the eyes' opening stays within GAZE_SAME_OPENING of itself (a glance, not a blink).
GAZE_MIN_MOVE = 0.06
GAZE_SAME_OPENING = 0.15
#: what-if events at most per measure
MOST_EVENTS = 8


def _largest_apart(candidates: list[tuple[float, int, int]], gap: int, most: int) -> list[tuple[int, int]]:
    """(reference, event) pairs from (size, reference, event) candidates: the largest first, each at least
    ``2 * gap`` frames from those taken (a change spans several frames, and its neighbours are the same change),
    ``most`` of them, in frame order."""
    pairs: list[tuple[int, int]] = []
    for _, ref, event in sorted(candidates, reverse=True):
        if all(abs(event - e) >= 2 * gap and abs(ref - r) >= 2 * gap for r, e in pairs):
            pairs.append((ref, event))
        if len(pairs) == most:
            break
    return sorted(pairs)


def ratio_events(values: np.ndarray, gap: int, low: float, high: float, floor: float,
                 most: int = MOST_EVENTS) -> list[tuple[int, int]]:
    """(reference, event) index pairs where ``values`` changes by a ratio: the value ``gap`` frames later is
    ``low`` to ``high`` times the reference's, the reference at least ``floor``. The ratios farthest from 1
    first, events at least ``2 * gap`` frames apart, ``most`` of them, in frame order. Used for opening mouths
    (:data:`JAW_RATIO`) and half-closed eyes (:data:`SQUINT_LOW`)."""
    v = np.nan_to_num(np.asarray(values, np.float64), nan=0.0)
    candidates = []
    for i in range(len(v) - gap):
        if v[i] >= floor and v[i] > 0 and low <= v[i + gap] / v[i] <= high:
            candidates.append((abs(np.log(v[i + gap] / v[i])), i, i + gap))
    return _largest_apart(candidates, gap, most)


def gaze_events(moves: np.ndarray, opening: np.ndarray, gap: int, most: int = MOST_EVENTS) -> list[tuple[int, int]]:
    """(reference, event) index pairs where the irises move sideways (``moves``: the eyes' mean iris offset over
    the eye's width) by at least :data:`GAZE_MIN_MOVE` within ``gap`` frames, the eyes' ``opening`` staying
    within :data:`GAZE_SAME_OPENING` of itself. The largest moves first, events at least ``2 * gap`` frames
    apart, ``most`` of them, in frame order."""
    m = np.asarray(moves, np.float64)
    o = np.asarray(opening, np.float64)
    candidates = []
    for i in range(len(m) - gap):
        j = i + gap
        move = m[j] - m[i]
        if np.isfinite(move) and abs(move) >= GAZE_MIN_MOVE and np.isfinite(o[i]) and np.isfinite(o[j]) \
                and o[i] > 0 and abs(o[j] / o[i] - 1.0) <= GAZE_SAME_OPENING:
            candidates.append((abs(move), i, j))
    return _largest_apart(candidates, gap, most)
