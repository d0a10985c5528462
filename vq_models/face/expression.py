"""Expression transfer: re-pose a driver shot's mouth deformation onto the source shot's face.

Each shot's points (contours, mouth corners, and the mesh when both shots have one) are expressed in a
canonical face frame fixed by the *eyes only* (image-left eye at (-1, 0), image-right at (1, 0)), which
removes head position, roll and scale but keeps what the mouth and jaw do. The driver's deformation is
its per-frame offset from its own median (neutral-ish) shape; the source's lower face is replaced by
the source's median shape plus that offset, blended in smoothly below the nose so eyes and brows keep
the source's own motion. Mapping back with the source frame's eye frame re-poses it onto the source.
The result re-renders the local face overlay (vq_models.face.overlay) in the source's crop space.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from vq_models.errors import InputError
from vq_models.face import topology
from vq_models.face.overlay import render_overlay
from vq_models.shot import FRAME_NAME, Shot
from vq_models.tracking.schema import FrameTrack, Tracking, load_tracking, save_tracking

LOWER_FACE_KEYS = ("face_oval", "lips_outer", "lips_inner")


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
    origin, m = _eye_frame(lm5)
    return (np.asarray(points, np.float64)[:, :2] - origin) @ m.T


def from_canonical(points: np.ndarray, lm5: np.ndarray) -> np.ndarray:
    origin, m = _eye_frame(lm5)
    return np.asarray(points, np.float64) @ np.linalg.inv(m).T + origin


def lower_face_weight(canon: np.ndarray, start: float = 1.1, end: float = 1.6) -> np.ndarray:
    """0 above ``start`` (in half eye distances below the eye line), 1 below ``end``, smoothstep between."""
    t = np.clip((canon[:, 1] - start) / (end - start), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _point_sets(tr: FrameTrack, use_mesh: bool) -> dict[str, np.ndarray]:
    sets = {"landmarks5": tr.landmarks5}
    if use_mesh:
        assert tr.mesh is not None
        sets["mesh"] = tr.mesh[:, :2]
    else:
        sets.update({k: tr.contours[k] for k in LOWER_FACE_KEYS if k in tr.contours})
    return sets


def transfer_tracking(source: Tracking, driver: Tracking, source_frames: list[int] | None = None,
                      driver_frames: list[int] | None = None) -> dict[int, FrameTrack]:
    """Source frames with the driver's lower-face motion (paired by order; the driver's last frame holds)."""
    s_frames = source_frames or source.frame_numbers
    d_frames = driver_frames or driver.frame_numbers
    if not s_frames or not d_frames:
        raise InputError("transfer-expression: a shot has no tracked frames")
    use_mesh = all(source[f].mesh is not None for f in s_frames) and all(driver[f].mesh is not None for f in d_frames)
    keys = _point_sets(source[s_frames[0]], use_mesh).keys() & _point_sets(driver[d_frames[0]], use_mesh).keys()
    canon: dict[str, dict[str, np.ndarray]] = {"s": {}, "d": {}}
    for tag, trk, frames in (("s", source, s_frames), ("d", driver, d_frames)):
        for k in keys:
            stacks = [_point_sets(trk[f], use_mesh)[k] for f in frames]
            if len({a.shape for a in stacks}) != 1:
                raise InputError(f"transfer-expression: {k} changes point count within a shot")
            canon[tag][k] = np.stack([to_canonical(a, trk[f].landmarks5) for a, f in zip(stacks, frames, strict=True)])
    for k in keys:
        if canon["s"][k].shape[1:] != canon["d"][k].shape[1:]:
            raise InputError(f"transfer-expression: {k} has {canon['s'][k].shape[1]} points in the source shot but "
                             f"{canon['d'][k].shape[1]} in the driver (use the same tracker for both)")
    out: dict[int, FrameTrack] = {}
    for i, f in enumerate(s_frames):
        j = min(i, len(d_frames) - 1)
        src = source[f]
        new_sets: dict[str, np.ndarray] = {}
        for k in keys:
            s_c, d_c = canon["s"][k], canon["d"][k]
            target = np.median(s_c, 0) + (d_c[j] - np.median(d_c, 0))
            w = lower_face_weight(s_c[i])[:, None]
            if k == "landmarks5":
                w = np.array([0, 0, 0, 1, 1], np.float64)[:, None]  # eyes fixed, nose kept, mouth corners move
            new_sets[k] = from_canonical(s_c[i] + w * (target - s_c[i]), src.landmarks5)
        contours = dict(src.contours)
        mesh = src.mesh
        if use_mesh:
            assert src.mesh is not None
            mesh = np.hstack([new_sets["mesh"], src.mesh[:, 2:]])
            contours.update(topology.contours_from_mesh(mesh))
        else:
            contours.update({k: new_sets[k] for k in LOWER_FACE_KEYS if k in new_sets})
        out[f] = FrameTrack(new_sets["landmarks5"], contours, mesh)
    return out


def transfer_expression(shot_dir: str | Path, driver_dir: str | Path, out_dir: str | Path,
                        progress: bool = True) -> dict[int, FrameTrack]:
    """Write transferred overlay frames (crop space, over the source's aligned crops) and tracking.json."""
    from vq_models.io.images import write_image

    shot, driver = Shot.open(shot_dir), Shot.open(driver_dir)
    src_trk, drv_trk = load_tracking(shot.tracking_path), load_tracking(driver.tracking_path)
    for s, t in ((shot, src_trk), (driver, drv_trk)):
        missing = [f for f in s.frames if f not in t.frames]
        if missing:
            raise InputError(f"{s.tracking_path}: no tracking for frames {missing[:10]}")
    tracks = transfer_tracking(src_trk, drv_trk, shot.frames, driver.frames)
    out = Path(out_dir)
    for f in tqdm(shot.frames, desc="transfer-expression", unit="fr", disable=not progress):
        t = shot.transform(f)
        tr = tracks[f]
        crop_contours = {k: t.to_crop(v) for k, v in tr.contours.items()}
        img = render_overlay(shot.aligned(f), crop_contours, t.to_crop(tr.landmarks5))
        write_image(out / FRAME_NAME.format(f), np.clip(img, 0.0, 1.0), dtype="uint8")
    meta = {"transfer": {"source": str(shot.root), "driver": str(driver.root)}}
    save_tracking(Tracking(src_trk.image_size, tracks, meta), out / "tracking.json")
    return tracks
