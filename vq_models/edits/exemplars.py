"""Label edits borrowed from the shot itself: a closed eye as this shot's own closed eyes look in its codes.

Drawing a lid over the eye opening geometrically (``ops.eye_open``'s column rule) gives labels the renderer
has never seen together: the lid codes of an open eye stretched over where the iris was. On real footage the
renderer then draws a blurred smear with the iris showing through. But a shot that blinks holds real closed
eyes, and the renderer was trained on their labels. So a strongly closing ``eye_open`` takes the eye region
from the shot's most closed frame for that eye (the *exemplar*), moved onto this frame's eye with the
similarity that maps the exemplar's eye corners onto this frame's: the labels then ask for what a real
closed eye looks like in this shot. Without such a frame (a shot that never blinks) the op keeps its
geometric rule. (The same borrowing for ``mouth_open`` measured worse than the column rule on lp_d13's closed
mouth, benchmarks/RESULTS.md, so the mouth keeps its rule.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

# An eye counts as closed (and may lend its labels) below this share of the shot's median opening, and the
# exemplar path is taken when the asked-for opening is below it too: near-open values keep the column rule,
# which moves the lid without replacing the iris's codes.
CLOSED_SHARE = 0.5
# The replaced region: the part's contour (this frame's and the exemplar's, moved) grown by a share of its
# width. REGION_GROW is the share where the shot cannot say (fewer than two usable blinks): on lp_d13 the lid's
# fold and the crease above it come from the exemplar too. A shot with blinks enough chooses between the two
# regimes in REGION_GROW_CHOICES, the outlines alone or with fold and crease, by replaying eye_open on its own
# blinks (edits/exemplar_fit.py).
REGION_GROW = 0.3
REGION_GROW_CHOICES = (0.0, 0.3)
# Where ``eye_open`` closed an eye, frames whose eye is open wider than asked (plus this share of the shot's
# median opening) lend no plate detail: their band carries an iris, whatever their labels say.
DONOR_OPENING_SLACK = 0.25
# part → (contour outlining it, contour whose height measures its opening; None = the outline itself)
PART_CONTOURS = {"left": ("left_eye", None), "right": ("right_eye", None)}
# part → the contour of its iris (where the eye looks)
PART_IRISES = {"left": "left_iris", "right": "right_iris"}
# ``gaze`` borrows a frame's eye whose iris sits within this share of the eye's width of where the edit asks it
# to (lp_d0's glances found frames within 0.003-0.016), and whose opening is within GAZE_OPENING_SLACK of this
# frame's: a look the shot has shown, in its own codes
GAZE_MATCH = 0.03
GAZE_OPENING_SLACK = 0.25
#: the mouth as a part: its outline and the contour whose height is its opening (``mouth_open``'s borrow)
MOUTH = "mouth"
MOUTH_CONTOURS = ("lips_outer", "lips_inner")
# ``mouth_open`` with ``borrow`` takes a frame whose mouth opens within this share of the asked opening (its
# tracked inner-lip height over its outer-lip width); of those, by the opening in thirds of it, then the frame
# whose upper lip has this frame's shape to the label pixel (:func:`upper_lip_offset`: a smile's, a pout's), then
# the nearest head pose
MOUTH_MATCH = 0.15


@dataclass(frozen=True)
class PartTrack:
    """One eye (or the mouth, :data:`MOUTH`) at one frame in label-map pixels: its outline and its two corners
    (by x), its opening, and where an eye's iris looks (None where the iris is not tracked, and for the mouth)."""

    contour: np.ndarray  # (N, 2)
    corners: np.ndarray  # (2, 2): leftmost, rightmost outline point
    opening: float  # opening height / outline width
    gaze: tuple[float, float] | None = None  # iris centre - outline box centre, over the outline width


def eye_gaze(outline: np.ndarray, iris: np.ndarray) -> tuple[float, float] | None:
    """Where an eye looks: its iris contour's centre less the centre of the eye outline's box, over the
    outline's width (``gaze``'s unit; the same in any space a similarity maps to). None for a degenerate
    outline or iris."""
    pts = np.asarray(outline, np.float64)[:, :2]
    ring = np.asarray(iris, np.float64)[:, :2]
    width = float(np.ptp(pts[:, 0])) if len(pts) >= 3 else 0.0
    if width <= 0 or len(ring) < 3:
        return None
    g = (ring.mean(axis=0) - (pts.min(axis=0) + pts.max(axis=0)) / 2.0) / width
    return float(g[0]), float(g[1])


