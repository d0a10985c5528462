"""Expression retargeting: a driver shot's lower-face expression re-posed onto a target shot's face.

Each shot's points (contours, mouth corners, and the mesh when both shots have one) are expressed in a
canonical face frame fixed by the *eyes only* (image-left eye at (-1, 0), image-right at (1, 0); mesh depth
divided by the same scale), which removes head position, roll and scale but keeps what the mouth and jaw
do. Each shot has a **neutral frame** (chosen automatically: among the frames with the most closed mouth,
the one nearest their median shape, i.e. the most typical closed pose; overridable).

**Mouth opening is absolute, the rest relative.** A talking target's most closed frame may still be
open, and adding a closed driver's offsets to it would keep the target's mouth open. So the opening is
separated from the rest of the expression. Per shot, the opening is ``h`` = inner-lip area / mouth width
(the mean gap between the inner lips, linear in the jaw drop), and every point's canonical position is
fitted over the shot's frames as linear in it, ``p(t) ≈ p̄ + B (h(t) - h̄)``: ``B`` is the shot's own
**opening mode** (how its jaw, chin, lips and corners move per unit of opening). ``B`` is a least-squares
slope, pulled towards a prior with the weight of :data:`MODE_PRIOR` (the driver's mode for the target,
zero for the driver), so a shot that never opens its mouth borrows the driver's way of opening (the mode
is scale-free: a displacement per unit of a length). Then, with ``n`` the neutral frames and ``s`` the
ratio of the two shots' closed mouth widths (a narrow-mouthed target opens a narrower mouth):

    target_closed = target[n] - B_t * h_t[n]                  (the target's neutral, inner lips meeting)
    opening(d)    = s * (h_d[d] - h_d[n])                     (the driver's opening over its neutral)
    rest(d)       = s * (driver[d] - driver[n] - B_d * (h_d[d] - h_d[n]))   (lip shape, width, smile)
    goal(d)       = target_closed + B_t * opening(d) + rest(d)

i.e. the target's *absolute* opening is set along its own opening mode: closed is a zero gap (the inner
lips meet, as a tracker's mesh has them on a closed mouth), and the opening is the driver's relative to
its own closed neutral, in the target's scale; lip shape and width changes stay relative deltas. (A
driver whose neutral still shows a gap counts that gap as closed: "neutral" is what closed means for it.) Openings and deltas are smoothed over the driver's time. The target's lower face at
strength ``s``:

    new = own + s * w * (goal - own)

with ``w`` rising from 0 at the nose to 1 below it (:func:`lower_face_weight`), so eyes and brows keep the
target's own motion, ``s = 0`` is the target as shot and ``s = 1`` replaces its mouth motion with the
driver's. Mapping back through the target frame's eye frame re-poses it in the target's head pose. The
overlay of a retargeted track is rendered by :func:`~vq_models.face.overlay.frame_overlay`, the function
``prep`` wrote the shot's overlays with, in the renderer the shot was prepped with, so Stage I labels the
transferred frames like the shot's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vq_models.errors import InputError
from vq_models.face import topology
from vq_models.face.overlay import frame_overlay, has_mesh, shot_overlay_kind
from vq_models.shot import FRAME_NAME, Shot
from vq_models.tracking.schema import FrameTrack, Tracking, load_tracking, save_tracking

LOWER_FACE_KEYS = ("face_oval", "lips_outer", "lips_inner")
#: Frames within this share of the opening range above the most closed one are neutral candidates.
NEUTRAL_BAND = 0.1
#: Weight of the prior in a shot's opening mode, in canonical units² of opening spread (the weight of two
#: frames a twentieth of the half eye distance from the mean opening): a shot whose mouth moves more than
#: that has its own mode, one that barely moves takes the prior's.
MODE_PRIOR = 0.005


def _eye_frame(lm5: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(origin, M) with canonical = (p - origin) @ M.T; M is a similarity from the eye pair."""
    lm = np.asarray(lm5, np.float64)
    origin = (lm[0] + lm[1]) / 2
    ax = (lm[1] - lm[0]) / 2
    s2 = float(ax @ ax)
    if s2 < 1e-12:
        raise InputError("tracking: the two eye landmarks coincide; cannot transfer expression")
    m = np.array([[ax[0], ax[1]], [-ax[1], ax[0]]]) / s2  # inverse of [[ax0, -ax1], [ax1, ax0]]
    return origin, m


