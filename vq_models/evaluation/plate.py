"""What the compositor sees: measurements at plate resolution, and what-ifs that real footage answers.

Held-out SSIM in the 128² crop says little about a render pasted over a 300 to 1,500 pixel face. This module
measures the composite in the plate's own pixel grid, in display sRGB:

- ``ssim`` and ``perceptual`` of the composite against the plate inside the face (foreground mask on the
  plate); ``perceptual`` is LPIPS when its ImageNet backbone is installed, else the documented fallback
  distance (MS-SSIM + gradients, ``perceptual_backend`` says which);
- ``sharpness``: mean |Laplacian| of the composite over that of the plate inside the ROI (eyes, mouth):
  1 keeps the plate's fine detail, 0.35 is a 128² render stretched over a 300-pixel face;
- ``flicker``: the mean frame-to-frame change of what the render adds to the plate, inside the region it
  covers (0 for a render that follows the plate; a render that boils between frames scores high).

A blinking clip is its own ground truth for eye closing (:func:`blink_whatif`): for each blink, the open frame
``gap`` frames before it is rendered with ``eye_open 0`` and its eye region compared with the real closed
frame, each in its own crop space (head motion taken out); the gain over the unedited open frame says how
much of a real closed eye the edit produced. :func:`mouth_whatif` does the same for a closed mouth. Edits keyed
part way have theirs too, the value read off the tracking: a blink caught half way (:func:`squint_whatif`), a
glance (:func:`gaze_whatif`) and a mouth opening wider (:func:`jaw_whatif`). :data:`WHATIFS` lists them all.
Beside the dB, every what-if reports SSIM in the same boxes and the edit's sharpness against the real frame's,
because PSNR alone prefers a smear to a crisp edge a pixel off.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from vq_models import metrics as M
from vq_models.composite import face_alpha
from vq_models.edits.exemplars import (
    CLOSED_SHARE,
    MOUTH_CONTOURS,
    PART_CONTOURS,
    eye_gaze,
    part_track,
    pose_nearest_blink,
)
from vq_models.edits.geometry import rasterize_polygon
from vq_models.errors import InputError
from vq_models.evaluation.whatif import box_ssim
from vq_models.events import (
    BLINK_CLOSED,
    BLINK_GAP,
    BLINK_LEAVE_OUT,
    BLINK_OPEN,
    JAW_MIN_OPEN,
    JAW_RATIO,
    MAX_JAW_RATIO,
    SQUINT_HIGH,
    SQUINT_LOW,
    find_events,
    gaze_events,
    left_out,
    ratio_events,
)
from vq_models.face.align import crop as crop_plate
from vq_models.io.colour import chroma, luma, to_network
from vq_models.tracking.schema import load_tracking


def laplacian_energy(rgb: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean |Laplacian| of the luminance inside ``mask`` (default: everywhere): the high-frequency energy a sharp
    image keeps."""
    lap = np.abs(cv2.Laplacian(luma(np.asarray(rgb, np.float32)), cv2.CV_32F, ksize=1))
    if mask is None:
        return float(lap.mean())
    m = np.asarray(mask, bool)
    return float(lap[m].mean()) if m.any() else float("nan")


def _plate_mask(model: Any, kind: str, frame: int) -> np.ndarray:
    """The shot's ``fg`` or ``roi`` crop mask on the plate's display window, thresholded at 0.5."""
    shot = model.shot
    mask = shot.fg_mask(frame) if kind == "fg" else shot.roi_mask(frame)
    info = model.plate_info
    size = (info["display_window"][2], info["display_window"][3])
    return face_alpha(mask, shot.transform(frame), size, 0.0, crop_size=shot.crop_size) > 0.5


def _box(mask: np.ndarray, pad: int = 8) -> tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    if not ys.size:
        raise InputError("measure: the face mask is empty on this frame")
    h, w = mask.shape
    return (slice(max(0, ys.min() - pad), min(h, ys.max() + pad + 1)),
            slice(max(0, xs.min() - pad), min(w, xs.max() + pad + 1)))


