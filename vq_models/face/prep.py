"""`vqedit prep`: plate → shot directory (paper Section 3.1).

Two passes over the plate. Pass 1 tracks the face (or takes the external tracking file) and keeps, per
frame, a small uint8 sRGB cut-out around the face, already box-filtered to about the crop's scale.
Between the passes, lost frames are bridged and the FFHQ quads are low-passed over time. Pass 2 crops
each frame from its cut-out with the smoothed transform and writes aligned crop, masks and overlay
through :class:`~vq_models.shot.ShotWriter`. The cut-out cache means each plate frame is decoded once
(EXR/DPX decoding dominates otherwise) while holding only a few MB per frame even for 4K plates.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from vq_models.errors import InputError
from vq_models.face import topology
from vq_models.face.align import Quad, ffhq_quad, quad_transform, smooth_quads, transform_scale
from vq_models.face.gaps import bridge_gaps
from vq_models.face.masks import fg_mask, person_matte_usable, polygon_mask, roi_mask, template_contours
from vq_models.face.overlay import OVERLAY_2D, OVERLAY_3D, OVERLAY_KINDS, OVERLAY_MIXED, frame_overlay
from vq_models.face.select import FaceSelector
from vq_models.shot import CropTransform, Shot, ShotLayout, ShotWriter
from vq_models.tracking.schema import FrameTrack, Tracking, load_tracking, save_tracking

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepConfig:
    """Knobs of the front end. ``smooth_sigma`` is in frames (STIT-style low-pass of the quad)."""

    crop_size: int = 256
    smooth_sigma: float = 2.0
    max_gap: int = 10
    tracker_max_side: int = 1280
    max_faces: int = 4
    person_segmentation: bool = True
    fg_feather: float = 0.01
    roi_grow: float = 0.015
    preview_frames: int = 6
    #: the local face overlay's renderer (face/overlay.py): ``mixed`` draws the shaded 3D mesh where the
    #: tracking has one and the flat contour polygons elsewhere; ``mesh-3d`` requires the mesh on every
    #: frame; ``contours-2d`` always draws the polygons (what shots prepped before the 3D overlay have)
    overlay: str = OVERLAY_MIXED

    def __post_init__(self) -> None:
        if self.overlay not in OVERLAY_KINDS:
            raise InputError(f"prep overlay {self.overlay!r}: choose from {', '.join(OVERLAY_KINDS)}")


PRESETS: dict[str, PrepConfig] = {
    "tiny": PrepConfig(crop_size=128, preview_frames=4),
    "cpu": PrepConfig(crop_size=256),
    "paper": PrepConfig(crop_size=1024, tracker_max_side=1920),
}


@dataclass
class _Cutout:
    """A face region of one frame, shrunk by an integer factor: ``p = shrink * r + offset`` maps region
    pixel centres ``r`` to plate pixel centres ``p``."""

    pixels: np.ndarray  # uint8 (h, w, 3) sRGB
    offset: np.ndarray  # (2,)
    shrink: int
    bounds: tuple[float, float, float, float]  # plate box it covers (x0, y0, x1, y1), pixel centres
    edges: tuple[bool, bool, bool, bool]  # which box sides are the plate's own edges


def _cutout(rgb8: np.ndarray, quad: Quad, crop_size: int, margin: float = 1.35) -> _Cutout:
    h, w = rgb8.shape[:2]
    corners = Quad(quad.cx, quad.cy, quad.half * margin, quad.angle).corners()
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 1
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if cx1 <= cx0 or cy1 <= cy0:
        cx0, cy0, cx1, cy1 = 0, 0, w, h
    scale = crop_size / (2.0 * quad.half)
    shrink = max(1, int(np.floor(1.0 / scale)))
    sw, sh = max(1, (cx1 - cx0) // shrink), max(1, (cy1 - cy0) // shrink)
    region = rgb8[cy0 : cy0 + sh * shrink, cx0 : cx0 + sw * shrink]
    if shrink > 1:
        region = cv2.resize(region, (sw, sh), interpolation=cv2.INTER_AREA)
    offset = np.array([cx0, cy0], np.float64) + (shrink - 1) / 2.0
    return _Cutout(np.ascontiguousarray(region), offset, shrink,
                   (cx0, cy0, cx0 + sw * shrink - 1, cy0 + sh * shrink - 1),
                   (cx0 == 0, cy0 == 0, cx1 == w, cy1 == h))


def _covers(cut: _Cutout, quad: Quad) -> bool:
    pts = quad.corners()
    x0, y0, x1, y1 = cut.bounds
    ok_l = cut.edges[0] or pts[:, 0].min() >= x0
    ok_t = cut.edges[1] or pts[:, 1].min() >= y0
    ok_r = cut.edges[2] or pts[:, 0].max() <= x1
    ok_b = cut.edges[3] or pts[:, 1].max() <= y1
    return bool(ok_l and ok_t and ok_r and ok_b)


def _crop_cutout(cut: _Cutout, transform: CropTransform, size: int) -> np.ndarray:
    a, t = transform.plate_to_crop[:, :2], transform.plate_to_crop[:, 2]
    m = np.hstack([a * cut.shrink, (a @ cut.offset + t)[:, None]])
    return cv2.warpAffine(cut.pixels, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    # OpenCV's saturating, rounding conversion is several times faster than numpy's on 1080p+ frames
    return cv2.convertScaleAbs(np.ascontiguousarray(rgb, np.float32), alpha=255.0)


def _frame_track(mesh: np.ndarray) -> FrameTrack:
    return FrameTrack(topology.landmarks5_from_mesh(mesh), topology.contours_from_mesh(mesh), mesh)


@dataclass
class PrepResult:
    shot: Shot
    bridged: list[int] = field(default_factory=list)
    eye_std_pct: float = 0.0  # std of the eye centres in crop coordinates, % of the crop size


def eye_jitter_pct(tracks: dict[int, FrameTrack], transforms: dict[int, CropTransform], size: int) -> float:
    """Std over the shot of the eye centres in crop coordinates, as % of the crop size (max of x/y/eye)."""
    frames = sorted(tracks)
    eyes = np.array([transforms[f].to_crop(tracks[f].landmarks5[:2]) for f in frames])  # (N, 2, 2)
    return float(eyes.std(axis=0).max() / size * 100.0) if len(frames) > 1 else 0.0


def run_prep(
    plate: str | Path,
    out: str | Path,
    *,
    config: PrepConfig = PRESETS["cpu"],
    tracking_path: str | Path | None = None,
    frames: str | None = None,
    face_index: int = 0,
    pick: tuple[float, float] | None = None,
    preview: bool = False,
    colorspace: str | None = None,
    progress: bool = True,
) -> PrepResult:
    """Prepare a shot from a plate; see docs/prep.md. Raises InputError for unusable plates/tracking."""
    from vq_models.io.sources import open_source

    size = int(config.crop_size)
    if size < 16:
        raise InputError(f"--size {size}: crop size must be at least 16 pixels")
    # recorded absolute in shot.json: the render server reads the plate for its detail pass from anywhere
    source = open_source(str(Path(plate).absolute()), frames, colorspace=colorspace)
    frame_list = list(source.frames)
    plate_w, plate_h = source.display_window[2], source.display_window[3]
    name = str(plate)

    external: Tracking | None = None
    if tracking_path is not None:
        external = load_tracking(tracking_path)
        if tuple(external.image_size) != (plate_w, plate_h):
            raise InputError(f"{tracking_path}: image_size {list(external.image_size)} does not match the plate "
                             f"({plate_w}x{plate_h})")

    tracker = None
    try:
        from vq_models.face.tracker import FaceTracker

        if external is None or config.person_segmentation:
            tracker = FaceTracker(max_faces=config.max_faces, max_side=config.tracker_max_side)
    except InputError:
        if external is None:
            raise
    selector = FaceSelector(face_index, pick)

    # --- pass 1: track and cut out ------------------------------------------------------------
    raw: dict[int, FrameTrack | None] = {}
    cutouts: dict[int, _Cutout] = {}
    for f in tqdm(frame_list, desc="prep: track", unit="fr", disable=not progress):
        rgb8 = _to_uint8(source.read_network(f))
        if external is not None:
            raw[f] = external.frames.get(f)
        else:
            assert tracker is not None
            det = selector.choose(tracker.track(rgb8), f)
            raw[f] = None if det is None else _frame_track(det.landmarks478)
        tr = raw[f]
        if tr is not None:
            cutouts[f] = _cutout(rgb8, ffhq_quad(tr.landmarks5), size)
        else:
            cutouts[f] = _cutout(rgb8, Quad(plate_w / 2, plate_h / 2, max(plate_w, plate_h), 0.0), size)

    lost = [f for f in frame_list if raw[f] is None]
    tracks, bridged = bridge_gaps(raw, frame_list, config.max_gap, source=name)
    if lost:
        log.warning("face lost in %d frame(s), bridged by interpolation: %s", len(lost), lost)

    contour_source = "mesh" if external is None else "file"
    for f, tr in tracks.items():
        if not tr.contours or "face_oval" not in tr.contours:
            contour_source = "template"
            tracks[f] = FrameTrack(tr.landmarks5, {**template_contours(tr.landmarks5), **tr.contours}, tr.mesh)

    quads = smooth_quads([ffhq_quad(tracks[f].landmarks5) for f in frame_list], config.smooth_sigma)
    transforms = {f: quad_transform(q, size) for f, q in zip(frame_list, quads, strict=True)}

    # --- pass 2: crops, masks, overlay --------------------------------------------------------
    plate_desc: dict[str, Any] = {**source.describe(), "width": plate_w, "height": plate_h}
    writer = ShotWriter(out, size, plate_desc)
    reread = 0
    # PNG encoding dominates pass 2; OpenImageIO releases the GIL, so two writer threads overlap it
    # with the next frame's crop/masks (results are collected so a write error still surfaces)
    pool = ThreadPoolExecutor(max_workers=2)
    pending = []
    flat_frames: list[int] = []  # frames whose overlay fell back to the 2D polygons (no usable mesh)
    matte_failed: list[int] = []  # frames whose person matte kept under half the face (fg is the oval alone)
    for f, q in tqdm(list(zip(frame_list, quads, strict=True)), desc="prep: write", unit="fr",
                     disable=not progress):
        t = transforms[f]
        cut = cutouts.pop(f)
        if not _covers(cut, q) or transform_scale(t) * cut.shrink > 1.1:
            cut = _cutout(_to_uint8(source.read_network(f)), q, size)
            reread += 1
        aligned8 = _crop_cutout(cut, t, size)
        aligned = aligned8.astype(np.float32) / 255.0
        tr = tracks[f]
        crop_contours = {k: t.to_crop(v) for k, v in tr.contours.items()}
        person = tracker.person_mask(aligned8) if (tracker is not None and config.person_segmentation) else None
        if person is not None and "face_oval" in crop_contours and not person_matte_usable(
                polygon_mask([crop_contours["face_oval"]], size), person):
            matte_failed.append(f)
        fg = fg_mask(crop_contours, size, person, feather=config.fg_feather)
        roi = roi_mask(crop_contours, size, grow=config.roi_grow)
        over = frame_overlay(aligned, tr, t, config.overlay)  # the one renderer expression transfer re-renders with
        if over.kind == OVERLAY_2D:
            flat_frames.append(f)
        pending.append(pool.submit(writer.write_frame, f, aligned, over.image, fg, roi, t))
        if len(pending) > 8:
            pending.pop(0).result()
    for job in pending:
        job.result()
    pool.shutdown()
    source.close()
    if tracker is not None:
        tracker.close()

    jitter = eye_jitter_pct(tracks, transforms, size)
    if matte_failed:
        log.warning("person segmentation kept under half of the face on %d of %d frame(s); the face oval alone is "
                    "their foreground: %s", len(matte_failed), len(frame_list), matte_failed)
    meta = {
        "tool": "mediapipe 0.10.21 face_mesh (478 points)" if external is None else f"file: {tracking_path}",
        "contours": contour_source,
        # the tracker's eye centres are the crop's alignment points; an external file keeps its own
        **({"eye_centres": topology.EYE_CENTRES} if external is None else {}),
        "lost": lost,
        "bridged": bridged,
        "face": {"index": face_index, "pick": list(pick) if pick else None, "faces_seen": selector.faces_seen},
    }
    save_tracking(Tracking((plate_w, plate_h), {f: tracks[f] for f in frame_list}, meta), ShotLayout(out).tracking_path)
    prep_info = {
        **meta,
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "eye_std_pct": round(jitter, 4),
        "frames_reread": reread,
        # which overlay renderer ran (face/overlay.py): the shaded 3D mesh, or the flat contour polygons
        # where the tracking has no MediaPipe mesh; a mix lists the flat frames
        "overlay": (OVERLAY_2D if len(flat_frames) == len(frame_list)
                    else OVERLAY_3D if not flat_frames else OVERLAY_MIXED),
        "overlay_2d_frames": flat_frames if 0 < len(flat_frames) < len(frame_list) else [],
        "person_matte_failed_frames": matte_failed,
    }
    shot = writer.finish({"prep": prep_info})
    if preview:
        from vq_models.face.preview import write_contact_sheet

        write_contact_sheet(shot, Path(out) / "preview.png", max_frames=config.preview_frames)
    return PrepResult(shot, bridged, jitter)