def part_track(outline: np.ndarray, opening: np.ndarray | None = None,
               iris: np.ndarray | None = None) -> PartTrack | None:
    """A part from its outline (and the contour whose height is its opening, default the outline, and the
    iris's contour, which says where the eye looks: :func:`eye_gaze`)."""
    pts = np.asarray(outline, np.float64)[:, :2]
    inner = pts if opening is None else np.asarray(opening, np.float64)[:, :2]
    if pts.shape[0] < 3 or inner.shape[0] < 3:
        return None
    w = float(np.ptp(pts[:, 0]))
    if w <= 0:
        return None
    corners = np.stack([pts[np.argmin(pts[:, 0])], pts[np.argmax(pts[:, 0])]])
    gaze = eye_gaze(pts, iris) if iris is not None else None
    return PartTrack(pts, corners, float(np.ptp(inner[:, 1])) / w, gaze)


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


def upper_lip_offset(donor: PartTrack, current: PartTrack) -> float:
    """How far (label pixels, mean over its points) the donor's upper outline lies from ``current``'s once moved
    onto it by the two mouths' corners: the points of the outline above the line between ``current``'s corners,
    matched by index (a tracker's contour has the same points every frame; inf where the counts differ). Opening
    drops the lower lip; the upper one keeps the mouth's shape (a smile, a pout), which a borrowed mouth should
    share."""
    if len(donor.contour) != len(current.contour):
        return float("inf")
    m = similarity(donor.corners, current.corners)
    moved = donor.contour @ m[:, :2].T + m[:, 2]
    upper = current.contour[:, 1] < float(current.corners[:, 1].mean())
    if not upper.any():
        return float("inf")
    return float(np.mean(np.hypot(*(moved[upper] - current.contour[upper]).T)))


def pose_distance(a: np.ndarray, b: np.ndarray) -> float:
    """How far two in-plane head poses (2×2 linear parts of plate-to-crop similarities) are apart: the
    Frobenius norm of ``a b⁻¹ - I``, i.e. of the relative rotation and scale (independent of plate size)."""
    rel = np.asarray(a, np.float64) @ np.linalg.inv(np.asarray(b, np.float64))
    return float(np.linalg.norm(rel - np.eye(2)))


def deepest_of_each_blink(frames: Sequence[int], closed: Sequence[int]) -> list[int]:
    """The most closed frame of each run of consecutive closed frames (``closed``: most closed first;
    ``frames``: the shot's frames in order). A blink's edges are half-closed lids that tracking still counts
    as closed (a synthetic closed eye keeps 0.43-0.44 of the median whether the lid is half or fully down),
    so only each blink's deepest frame may lend."""
    index = {f: i for i, f in enumerate(frames)}
    members = {index[f] for f in closed}
    taken: set[int] = set()
    out = []
    for f in closed:  # most closed first: the first frame met of a run is its deepest
        if index[f] in taken:
            continue
        out.append(f)
        for step in (-1, 1):  # claim the whole run so that its other frames are skipped
            j = index[f]
            while j in members:
                taken.add(j)
                j += step
    return out


def pose_nearest_blink(frames: Sequence[int], closed: Sequence[int], pose: Callable[[int], np.ndarray],
                       like: int) -> int:
    """Of the deepest frames of the shot's blinks (:func:`deepest_of_each_blink`), the one whose head pose is
    nearest frame ``like``'s (:func:`pose_distance`)."""
    here = pose(like)
    return min(deepest_of_each_blink(frames, closed), key=lambda f: pose_distance(pose(f), here))