@dataclass
class PlateFrame:
    """One frame's composite and plate in display sRGB over the display window, with the render's alpha."""

    frame: int
    comp: np.ndarray
    plate: np.ndarray
    alpha: np.ndarray


def render_on_plate(model: Any, frame: int, program: Any = None, mode: str = "identity", feather: float = 4.0,
                    detail: str | None = None, exclude: set[int] | None = None,
                    labels: np.ndarray | None = None) -> PlateFrame:
    """Render ``frame`` and composite it over its plate (read from the shot's plate source), in display sRGB.
    ``labels``: the (L, L) map to render at ``frame`` instead of the shot's edited one (``render_frame``)."""
    image = model.detail.plates.image(frame)
    fr = model.render_frame(frame, program, feather=feather, mode=mode, labels=labels, detail=detail,
                            exclude_frames=exclude)
    comp = fr.composite(image)
    return PlateFrame(frame, to_network(comp), to_network(image), fr.alpha)


def plate_metrics(model: Any, frames: Sequence[int], program: Any = None, mode: str = "identity",
                  feather: float = 4.0, detail: str | None = None, lpips: bool = True) -> dict[str, Any]:
    """SSIM / LPIPS (face), sharpness (ROI) and flicker (render region) of composites at plate resolution.

    Identity renders (``program`` None) are compared with the plate itself; with an edit program SSIM and
    LPIPS say how far the composite moved from the plate, and sharpness and flicker how it looks."""
    rows: list[dict[str, Any]] = []
    prev: PlateFrame | None = None
    flicker: list[float] = []
    for f in frames:
        pf = render_on_plate(model, int(f), program, mode, feather, detail)
        face = _plate_mask(model, "fg", pf.frame)
        roi = _plate_mask(model, "roi", pf.frame) & face
        rows_, cols_ = _box(face)
        comp, plate, m = pf.comp[rows_, cols_], pf.plate[rows_, cols_], face[rows_, cols_]
        row: dict[str, Any] = {"frame": pf.frame, "ssim": M.ssim(comp, plate, m.astype(np.float32)),
                               "sharpness": laplacian_energy(pf.comp, roi) / laplacian_energy(pf.plate, roi)}
        if lpips:
            row["perceptual"] = perceptual(np.where(m[..., None], comp, plate), plate)
        rows.append(row)
        if prev is not None:
            region = (pf.alpha > 0) | (prev.alpha > 0)
            if region.any():
                change = np.abs((pf.comp - pf.plate) - (prev.comp - prev.plate)).mean(axis=2)
                flicker.append(float(change[region].mean()))
        prev = pf
    out: dict[str, Any] = {"frames": [int(f) for f in frames], "per_frame": rows,
                           "detail": detail or ("plate" if model.detail.available() else "none")}
    for key in ("ssim", "sharpness", "perceptual"):
        vals = [r[key] for r in rows if isinstance(r.get(key), float) and math.isfinite(r[key])]
        out[key] = float(np.mean(vals)) if vals else None
    if lpips:
        out["perceptual_backend"] = _perceptual_net().backend
    out["flicker"] = float(np.mean(flicker)) if flicker else None
    return out


_PERCEPTUAL: list[Any] = []


def _perceptual_net() -> Any:
    if not _PERCEPTUAL:
        from vq_models.nets.lpips import PerceptualLoss

        _PERCEPTUAL.append(PerceptualLoss("alex").eval())
    return _PERCEPTUAL[0]


def perceptual(pred: np.ndarray, gt: np.ndarray) -> float:
    """LPIPS (alex) between two display-sRGB images, or the fallback distance without its backbone."""
    import torch

    def tensor(x: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).permute(2, 0, 1)[None] * 2.0 - 1.0

    with torch.no_grad():
        return float(_perceptual_net().per_image(tensor(pred), tensor(gt)).mean())


# --- real-footage what-ifs --------------------------------------------------------------------------------


def _tracked_frames(model: Any) -> Iterator[tuple[dict[str, Any], Any]]:
    """Per frame, in shot order: its tracked contours (plate pixels; {} where it has none) and crop transform."""
    tracking = load_tracking(model.shot.tracking_path)
    for f in model.frames:
        yield ((tracking.frames[f].contours or {}) if f in tracking.frames else {}), model.shot.transform(f)