def to_canonical(points: np.ndarray, lm5: np.ndarray) -> np.ndarray:
    """Points (N, 2) or (N, 3) in the eye frame; a third column (mesh depth) is divided by the same scale."""
    origin, m = _eye_frame(lm5)
    p = np.asarray(points, np.float64)
    xy = (p[:, :2] - origin) @ m.T
    if p.shape[1] < 3:
        return xy
    scale = float(np.sqrt(abs(np.linalg.det(m))))
    return np.hstack([xy, p[:, 2:3] * scale])


def from_canonical(points: np.ndarray, lm5: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_canonical`."""
    origin, m = _eye_frame(lm5)
    p = np.asarray(points, np.float64)
    xy = p[:, :2] @ np.linalg.inv(m).T + origin
    if p.shape[1] < 3:
        return xy
    scale = float(np.sqrt(abs(np.linalg.det(m))))
    return np.hstack([xy, p[:, 2:3] / scale])


def lower_face_weight(canon: np.ndarray, start: float = 1.1, end: float = 1.6) -> np.ndarray:
    """0 above ``start`` (in half eye distances below the eye line), 1 below ``end``, smoothstep between."""
    t = np.clip((canon[:, 1] - start) / (end - start), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _point_sets(tr: FrameTrack, use_mesh: bool) -> dict[str, np.ndarray]:
    sets = {"landmarks5": tr.landmarks5}
    if use_mesh:
        assert tr.mesh is not None
        sets["mesh"] = tr.mesh
    else:
        sets.update({k: tr.contours[k] for k in LOWER_FACE_KEYS if k in tr.contours})
    return sets


def _polygon_area(points: np.ndarray) -> np.ndarray:
    """Shoelace area of polygons (..., N, 2)."""
    x, y = points[..., 0], points[..., 1]
    return 0.5 * np.abs(np.sum(x * np.roll(y, -1, -1) - np.roll(x, -1, -1) * y, axis=-1))


def _opening_area(canon: dict[str, np.ndarray]) -> np.ndarray:
    """Mouth-opening area (inner lips, canonical units: half eye distances squared) of canonical point sets
    stacked over frames (..., N, 2|3)."""
    if "mesh" in canon:
        inner = canon["mesh"][..., topology.LIPS_INNER, :2]
    elif "lips_inner" in canon:
        inner = canon["lips_inner"]
    else:
        raise InputError("transfer-expression: the tracking has no inner-lip contour (or mesh)")
    return _polygon_area(inner)


def _heights(canon: dict[str, np.ndarray]) -> np.ndarray:
    """The mouth opening ``h``: inner-lip area / mouth-corner distance, the mean gap between the inner lips
    (canonical units, linear in the jaw drop where the area is not)."""
    lm = canon["landmarks5"]
    return _opening_area(canon) / np.maximum(np.linalg.norm(lm[..., 4, :] - lm[..., 3, :], axis=-1), 1e-9)


def _smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 (time), edges reflected; ``sigma`` in frames (0: unchanged)."""
    if sigma <= 0 or len(values) < 2:
        return values
    r = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(
        values, [(r, r)] + [(0, 0)] * (values.ndim - 1), mode="reflect" if len(values) > r else "edge"
    )
    out = np.zeros_like(values)
    for i, w in enumerate(k):
        out += w * pad[i : i + len(values)]
    return out


@dataclass(frozen=True)
class RetargetOptions:
    """How the driver's expression is taken: ``smoothing`` (Gaussian sigma in driver frames of its offsets,
    for tracker jitter; 0 = none) and the neutral frames (None = chosen automatically)."""

    smoothing: float = 0.5
    driver_neutral: int | None = None
    target_neutral: int | None = None


class _Side:
    """One shot's points in the canonical frame, stacked over its frames."""

    def __init__(self, tracking: Tracking, frames: Sequence[int], use_mesh: bool, what: str):
        self.frames = [int(f) for f in frames]
        self.index = {f: i for i, f in enumerate(self.frames)}
        self.tracks = {f: tracking[f] for f in self.frames}
        keys = None
        for f in self.frames:
            k = set(_point_sets(self.tracks[f], use_mesh))
            keys = k if keys is None else keys & k
        self.canon: dict[str, np.ndarray] = {}
        for k in sorted(keys or ()):
            stacks = [_point_sets(self.tracks[f], use_mesh)[k] for f in self.frames]
            if len({a.shape for a in stacks}) != 1:
                raise InputError(f"transfer-expression: {k} changes point count within the {what} shot")
            self.canon[k] = np.stack(
                [to_canonical(a, self.tracks[f].landmarks5) for a, f in zip(stacks, self.frames, strict=True)]
            )

    def opening(self) -> np.ndarray:
        """Mouth-opening area per frame (inner lips, canonical units: half eye distances squared)."""
        return _opening_area(self.canon)

    def heights(self) -> np.ndarray:
        """The mouth opening ``h`` per frame (:func:`_heights`)."""
        return _heights(self.canon)

    def mode(self, prior: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        """The opening mode ``B`` per point set: the least-squares slope of every coordinate against
        :meth:`heights` over the shot's frames, shrunk towards ``prior`` (zero when None) with the weight
        :data:`MODE_PRIOR`."""
        h = self.heights()
        dh = h - h.mean()
        spread = float(dh @ dh)
        out = {}
        for k, pts in self.canon.items():
            cov = np.tensordot(dh, pts - pts.mean(0), axes=(0, 0))
            base = prior[k] if prior is not None and k in prior else np.zeros_like(cov)
            out[k] = (cov + MODE_PRIOR * base) / (spread + MODE_PRIOR)
        return out

    def neutral(self, override: int | None, what: str) -> int:
        """Index of the neutral frame: ``override`` (a frame number), else the most typical closed mouth."""
        if override is not None:
            if int(override) not in self.index:
                raise InputError(
                    f"{what} neutral frame {override}: not in the {what} shot "
                    f"({self.frames[0]}-{self.frames[-1]})"
                )
            return self.index[int(override)]
        opening = self.opening()
        lo, hi = float(opening.min()), float(opening.max())
        candidates = np.flatnonzero(opening <= lo + NEUTRAL_BAND * (hi - lo) + 1e-12)
        shape = np.concatenate(
            [self.canon[k][candidates].reshape(len(candidates), -1) for k in sorted(self.canon)], 1
        )
        dist = np.linalg.norm(shape - np.median(shape, 0), axis=1)
        return int(candidates[int(np.argmin(dist))])


class Retarget:
    """The driver's expression on the target's face: :meth:`track` gives one target frame's new tracking.

    Built once per (target, driver) pair over *all* of both shots' frames, so the neutral frames and the
    smoothing do not depend on which frames are asked for (a server request for one frame gives what a
    whole-range render gives).
    """

    def __init__(
        self,
        target: Tracking,
        target_frames: Sequence[int],
        driver: Tracking,
        driver_frames: Sequence[int],
        options: RetargetOptions | None = None,
    ):
        self.options = options or RetargetOptions()
        if not target_frames or not driver_frames:
            raise InputError("transfer-expression: a shot has no tracked frames")
        for what, trk, frames in (("target", target, target_frames), ("driver", driver, driver_frames)):
            missing = [f for f in frames if f not in trk.frames]
            if missing:
                raise InputError(
                    f"transfer-expression: the {what} shot has no tracking for frames {missing[:10]}"
                )
        target_mesh = all(has_mesh(target[f]) for f in target_frames)
        driver_mesh = all(has_mesh(driver[f]) for f in driver_frames)
        if target_mesh and not driver_mesh and any(has_mesh(target[f]) for f in target_frames):
            raise InputError(
                "transfer-expression: the target shot's overlay is the 3D mesh but the driver's tracking "
                "has no mesh (prep the driver with the built-in tracker, or without --tracking)"
            )
        self.use_mesh = target_mesh and driver_mesh
        self.target = _Side(target, target_frames, self.use_mesh, "target")
        self.driver = _Side(driver, driver_frames, self.use_mesh, "driver")
        for k in self.target.canon.keys() & self.driver.canon.keys():
            ns, nd = self.target.canon[k].shape[1], self.driver.canon[k].shape[1]
            if ns != nd:
                raise InputError(
                    f"transfer-expression: {k} has {ns} points in the target shot but {nd} in the "
                    "driver (use the same tracker for both)"
                )
        self.keys = sorted(self.target.canon.keys() & self.driver.canon.keys())
        self.target_neutral = self.target.neutral(self.options.target_neutral, "target")
        self.driver_neutral = self.driver.neutral(self.options.driver_neutral, "driver")
        tn, dn = self.target_neutral, self.driver_neutral
        sigma = float(self.options.smoothing)
        # the opening modes: the driver's from its own frames, the target's pulled towards the driver's
        self.driver_mode = self.driver.mode(None)
        self.target_mode = self.target.mode(self.driver_mode)
        h_t, h_d = self.target.heights(), self.driver.heights()

        def width(lm: np.ndarray) -> float:
            return float(np.linalg.norm(lm[4] - lm[3]))

        #: the target's neutral with its inner lips meeting (moved along its mode to a zero gap)
        self.target_closed = {k: self.target.canon[k][tn] - self.target_mode[k] * h_t[tn] for k in self.keys}
        # the scale from the closed mouths' widths (an opening mouth narrows), both at a zero gap
        lm_d = self.driver.canon["landmarks5"][dn] - self.driver_mode["landmarks5"] * h_d[dn]
        d_width, t_width = width(lm_d), width(self.target_closed["landmarks5"])
        self.scale = t_width / d_width if d_width > 1e-9 else 1.0
        rel = h_d - h_d[dn]
        #: per driver frame: how far the target opens over closed (h, target scale)
        self.openings = _smooth(rel, sigma) * self.scale
        #: per driver frame: the driver's expression over its neutral less its opening (relative deltas)
        self.offsets = {
            k: _smooth(
                self.driver.canon[k] - self.driver.canon[k][dn] - self.driver_mode[k] * rel[:, None, None],
                sigma,
            )
            * self.scale
            for k in self.keys
        }

    @property
    def neutral_frames(self) -> tuple[int, int]:
        """(target neutral frame, driver neutral frame)."""
        return self.target.frames[self.target_neutral], self.driver.frames[self.driver_neutral]

    def target_heights(self) -> dict[int, float]:
        """The target shot's own mouth opening ``h`` at each of its frames."""
        return dict(zip(self.target.frames, (float(h) for h in self.target.heights()), strict=True))

    def height(self, track: FrameTrack) -> float:
        """The mouth opening ``h`` of a (retargeted) target track, as :meth:`target_heights` measures the shot's."""
        sets = _point_sets(track, self.use_mesh)
        return float(_heights({k: to_canonical(v, track.landmarks5) for k, v in sets.items()}))

    def track(self, frame: int, driver_frame: int, strength: float = 1.0) -> FrameTrack:
        """The target's tracking at ``frame`` with the driver's expression at ``driver_frame`` (plate pixels)."""
        if int(frame) not in self.target.index:
            raise InputError(
                f"frame {frame}: not in the target shot ({self.target.frames[0]}-{self.target.frames[-1]})"
            )
        if int(driver_frame) not in self.driver.index:
            raise InputError(
                f"driver frame {driver_frame}: not in the driver shot "
                f"({self.driver.frames[0]}-{self.driver.frames[-1]})"
            )
        i, j, s = self.target.index[int(frame)], self.driver.index[int(driver_frame)], float(strength)
        src = self.target.tracks[int(frame)]
        new_sets: dict[str, np.ndarray] = {}
        for k in self.keys:
            own = self.target.canon[k][i]
            goal = self.target_closed[k] + self.target_mode[k] * self.openings[j] + self.offsets[k][j]
            w = lower_face_weight(own)[:, None]
            if k == "landmarks5":
                w = np.array([0, 0, 0, 1, 1], np.float64)[
                    :, None
                ]  # eyes fixed, nose kept, mouth corners move
            new_sets[k] = from_canonical(own + s * w * (goal - own), src.landmarks5)
        contours = dict(src.contours)
        mesh = src.mesh
        if self.use_mesh:
            mesh = new_sets["mesh"]
            contours.update(topology.contours_from_mesh(mesh))
        else:
            contours.update({k: new_sets[k] for k in LOWER_FACE_KEYS if k in new_sets})
        return FrameTrack(new_sets["landmarks5"], contours, mesh)


def transfer_tracking(
    source: Tracking,
    driver: Tracking,
    source_frames: list[int] | None = None,
    driver_frames: list[int] | None = None,
    strength: float = 1.0,
    options: RetargetOptions | None = None,
) -> dict[int, FrameTrack]:
    """Every source frame with the driver's lower-face expression, paired by order from the start (the
    driver's last frame holds when it is shorter)."""
    s_frames = source_frames or source.frame_numbers
    d_frames = driver_frames or driver.frame_numbers
    rt = Retarget(source, s_frames, driver, d_frames, options)
    return {f: rt.track(f, d_frames[min(i, len(d_frames) - 1)], strength) for i, f in enumerate(s_frames)}


def transfer_expression(
    shot_dir: str | Path,
    driver_dir: str | Path,
    out_dir: str | Path,
    progress: bool = True,
    strength: float = 1.0,
    options: RetargetOptions | None = None,
    frame_pairs: Sequence[tuple[int, int]] | None = None,
) -> dict[int, FrameTrack]:
    """Write transferred overlay frames (crop space, over the target's aligned crops) and tracking.json:
    the inputs Stage I labels, for a look without a trained model. ``frame_pairs``: (target, driver) frames
    (default: every target frame, paired from the start, the driver's last frame held)."""
    from vq_models.io.images import write_image

    shot, driver = Shot.open(shot_dir), Shot.open(driver_dir)
    src_trk, drv_trk = load_tracking(shot.tracking_path), load_tracking(driver.tracking_path)
    rt = Retarget(src_trk, shot.frames, drv_trk, driver.frames, options)
    kind = shot_overlay_kind(shot.meta)
    pairs = (
        list(frame_pairs)
        if frame_pairs is not None
        else [(f, driver.frames[min(i, len(driver.frames) - 1)]) for i, f in enumerate(shot.frames)]
    )
    out = Path(out_dir)
    tracks: dict[int, FrameTrack] = {}
    for f, d in tqdm(pairs, desc="transfer-expression", unit="fr", disable=not progress):
        tracks[f] = rt.track(f, d, strength)
        img = frame_overlay(shot.aligned(f), tracks[f], shot.transform(f), kind).image
        write_image(out / FRAME_NAME.format(f), img, dtype="uint8")
    target_neutral, driver_neutral = rt.neutral_frames
    meta = {
        "transfer": {
            "source": str(shot.root),
            "driver": str(driver.root),
            "strength": float(strength),
            "target_neutral": target_neutral,
            "driver_neutral": driver_neutral,
        }
    }
    save_tracking(Tracking(src_trk.image_size, tracks, meta), out / "tracking.json")
    return tracks