class PartExemplars:
    """Per-shot index of each eye's and the mouth's opening over every frame, and the label transfers that
    borrow a part from another frame: a closed eye, a look, a wider mouth.

    ``parts(frame)`` gives ``{"left": PartTrack, "right": PartTrack, "mouth": PartTrack}`` in label pixels (any
    may be missing); ``label_map(frame)`` the frame's Stage I labels; ``pose(frame)`` (optional) the head's in-plane
    pose as the 2×2 linear part of the frame's plate-to-crop transform, so the exemplar can be the closed
    frame whose head is turned and scaled most like this one's. ``region_grow(exclude)`` (optional) the
    share of the eye's width to take around it when frames ``exclude`` may not lend (None: :data:`REGION_GROW`);
    the shot model fits it on the shot's own blinks (:func:`vq_models.edits.exemplar_fit.fit_region_grow`)."""

    def __init__(self, frames: list[int], parts: Callable[[int], Mapping[str, PartTrack]],
                 label_map: Callable[[int], np.ndarray], pose: Callable[[int], np.ndarray] | None = None,
                 region_grow: Callable[[frozenset[int]], float | None] | None = None):
        self.frames = list(frames)
        self._eyes = parts
        self._label_map = label_map
        self._pose = pose
        self._region_grow = region_grow
        self._openings: dict[str, np.ndarray] | None = None
        self._lock = threading.Lock()

    def openings(self) -> dict[str, np.ndarray]:
        with self._lock:
            if self._openings is None:
                table: dict[str, list[float]] = {part: [] for part in (*PART_CONTOURS, MOUTH)}
                for f in self.frames:
                    tracks = self._eyes(f)
                    for side in table:
                        t = tracks.get(side)
                        table[side].append(t.opening if t is not None else np.nan)
                self._openings = {k: np.asarray(v) for k, v in table.items()}
            return self._openings

    def median(self, side: str) -> float:
        return float(np.nanmedian(self.openings()[side]))

    def closed_frames(self, side: str, exclude: set[int] | None = None) -> list[int]:
        """The shot's frames where part ``side`` is closed (below CLOSED_SHARE of its median opening), most
        closed first, leaving out ``exclude``."""
        o = self.openings()[side]
        limit = CLOSED_SHARE * self.median(side)
        order = np.argsort(np.nan_to_num(o, nan=np.inf))
        return [self.frames[i] for i in order if o[i] < limit and self.frames[i] not in (exclude or set())]

    def track(self, frame: int, side: str) -> PartTrack | None:
        """Part ``side`` at ``frame`` in label pixels, None where it is not tracked."""
        return self._eyes(frame).get(side)

    def opening_at(self, frame: int, side: str) -> float | None:
        """Part ``side``'s tracked opening at ``frame`` (label pixels), None where it is not tracked."""
        track = self._eyes(frame).get(side)
        return None if track is None else float(track.opening)

    def widest(self, side: str, exclude: set[int] | None = None) -> float | None:
        """The widest tracked opening of part ``side`` over the shot's frames not in ``exclude`` (None: never
        tracked)."""
        kept = [v for f, v in zip(self.frames, self.openings()[side], strict=True)
                if f not in (exclude or set()) and v > 0]
        return float(max(kept)) if kept else None

    def more_open_than(self, side: str, opening: float) -> set[int]:
        """The frames where part ``side`` is open wider than ``opening`` or not tracked."""
        o = self.openings()[side]
        return {f for f, v in zip(self.frames, o, strict=True) if not v <= opening}

    def too_open_to_lend(self, frame: int, side: str, value: float) -> set[int]:
        """Frames whose part ``side`` is open wider than an edit closing it to ``value`` × its opening at
        ``frame`` asks (plus :data:`DONOR_OPENING_SLACK` of the shot's median): their plate there shows what
        the edit closed (an iris). A frame the shot counts as closed (below :data:`CLOSED_SHARE` of the
        median) always may lend: a tracked closed eye keeps some height (the lashes)."""
        current = self.opening_at(frame, side)
        if current is None or value >= 1.0:
            return set()
        median = self.median(side)
        limit = max(float(value) * current + DONOR_OPENING_SLACK * median, CLOSED_SHARE * median)
        return self.more_open_than(side, limit)

    def closed_donor(self, side: str, exclude: set[int] | None = None, like: int | None = None) -> int | None:
        """The exemplar for part ``side`` (not in ``exclude``), if the shot closes it at all: among its closed
        frames the one whose head pose is nearest frame ``like``'s (:func:`pose_distance`), else the most
        closed. Why the pose: a closed lid's shading and foreshortening follow the head, and the tracked
        openings of closed eyes differ by lash noise only (0.27-0.50 of the median on lp_d13). Only each blink's
        deepest frame is a candidate (:func:`deepest_of_each_blink`). The pose beats the most closed frame on
        lp_d13's four blinks and on the synthetic eyes-closed what-if (benchmarks/RESULTS.md)."""
        frames = self.closed_frames(side, exclude)
        if not frames:
            return None
        if like is None or self._pose is None:
            return frames[0]
        return pose_nearest_blink(self.frames, frames, self._pose, like)

    def _moved(self, donor: int, side: str, current: PartTrack, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
        """The donor's labels and outline moved onto ``current`` by the similarity of the two parts' corners."""
        track = self._eyes(donor).get(side)
        if track is None:
            return None
        m = similarity(track.corners, current.corners)
        moved = cv2.warpAffine(self._label_map(donor), m, (shape[1], shape[0]), flags=cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_REPLICATE)
        return moved, track.contour @ m[:, :2].T + m[:, 2]

    def borrowed_share(self, frame: int, side: str, value: float) -> float:
        """How far ``value`` is into the borrowing range for part ``side`` at ``frame``: 0 where the asked-for
        opening is :data:`CLOSED_SHARE` of the shot's median (where borrowing starts), 1 at ``value`` 0. A
        keyed close draws the borrowed eye down from the top over that range (``ops.eye_open``) instead of
        swapping it in whole at its start."""
        current = self._eyes(frame).get(side)
        if current is None or current.opening <= 0:
            return 0.0
        start = CLOSED_SHARE * self.median(side) / current.opening
        return float(np.clip(1.0 - value / start, 0.0, 1.0)) if start > 0 else 0.0

    def close(self, labels: np.ndarray, frame: int, side: str, value: float,
              exclude: set[int] | None = None, grow: float | None = None) -> np.ndarray | None:
        """``labels`` with part ``side``'s region taken from the shot's most closed frame for it, or None when
        the exemplar path does not apply (value not closed enough, part not tracked, no closed frame).
        ``grow``: the region's share of the eye's width (default: :meth:`region_grow` for ``exclude``)."""
        current = self._eyes(frame).get(side)
        if current is None or value * current.opening >= CLOSED_SHARE * self.median(side):
            return None
        donor = self.closed_donor(side, (exclude or set()) | {int(frame)}, like=int(frame))
        if donor is None:
            return None
        return self.transplant(labels, frame, side, donor, self.region_grow(exclude) if grow is None else grow)

    def gaze_donor(self, frame: int, side: str, target: tuple[float, float],
                   exclude: set[int] | None = None) -> int | None:
        """The frame whose eye ``side`` looks nearest ``target`` (a :class:`PartTrack` gaze), within
        :data:`GAZE_MATCH`, open as wide as at ``frame`` (within :data:`GAZE_OPENING_SLACK`), not ``frame`` and
        not in ``exclude``; ties go to the nearest head pose. None when the shot never looked there."""
        current = self._eyes(frame).get(side)
        if current is None or current.opening <= 0:
            return None
        want = np.asarray(target, np.float64)
        best: list[tuple[float, int]] = []
        for f in self.frames:
            if f == frame or f in (exclude or set()):
                continue
            track = self._eyes(f).get(side)
            if track is None or track.gaze is None or abs(track.opening / current.opening - 1.0) > GAZE_OPENING_SLACK:
                continue
            d = float(np.max(np.abs(np.asarray(track.gaze) - want)))
            if d <= GAZE_MATCH:
                best.append((d, f))
        if not best:
            return None
        if self._pose is None:
            return min(best)[1]
        here = self._pose(frame)
        return min(best, key=lambda df: (round(df[0] / (GAZE_MATCH / 3)), pose_distance(self._pose(df[1]), here)))[1]

    def opening_donor(self, frame: int, side: str, value: float, exclude: set[int] | None = None) -> int | None:
        """The frame whose part ``side`` (the mouth) opens ``value`` times as wide as at ``frame``: its tracked
        opening within :data:`MOUTH_MATCH` of that (relative), not ``frame``, not in ``exclude``; of those the
        nearest opening in thirds of the match, then the upper lip's shape (:func:`upper_lip_offset`, to the label
        pixel), then the head pose. None when the part is not tracked here or the shot never opens it that wide."""
        current = self._eyes(frame).get(side)
        if current is None or current.opening <= 0 or value <= 0:
            return None
        want = float(value) * current.opening
        best: list[tuple[float, float, int]] = []
        for f, opening in zip(self.frames, self.openings()[side], strict=True):
            if f == frame or f in (exclude or set()) or not opening > 0:
                continue
            d = abs(float(opening) / want - 1.0)
            track = self._eyes(f).get(side) if d <= MOUTH_MATCH else None
            if track is not None:
                shape = upper_lip_offset(track, current)  # inf (last) where the outlines' points differ
                best.append((round(d / (MOUTH_MATCH / 3)), round(shape) if np.isfinite(shape) else shape, f))
        if not best:
            return None
        if self._pose is None:
            return min(best)[2]
        here = self._pose(frame)
        return min(best, key=lambda b: (b[0], b[1], pose_distance(self._pose(b[2]), here)))[2]

    def open_wider(self, labels: np.ndarray, frame: int, side: str, value: float,
                   exclude: set[int] | None = None) -> tuple[np.ndarray, int] | None:
        """``labels`` with part ``side`` (the mouth) taken, within both outlines, from the shot's frame that
        opens it ``value`` times as wide as this frame (:meth:`opening_donor`), and that frame; None where none
        does.

        Why: stretching the interior's label rows asks the renderer for a mouth it never saw (teeth drawn tall,
        the cavity a flat band), while a frame of the shot that opens as wide has the lips, teeth and tongue as
        they are at that opening, in codes Stage II was trained on (``vqedit eval --jaw --borrow``,
        benchmarks/RESULTS.md). The outlines alone, no margin around them: a wider region scored lower on
        lp_d13's openings."""
        donor = self.opening_donor(frame, side, value, exclude)
        if donor is None:
            return None
        out = self.transplant(labels, frame, side, donor, grow=0.0)
        return None if out is None else (out, donor)

    def look(self, labels: np.ndarray, frame: int, side: str, shift: tuple[float, float],
             exclude: set[int] | None = None) -> tuple[np.ndarray, int] | None:
        """``labels`` with eye ``side`` taken, within both outlines, from the shot's frame that looks where
        ``shift`` (in eye widths, ``gaze``'s value) moves this frame's iris to (:meth:`gaze_donor`), and that
        frame; None when the iris is not tracked here or no frame looks there.

        Why: moving the iris's labels leaves where it was to one eye-white code, which on real footage is a
        shadowed one and renders as a flat grey patch; a frame of the shot that looks there has the white, the
        lid and the iris's shading as they are (on lp_d0 its pixels in the glance what-if's boxes gain 7.6-14.1
        dB where the moved iris gains 3.2-4.5; benchmarks/RESULTS.md)."""
        current = self._eyes(frame).get(side)
        if current is None or current.gaze is None:
            return None
        target = (current.gaze[0] + float(shift[0]), current.gaze[1] + float(shift[1]))
        donor = self.gaze_donor(frame, side, target, exclude)
        if donor is None:
            return None
        out = self.transplant(labels, frame, side, donor, grow=0.0)
        return None if out is None else (out, donor)

    def region_grow(self, exclude: set[int] | frozenset[int] | None = None) -> float:
        """The share of the eye's width taken around a borrowed eye when frames ``exclude`` may not lend: the
        shot's fitted choice, else :data:`REGION_GROW`."""
        fitted = self._region_grow(frozenset(exclude or ())) if self._region_grow is not None else None
        return REGION_GROW if fitted is None else float(fitted)

    def transplant(self, labels: np.ndarray, frame: int, side: str, donor: int,
                   grow: float = REGION_GROW) -> np.ndarray | None:
        """``labels`` (frame ``frame``'s) with part ``side``'s region replaced by frame ``donor``'s labels there,
        moved by the similarity of the two parts' corners; the region is both outlines (this frame's and the
        donor's, moved) grown by ``grow`` × the eye's width (at 0, the outlines alone). None when either frame
        does not track the part."""
        current = self._eyes(frame).get(side)
        moved = self._moved(donor, side, current, labels.shape) if current is not None else None
        if moved is None:
            return None
        region = np.zeros(labels.shape, np.uint8)
        for poly in (current.contour, moved[1]):
            cv2.fillPoly(region, [np.round(poly).astype(np.int32).reshape(-1, 1, 2)], 1)
        r = int(round(grow * float(np.ptp(current.contour[:, 0]))))
        if r > 0:
            region = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        region = region.astype(bool)
        out = labels.copy()
        out[region] = moved[0][region]
        return out