def openness(model: Any) -> dict[str, np.ndarray]:
    """Per frame (in shot order): each eye's opening (height / width of its tracked contour in crop space)
    and the mouth's (inner-lip height / outer-lip width): the parts' openings as the exemplars measure them
    (:func:`~vq_models.edits.exemplars.part_track`, which the edits compare frames by), NaN where untracked."""
    parts = {f"{side}_eye": contours for side, contours in PART_CONTOURS.items()}
    parts["mouth"] = MOUTH_CONTOURS
    out: dict[str, list[float]] = {key: [] for key in parts}
    for contours, tf in _tracked_frames(model):
        for key, (outline, opening) in parts.items():
            out[key].append(_opening(contours, tf, outline, opening))
    return {k: np.asarray(v) for k, v in out.items()}


def _opening(contours: dict[str, Any], tf: Any, outline: str, opening: str | None) -> float:
    """A part's opening at one frame in crop space (:func:`~vq_models.edits.exemplars.part_track`): the
    ``opening`` contour's height (the outline's own without one) over the ``outline``'s width; NaN untracked."""
    lines = [contours.get(name) for name in (outline, opening or outline)]
    if any(pts is None or len(pts) < 3 for pts in lines):
        return float("nan")
    track = part_track(*(tf.to_crop(np.asarray(pts, np.float64)[:, :2]) for pts in lines))
    return float("nan") if track is None else track.opening


def part_boxes(model: Any, frame: int, names: Sequence[str], grow: float) -> list[tuple[int, int, int, int]]:
    """Crop-space boxes (x0, y0, x1, y1) around the tracked contours ``names`` at ``frame``, grown by
    ``grow`` × the part's width on each side."""
    tracking = load_tracking(model.shot.tracking_path)
    contours = tracking.frames[frame].contours or {}
    tf = model.shot.transform(frame)
    s = model.shot.crop_size
    boxes = []
    for name in names:
        if name not in contours:
            raise InputError(f"tracking.json: frame {frame} has no {name!r} contour (needed for the what-if)")
        c = tf.to_crop(np.asarray(contours[name], np.float64)[:, :2])
        x0, y0 = c.min(axis=0)
        x1, y1 = c.max(axis=0)
        g = grow * (x1 - x0)
        boxes.append((int(max(0, x0 - g)), int(max(0, y0 - g)), int(min(s, x1 + g + 1)), int(min(s, y1 + g + 1))))
    return boxes


