"""Expression transfer end to end: a driver's performance → the target shot's labels → Stage II → plate.

Per target frame t and driver frame d (paper Sec. 4: the lower face of the face model drives Stage I):

1. :class:`~vq_models.face.expression.Retarget` puts the driver's expression at d (relative to its neutral
   frame) on the target's tracking at t, in the target's head pose and identity, at ``strength``;
2. the local face overlay is re-rendered for that tracking over t's aligned crop by the function ``prep``
   wrote the shot's overlays with (:func:`~vq_models.face.overlay.frame_overlay`), in the renderer the shot
   was prepped with (``prep.overlay`` in shot.json: the 3D mesh, or the 2D polygons for shots prepped
   without a mesh or before the 3D overlay), so Stage I sees what it was trained on;
3. Stage I labels the new overlay (``labels_from_image``); the new labels replace the shot's own only where
   the overlay changed (grown by :data:`LABEL_GROW` label pixels for the encoder's reach) and, when the
   shot has a prior, outside the mouth (:data:`DRIVEN_PARTS`) only where the pixel's part changes (skin →
   lip, skin → background at the jaw line): another skin code is Stage I's noise, and taking it re-rendered
   the whole lower face, losing the plate's grain there. ``strength`` 0 gives the shot's own labels bit for
   bit;
4. Stage II renders the window t-1, t, t+1 from the transferred sequence (d-1, d, d+1, clamped to the
   driver's frames), and the render is composited edit-only inside the union of the target's and the
   transferred lower-face regions (feathered): the plate elsewhere is untouched bit for bit.

The in-process command, the render server and the host all render through :meth:`ExpressionTransfer.render_frame`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vq_models.edits.ops import MOUTH_INNER
from vq_models.errors import InputError
from vq_models.face.expression import Retarget, RetargetOptions
from vq_models.face.masks import roi_mask
from vq_models.face.overlay import FrameOverlay, frame_overlay, shot_overlay_kind
from vq_models.face.prep import PrepConfig
from vq_models.frame_render import FrameRender
from vq_models.runtime import LabelOverride, ShotModel
from vq_models.shot import Shot
from vq_models.tracking.schema import Tracking, load_tracking

#: Label pixels the new labels reach beyond the changed overlay pixels (Stage I's encoder sees neighbours).
LABEL_GROW = 1
#: The parts a driver's mouth moves: their pixels take Stage I's new code whatever it is. Elsewhere (skin,
#: nose, background) a new code of the same part is Stage I's noise and the shot's own code stays, so the
#: plate keeps its grain and stubble there instead of a soft re-render. On real footage an auto prior files
#: some lip codes under the mouth interior (and the reverse), so "same part" in the mouth is no evidence of
#: "unchanged": keeping own codes there too took lp_d13 → lp_d0's re-tracked correlation to 0.81 (0.88 as it
#: is; 0.92 taking every new code, with a soft lower face).
DRIVEN_PARTS = ("upper_lip", "lower_lip", *MOUTH_INNER)
#: Strengths accepted (above 1 exaggerates the driver's expression).
MAX_STRENGTH = 2.0
_CACHE_FRAMES = 24
#: A shot frame lends its plate detail to the transferred lower face (:mod:`vq_models.detail`'s donors) only
#: if its own mouth opening ``h`` is within ``absolute + relative * h`` of the transferred one (canonical
#: units, :mod:`vq_models.face.expression`): matched by labels alone, a smiling frame lent its teeth to a
#: mouth the driver had closed (lp_d13 driving lp_d0).
DONOR_OPENING_TOLERANCE = (0.04, 0.25)


class DriverShot:
    """A driver performance: a prepped shot's frames and tracking (no trained model needed)."""

    def __init__(self, root: str | Path):
        self.shot = Shot.open(root)
        if not self.shot.tracking_path.is_file():
            raise InputError(
                f"{self.shot.tracking_path}: the driver shot has no tracking (run `vqedit prep`)"
            )
        self.tracking: Tracking = load_tracking(self.shot.tracking_path)

    @property
    def name(self) -> str:
        return self.shot.name

    @property
    def frames(self) -> list[int]:
        return self.shot.frames

    def check_frame(self, frame: int) -> int:
        frame = int(frame)
        if frame not in set(self.frames):
            raise InputError(
                f"driver frame {frame}: not in driver shot {self.name!r} ({self.frames[0]}-{self.frames[-1]})"
            )
        return frame