def _union(a: Sequence[tuple[int, int, int, int]], b: Sequence[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    return [(min(p[0], q[0]), min(p[1], q[1]), max(p[2], q[2]), max(p[3], q[3])) for p, q in zip(a, b, strict=True)]


def _whatif(model: Any, pairs: list[tuple[int, int]], program: dict[str, Any] | Callable[[int, int], dict[str, Any]],
            parts: Sequence[str], grow: float, feather: float, detail: str | None, leave_out: int) -> dict[str, Any]:
    """Each pair's reference frame rendered with ``program`` (or ``program(ref_index, event_index)``) against its
    event frame, each in its own crop, in the boxes around ``parts``: the dB gain over the unedited frame."""
    frames = model.frames
    s = model.shot.crop_size
    rows = []
    for ref_i, event_i in pairs:
        ref, event = frames[ref_i], frames[event_i]
        pf_program = program(ref_i, event_i) if callable(program) else program
        # the answer (the real event frame and its neighbours) is never a detail donor
        exclude = left_out(frames, event, leave_out)
        try:
            pf = render_on_plate(model, ref, pf_program, "edit-only", feather, detail, exclude=exclude)
        except InputError as exc:  # the prior lacks the segments the op needs: say so, keep the report
            return {"events": [], "count": 0, "mean_gain_db": None, "unavailable": str(exc)}
        real = to_network(model.detail.plates.image(event))
        edit_crop = crop_plate(pf.comp, model.shot.transform(ref), s)
        plate_crop = crop_plate(pf.plate, model.shot.transform(ref), s)
        real_crop = crop_plate(real, model.shot.transform(event), s)
        boxes = _union(part_boxes(model, ref, parts, grow), part_boxes(model, event, parts, grow))
        edit_db = M.psnr_in_boxes(edit_crop, real_crop, boxes)
        plate_db = M.psnr_in_boxes(plate_crop, real_crop, boxes)
        rows.append({"open_frame": ref, "event_frame": event, "psnr_edit_db": edit_db, "psnr_plate_db": plate_db,
                     "gain_db": edit_db - plate_db, "boxes": boxes,
                     "ssim_edit": float(np.mean([box_ssim(edit_crop, real_crop, b) for b in boxes])),
                     "ssim_plate": float(np.mean([box_ssim(plate_crop, real_crop, b) for b in boxes])),
                     "sharpness": _box_sharpness(edit_crop, real_crop, boxes),
                     **({"program": pf_program} if callable(program) else {})})
    return {"events": rows, "count": len(rows), **_event_means(rows)}


#: per-event figures of a what-if and their report keys: the mean of each over the events
_EVENT_MEANS = {"gain_db": "mean_gain_db", "psnr_edit_db": "mean_edit_db", "psnr_plate_db": "mean_plate_db",
                "ssim_edit": "mean_ssim_edit", "ssim_plate": "mean_ssim_plate", "sharpness": "mean_sharpness"}


def _event_means(rows: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """The report's means over its events (None for a shot without any)."""
    return {key: _mean_of(rows, name) for name, key in _EVENT_MEANS.items()}


def _mean_of(rows: Sequence[dict[str, Any]], name: str) -> float | None:
    """The mean of ``name`` over the events that have it (None where none has)."""
    values = [r[name] for r in rows if name in r]
    return float(np.mean(values)) if values else None


def _box_sharpness(edit: np.ndarray, real: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> float:
    """The edit's high-frequency energy over the real event frame's, mean over ``boxes``: 1 is as sharp as the
    shot's own frame. PSNR alone rewards a smear (a soft band scores above a crisp lash line drawn a pixel off),
    so a what-if reports what a compositor would see beside it."""
    ratios = [laplacian_energy(edit[y0:y1, x0:x1]) / laplacian_energy(real[y0:y1, x0:x1]) for x0, y0, x1, y1 in boxes]
    return float(np.mean(ratios))


def blink_whatif(model: Any, gap: int = BLINK_GAP, closed: float = BLINK_CLOSED, open_: float = BLINK_OPEN,
                 feather: float = 8.0, detail: str | None = None, leave_out: int = BLINK_LEAVE_OUT) -> dict[str, Any]:
    """Eye closing against the shot's own blinks (see the module docstring).

    A blink is a run of frames whose mean eye opening is below ``closed`` × the shot's median; its open
    frame is ``gap`` frames before the run and must be at least ``open_`` × the median. Frames within
    ``leave_out`` of the blink are never used as detail donors, so the answer is not copied in."""
    o = openness(model)
    eyes = np.nanmean(np.stack([o["left_eye"], o["right_eye"]]), axis=0)
    med = float(np.nanmedian(eyes))
    pairs = find_events(eyes, closed * med, open_ * med, gap)
    program = {"version": 1, "edits": [{"op": "eye_open", "eye": "both", "value": 0.0}]}
    out = _whatif(model, pairs, program, ("left_eye", "right_eye"), 0.35, feather, detail, leave_out)
    _another_blink(model, out, eyes, leave_out)
    _answer_labels(model, out, program, feather, detail, leave_out)
    for row in out["events"]:  # how much around each borrowed eye the edit took (edits/exemplar_fit.py)
        row["region_grow"] = model.exemplars.region_grow(left_out(model.frames, row["event_frame"], leave_out))
    out.update({"median_opening": med, "gap": gap, "program": program})
    return out


def _another_blink(model: Any, report: dict[str, Any], eyes: np.ndarray, leave_out: int) -> None:
    """Adds to each blink row what *another* real blink of the shot scores in its place: the closed frame
    outside the left-out window that ``eye_open`` would borrow (the deepest frame of the blink whose head pose
    is nearest the open frame's, :func:`~vq_models.edits.exemplars.pose_nearest_blink`), in its own
    crop, against the event (``another_blink_db``, ``another_gain_db``).

    A label edit can at best ask for a closed eye this shot has shown, so this is the yardstick for the
    what-if's gain on this clip: the bar of a fixed dB gain can lie beyond what the shot's other blinks reach."""
    frames = model.frames
    s = model.shot.crop_size
    med = float(np.nanmedian(eyes))
    for row in report.get("events", []):
        event = row["event_frame"]
        outside = [i for i in np.argsort(np.nan_to_num(eyes, nan=np.inf)) if abs(frames[i] - event) > leave_out]
        closed = [frames[i] for i in outside if eyes[i] < CLOSED_SHARE * med]
        if closed:
            donor = pose_nearest_blink(frames, closed, model.head_pose, row["open_frame"])
        elif outside:
            donor = frames[outside[0]]
        else:
            continue
        real = crop_plate(to_network(model.detail.plates.image(event)), model.shot.transform(event), s)
        other = crop_plate(to_network(model.detail.plates.image(donor)), model.shot.transform(donor), s)
        db = M.psnr_in_boxes(other, real, row["boxes"])
        row.update({"another_blink_frame": donor, "another_blink_db": db, "another_gain_db": db - row["psnr_plate_db"]})
    report["mean_another_gain_db"] = _mean_of(report.get("events", []), "another_gain_db")


def _answer_labels(model: Any, report: dict[str, Any], program: dict[str, Any], feather: float, detail: str | None,
                   leave_out: int) -> None:
    """Adds to each blink row what the real closed frame's *own* labels render to in the open frame's place:
    the event frame's eye regions moved onto the open frame's eyes
    (:meth:`~vq_models.edits.exemplars.PartExemplars.transplant`), rendered as the edit is (same program for
    the neighbouring frames, no detail from the left-out window), against the event (``answer_labels_db``,
    ``answer_labels_gain_db``, and ``answer_labels_sharpness`` beside the edit's ``sharpness``).

    This is what asking for exactly the real closed eye gets from this shot's renderer, so it splits a
    shortfall into the label edit's share and the renderer's. It is a yardstick, not a bound: an edit that
    borrows another blink's labels, with plate detail from that blink, can score above it (lp_d13's first
    blink does; benchmarks/RESULTS.md)."""
    frames = model.frames
    s = model.shot.crop_size
    for row in report.get("events", []):
        ref, event = row["open_frame"], row["event_frame"]
        labels = model.label_map(ref)
        for side in PART_CONTOURS:
            moved = model.exemplars.transplant(labels, ref, side, event)
            labels = labels if moved is None else moved
        exclude = left_out(frames, event, leave_out)
        pf = render_on_plate(model, ref, program, "edit-only", feather, detail, exclude=exclude, labels=labels)
        comp = crop_plate(pf.comp, model.shot.transform(ref), s)
        real = crop_plate(to_network(model.detail.plates.image(event)), model.shot.transform(event), s)
        db = M.psnr_in_boxes(comp, real, row["boxes"])
        row.update({"answer_labels_db": db, "answer_labels_gain_db": db - row["psnr_plate_db"],
                    "answer_labels_sharpness": _box_sharpness(comp, real, row["boxes"])})
    for name in ("answer_labels_gain_db", "answer_labels_sharpness"):
        report[f"mean_{name}"] = _mean_of(report.get("events", []), name)


def mouth_whatif(model: Any, gap: int = 4, closed: float = 0.08, open_: float = 0.25, feather: float = 8.0,
                 detail: str | None = None, leave_out: int = 3) -> dict[str, Any]:
    """Mouth closing against the shot's own closed-mouth frames: a run of frames whose mouth opening
    (inner-lip height / mouth width) is below ``closed``, its open frame ``gap`` frames before with at least
    ``open_``, rendered with ``mouth_open 0``."""
    o = openness(model)["mouth"]
    pairs = find_events(o, closed, open_, gap)
    program = {"version": 1, "edits": [{"op": "mouth_open", "value": 0.0}]}
    out = _whatif(model, pairs, program, ("lips_outer",), 0.15, feather, detail, leave_out)
    out.update({"gap": gap, "program": program})
    return out


def jaw_whatif(model: Any, gap: int = 4, feather: float = 8.0, detail: str | None = None, leave_out: int = 3,
               pull: bool | None = None, borrow: bool = False) -> dict[str, Any]:
    """Mouth opening against the shot's own: where the mouth opens by a ratio within ``gap`` frames
    (:func:`~vq_models.events.ratio_events`), the earlier frame rendered with ``mouth_open`` at that ratio
    (``pull``: the edit's ``pull``; None: as the op decides; ``borrow``: the edit's ``borrow``, the mouth of a
    frame that opens that wide, never one of the left-out window), against the later one."""
    o = openness(model)["mouth"]
    pairs = ratio_events(o, gap, JAW_RATIO, MAX_JAW_RATIO, JAW_MIN_OPEN)

    def program(ref: int, event: int) -> dict[str, Any]:
        edit: dict[str, Any] = {"op": "mouth_open", "value": round(float(o[event] / o[ref]), 3)}
        if pull is not None:
            edit["pull"] = pull
        if borrow:
            edit["borrow"] = True
        return {"version": 1, "edits": [edit]}

    out = _whatif(model, pairs, program, ("lips_outer",), 0.15, feather, detail, leave_out)
    out.update({"gap": gap, "pull": pull, "borrow": borrow})
    return out


def squint_whatif(model: Any, gap: int = BLINK_GAP, feather: float = 8.0, detail: str | None = None,
                  leave_out: int = BLINK_LEAVE_OUT, pull: bool | None = None) -> dict[str, Any]:
    """Eyes half closed against the shot's own: where the eyes' opening falls to a share of an open frame's
    within ``gap`` frames (a blink caught half way, :func:`~vq_models.events.ratio_events`), the open frame
    rendered with each eye's ``eye_open`` at its own share, against the later frame. ``pull``: the edits'
    ``pull`` (None: as the op decides)."""
    o = openness(model)
    eyes = np.nanmean(np.stack([o["left_eye"], o["right_eye"]]), axis=0)
    med = float(np.nanmedian(eyes))
    pairs = ratio_events(eyes, gap, SQUINT_LOW, SQUINT_HIGH, BLINK_OPEN * med)

    def program(ref: int, event: int) -> dict[str, Any]:
        edits = []
        for side, name in (("left", "left_eye"), ("right", "right_eye")):
            share = float(np.clip(np.nan_to_num(o[name][event] / o[name][ref], nan=1.0), 0.0, 1.0))
            edit: dict[str, Any] = {"op": "eye_open", "eye": side, "value": round(share, 3)}
            if pull is not None:
                edit["pull"] = pull
            edits.append(edit)
        return {"version": 1, "edits": edits}

    out = _whatif(model, pairs, program, ("left_eye", "right_eye"), 0.35, feather, detail, leave_out)
    out.update({"gap": gap, "pull": pull, "median_opening": med})
    return out


def gaze_offsets(model: Any) -> dict[str, np.ndarray]:
    """Per frame (in shot order), each eye's iris centre relative to its eye's centre, over the eye's width, in
    crop space ((N, 2); NaN without both contours): what ``gaze``'s value is measured in."""
    out: dict[str, list[tuple[float, float]]] = {"left": [], "right": []}
    for contours, tf in _tracked_frames(model):
        for side in out:
            eye, iris = contours.get(f"{side}_eye"), contours.get(f"{side}_iris")
            if eye is None or iris is None or len(eye) < 3 or len(iris) < 3:
                out[side].append((float("nan"), float("nan")))
                continue
            gaze = eye_gaze(tf.to_crop(np.asarray(eye, np.float64)[:, :2]),
                            tf.to_crop(np.asarray(iris, np.float64)[:, :2]))
            out[side].append(gaze if gaze is not None else (float("nan"),) * 2)
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def gaze_whatif(model: Any, gap: int = 4, feather: float = 8.0, detail: str | None = None,
                leave_out: int = 3, borrow: bool = False) -> dict[str, Any]:
    """A gaze against the shot's own: where both irises move sideways by at least :data:`GAZE_MIN_MOVE` of the
    eye's width within ``gap`` frames while the eyes stay as open (:func:`~vq_models.events.gaze_events`), the
    earlier frame rendered with each eye's ``gaze`` at its own move, against the later one. ``borrow``: the
    edits' ``borrow`` (the eye of a frame that looks there, never one of the left-out window)."""
    offsets = gaze_offsets(model)
    o = openness(model)
    eyes = np.nanmean(np.stack([o["left_eye"], o["right_eye"]]), axis=0)
    moves = np.nanmean(np.stack([offsets["left"][:, 0], offsets["right"][:, 0]]), axis=0)
    pairs = gaze_events(moves, eyes, gap)

    def program(ref: int, event: int) -> dict[str, Any]:
        edits = []
        for side in ("left", "right"):
            move = offsets[side][event] - offsets[side][ref]
            edits.append({"op": "gaze", "eye": side, "value": [round(float(np.nan_to_num(m)), 3) for m in move],
                          **({"borrow": True} if borrow else {})})
        return {"version": 1, "edits": edits}

    out = _whatif(model, pairs, program, ("left_eye", "right_eye"), 0.35, feather, detail, leave_out)
    out.update({"gap": gap, "borrow": borrow})
    return out


#: how many frames showing teeth :func:`teeth_left` renders, spread evenly over the shot
TEETH_LEFT_FRAMES = 12
#: a pixel between the tracked inner lips reads as a tooth above this share of the plate's 90th percentile of
#: brightness there (the frame's own teeth)
TEETH_BRIGHT_SHARE = 0.6
#: the least share of the crop's pixels that must be tooth-like (:func:`tooth_like_pixels`) for a frame to
#: count as showing teeth (40 pixels of a 256² crop)
TEETH_SHOWN_SHARE = 0.0006


def tooth_like_pixels(crop: np.ndarray, inner: np.ndarray, outer: np.ndarray,
                      lips_from: np.ndarray | None = None) -> np.ndarray:
    """The pixels of ``crop`` (display sRGB) between the tracked inner lips (``inner``) that look like teeth
    by a plain rule that knows nothing of codes: brighter and less saturated than the median of the lips
    around them (``outer`` minus ``inner``; in ``lips_from`` where given: an edit's composite judged by the
    plate's lips). A tongue or lip is as saturated as the lips, the cavity darker.
    How :func:`teeth_left` picks its frames, so that frames whose teeth carry no teeth code are measured too
    (lp_d13 frame 150: teeth across the mouth, not one teeth-coded pixel)."""
    lips = np.asarray(outer, bool) & ~np.asarray(inner, bool)
    if not lips.any():
        return np.zeros(np.shape(inner), bool)
    reference = (crop if lips_from is None else lips_from)[lips]
    return (np.asarray(inner, bool) & (luma(crop) > float(np.median(luma(reference))))
            & (chroma(crop) < float(np.median(chroma(reference)))))


def _lips_in_crop(tracking: Any, model: Any, frame: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The frame's tracked inner and outer lips as masks in its crop, or None where it has no such contours."""
    contours = (tracking.frames[frame].contours or {}) if frame in tracking.frames else {}
    s, tf = model.shot.crop_size, model.shot.transform(frame)
    masks = []
    for name in ("lips_inner", "lips_outer"):
        contour = contours.get(name)
        if contour is None or len(contour) < 3:
            return None
        masks.append(rasterize_polygon(tf.to_crop(np.asarray(contour, np.float64)[:, :2]), (s, s)))
    return (masks[0], masks[1]) if masks[0].any() else None


def teeth_left(model: Any, frames: int = TEETH_LEFT_FRAMES, feather: float = 8.0,
               detail: str | None = None, value: float = 0.0) -> dict[str, Any]:
    """What ``teeth 0`` (``teeth value``) leaves of the teeth on ``frames`` frames spread evenly over those
    showing teeth (:data:`TEETH_SHOWN_SHARE` of the crop tooth-like, :func:`tooth_like_pixels`), each in
    its own crop: between the tracked inner lips, the composite's pixels as bright as teeth
    (:data:`TEETH_BRIGHT_SHARE`) as a share of the plate's. 0: every tooth is gone; 1: nothing changed. Beside it
    ``tooth_like_left``: the composite's pixels that :func:`tooth_like_pixels` takes for teeth (by the plate's
    lips) as a share of the plate's; a tongue as bright as teeth (lp_d12's) counts in ``left`` when kept, not
    here, and teeth in shadow darker than the lips count only in ``left``.
    Real footage has no frame of this mouth without its teeth, so there is no what-if; but teeth left standing
    are what a compositor sees first (lp_d13's smile, benchmarks/RESULTS.md). Frames are found by their pixels,
    not their codes: a frame whose teeth carry no teeth code is where ``teeth 0`` is likeliest to fail.
    ``untouched`` lists every frame showing teeth where the op changed no label at all (its teeth stay whole)."""
    model.prior()  # raises, naming the missing prior, before anything renders
    tracking = load_tracking(model.shot.tracking_path)
    s = model.shot.crop_size
    showing = []
    for f in model.frames:
        lips = _lips_in_crop(tracking, model, f)
        if lips is None:
            continue
        if tooth_like_pixels(np.clip(model.shot.aligned(f), 0.0, 1.0), *lips).sum() >= TEETH_SHOWN_SHARE * s * s:
            showing.append((f, lips))
    picked = [showing[int(i)] for i in np.unique(np.linspace(0, len(showing) - 1, min(frames, len(showing))).round())]
    program = {"version": 1, "edits": [{"op": "teeth", "value": float(value)}]}
    rows = []
    try:  # the prior lacks the segments the op needs: say so, keep the report
        # labels only, so every frame showing teeth: where the op found none, the plate's teeth stay whole
        untouched = [f for f, _ in showing if not model.edited_labels(f, program)[1].any()]
    except InputError as exc:
        return {"events": [], "count": 0, "mean_left": None, "max_left": None, "unavailable": str(exc)}
    for f, (inner, outer) in picked:  # one frame at a time: a 4K plate and its composite are large
        pf = render_on_plate(model, f, program, "edit-only", feather, detail)  # the prior passed above
        tf = model.shot.transform(f)
        plate_crop, comp_crop = crop_plate(pf.plate, tf, s), crop_plate(pf.comp, tf, s)
        plate, comp = luma(plate_crop)[inner], luma(comp_crop)[inner]
        bright = TEETH_BRIGHT_SHARE * float(np.percentile(plate, 90))
        shown = int((plate > bright).sum())
        if shown:
            row = {"frame": f, "teeth_px": shown, "left": float((comp > bright).sum() / shown)}
            like = int(tooth_like_pixels(plate_crop, inner, outer).sum())
            if like:
                kept = tooth_like_pixels(comp_crop, inner, outer, lips_from=plate_crop).sum()
                row["tooth_like_left"] = float(kept / like)
            rows.append(row)
    left = [r["left"] for r in rows]
    like_left = [r["tooth_like_left"] for r in rows if "tooth_like_left" in r]
    return {"events": rows, "count": len(rows), "showing_teeth": len(showing), "untouched": untouched,
            "mean_left": float(np.mean(left)) if left else None,
            "max_left": float(np.max(left)) if left else None,
            "mean_tooth_like_left": float(np.mean(like_left)) if like_left else None,
            "max_tooth_like_left": float(np.max(like_left)) if like_left else None, "program": program}


#: The real-footage what-ifs by report key (``vqedit eval --KEY``, every one in ``vqedit demo --clip``): each
#: renders an edit on frames of the shot against the frames where the shot does it itself. Those taking a
#: ``pull`` are :data:`PULLED_WHATIFS`, those taking a ``borrow`` :data:`BORROWED_WHATIFS`.
WHATIFS: dict[str, Callable[..., dict[str, Any]]] = {
    "blinks": blink_whatif, "squint": squint_whatif, "gaze": gaze_whatif, "mouth": mouth_whatif, "jaw": jaw_whatif,
}
PULLED_WHATIFS = frozenset({"squint", "jaw"})
BORROWED_WHATIFS = frozenset({"gaze", "jaw"})