def driver_frame_map(frames: Sequence[int], driver_frames: Sequence[int]) -> dict[int, int]:
    """Target frames → driver frames, paired in order from the start of each; when the driver range is
    shorter, its last frame holds (clamped, never looped: a held expression is what an animator expects
    of a performance that ended)."""
    if not driver_frames:
        raise InputError("--driver-frames: no driver frames")
    return {int(f): int(driver_frames[min(i, len(driver_frames) - 1)]) for i, f in enumerate(frames)}


def check_strength(strength: float, what: str = "strength") -> float:
    s = float(strength)
    if not np.isfinite(s) or not 0.0 <= s <= MAX_STRENGTH:
        raise InputError(
            f"{what} {strength}: expected 0-{MAX_STRENGTH:g} (0 = the shot as it is, 1 = the driver's expression)"
        )
    return s


class ExpressionTransfer:
    """One driver on one trained target shot. Thread-safe; caches the last frames' labels (a range render
    labels each frame once although every window uses it three times)."""

    def __init__(self, model: ShotModel, driver: DriverShot, options: RetargetOptions | None = None):
        if not model.shot.tracking_path.is_file():
            raise InputError(f"{model.shot.tracking_path}: the target shot has no tracking")
        self.model = model
        self.driver = driver
        self.options = options or RetargetOptions()
        self.retarget = Retarget(
            load_tracking(model.shot.tracking_path),
            model.frames,
            driver.tracking,
            driver.frames,
            self.options,
        )
        #: the renderer Stage I was trained on (shot.json's prep.overlay), used for every re-render
        self.overlay_kind = shot_overlay_kind(model.shot.meta)
        self._heights = self.retarget.target_heights()
        self._lock = threading.Lock()
        self._labels: OrderedDict[tuple[int, int, float], tuple[Any, Any, np.ndarray]] = OrderedDict()
        self._original: OrderedDict[int, FrameOverlay] = OrderedDict()

    def _remember(self, cache: OrderedDict, key: Any, value: Any) -> None:
        with self._lock:
            cache[key] = value
            cache.move_to_end(key)
            while len(cache) > _CACHE_FRAMES:
                cache.popitem(last=False)

    def original_overlay(self, frame: int) -> FrameOverlay:
        """The shot's own tracking at ``frame`` rendered by the same path as the transferred one."""
        with self._lock:
            hit = self._original.get(frame)
        if hit is None:
            shot = self.model.shot
            hit = frame_overlay(
                shot.aligned(frame), self.retarget.target.tracks[frame], shot.transform(frame), self.overlay_kind
            )
            self._remember(self._original, frame, hit)
        return hit

    def overlay(self, frame: int, driver_frame: int, strength: float) -> FrameOverlay:
        """The transferred overlay ĉ at ``frame`` (crop space) and its lower-face region."""
        shot = self.model.shot
        track = self.retarget.track(frame, driver_frame, strength)
        return frame_overlay(shot.aligned(frame), track, shot.transform(frame), self.overlay_kind)

    def roi(self, frame: int, driver_frame: int, strength: float) -> np.ndarray:
        """The ROI (S, S) of the transferred track at ``frame``, drawn as prep drew the shot's (its grow), for a
        Stage I whose region tap reads it: the transferred lips' ROI, not the shot's own."""
        shot = self.model.shot
        track = self.retarget.track(frame, driver_frame, strength)
        transform = shot.transform(frame)
        grow = float((shot.meta.get("prep", {}).get("config") or {}).get("roi_grow", PrepConfig.roi_grow))
        return roi_mask({k: transform.to_crop(v) for k, v in track.contours.items()}, shot.crop_size, grow=grow)

    def frame_labels(self, frame: int, driver_frame: int, strength: float) -> tuple[np.ndarray, np.ndarray]:
        """(labels (L, L) uint8, region (S, S) float32) at ``frame`` with the driver's ``driver_frame``: the
        shot's own labels except where the overlay changed (and, outside the mouth, the part: step 3 of the
        module docstring), and the union of both lower-face regions. The prior is read on every call (an
        artist may regroup codes on a running server); only Stage I's relabelling is cached."""
        own = self.model.label_map(frame)
        fresh, reach, region = self._relabelled(frame, driver_frame, strength)
        if fresh is None:
            return own, region
        prior = self.model.prior(required=False)
        if prior is not None:  # a new code of the same steady part is Stage I's noise, not the driver's
            parts = prior.part_table(leave_out=DRIVEN_PARTS)
            reach = reach & ((parts[own] < 0) | (parts[fresh] != parts[own]))
        return np.where(reach, fresh, own).astype(np.uint8), region

    def _relabelled(self, frame: int, driver_frame: int,
                    strength: float) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
        """(Stage I's labels of the transferred overlay, where they may replace the shot's own, the lower-face
        region), cached: the expensive part of :meth:`frame_labels`. The labels are None where nothing changed."""
        key = (int(frame), int(driver_frame), float(strength))
        with self._lock:
            hit = self._labels.get(key)
        if hit is not None:
            return hit
        orig = self.original_overlay(int(frame))
        out: tuple[np.ndarray | None, np.ndarray | None, np.ndarray] = (None, None, orig.region)
        if strength > 0:
            new = self.overlay(frame, driver_frame, strength)
            region = np.maximum(orig.region, new.region)
            out = (None, None, region)
            diff = np.abs(new.image - orig.image).max(-1) > 0.25 / 255.0
            if diff.any():
                fg = np.maximum(self.model.shot.fg_mask(frame), new.region)
                roi = self.roi(frame, driver_frame, strength) if self.model.stage1.needs_roi else None
                fresh = self.model.labels_from_image(new.image, fg_mask=fg, roi_mask=roi)
                size = fresh.shape[0]
                reach = cv2.resize(diff.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) > 0
                k = 2 * LABEL_GROW + 1
                reach = cv2.dilate(reach.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
                out = (fresh, reach, region)
        self._remember(self._labels, key, out)
        return out

    def detail_exclude(self, frame: int, driver_frame: int, strength: float) -> frozenset[int]:
        """The shot frames whose mouth opening is too far from the transferred one at ``frame`` to lend their
        plate detail there (:data:`DONOR_OPENING_TOLERANCE`)."""
        goal = self.retarget.height(self.retarget.track(frame, driver_frame, strength))
        absolute, relative = DONOR_OPENING_TOLERANCE
        tolerance = absolute + relative * max(goal, 0.0)
        return frozenset(f for f, h in self._heights.items() if abs(h - goal) > tolerance)

    def driver_frame_at(self, frame: int, anchor: int, driver_frame: int) -> int:
        """The driver frame for shot ``frame`` of the window around ``anchor`` (which shows ``driver_frame``):
        the same step through both shots' frame lists, clamped to the driver's."""
        t_frames, d_frames = self.model.frames, self.driver.frames
        step = t_frames.index(int(frame)) - t_frames.index(int(anchor))
        j = d_frames.index(int(driver_frame)) + step
        return d_frames[min(max(j, 0), len(d_frames) - 1)]

    def override(self, frame: int, driver_frame: int, strength: float = 1.0) -> LabelOverride:
        """What :meth:`ShotModel.render_frame` starts from to show ``driver_frame`` at ``frame``."""
        frame = self.model._frame(frame)
        driver_frame = self.driver.check_frame(driver_frame)
        strength = check_strength(strength)

        def labels(f: int) -> np.ndarray:
            return self.frame_labels(f, self.driver_frame_at(f, frame, driver_frame), strength)[0]

        return LabelOverride(
            labels,
            self.frame_labels(frame, driver_frame, strength)[1],
            self.detail_exclude(frame, driver_frame, strength),
        )

    def render_frame(
        self,
        frame: int,
        driver_frame: int,
        strength: float = 1.0,
        program: Any = None,
        *,
        feather: float = 8.0,
        mode: str = "edit-only",
        detail: str | None = None,
        labels: np.ndarray | None = None,
    ) -> FrameRender:
        """``frame`` of the target with the driver's expression at ``driver_frame``, rendered into plate
        space (``program`` and ``labels`` as :meth:`ShotModel.render_frame` takes them, on top)."""
        return self.model.render_frame(
            frame,
            program,
            feather=feather,
            mode=mode,
            detail=detail,
            labels=labels,
            override=self.override(frame, driver_frame, strength),
        )
