"""A trained shot, ready to render: Stage I labels + artist prior + edits + Stage II renderer + paste-back.

This is the one object the in-process ``vqedit render``, the render server and the demo share, so a farm
render through the server and a local render cannot drift apart. Per frame it does what paper Sec. 4.3
describes: take the frame's label maps (t-1, t, t+1), apply the keyframed edit program to each, render the
window with the personalised SPADE generator, warp the crop back into plate space, and build the alpha
(the changed pixels dilated and feathered, within the face; or the whole face for identity renders).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from host_plugin.modes import RENDER_MODES  # one owner of the render modes, shared with the hosts
from vq_models.composite import RENDER_REACH_PX, alpha_bounds, edit_alpha, face_alpha, paste_to_plate
from vq_models.detail import DETAIL_MODES, DetailResult, PlateDetail
from vq_models.edits.exemplar_fit import GrowFit, fit_region_grow
from vq_models.edits.exemplars import (
    MOUTH,
    MOUTH_CONTOURS,
    PART_CONTOURS,
    PART_IRISES,
    PartExemplars,
    PartTrack,
    part_track,
)
from vq_models.edits.geometry import rasterize_polygon
from vq_models.edits.lip_share import fit_upper_lip_share, mouth_middle
from vq_models.edits.prior import (
    Prior,
    label_outlines,
    load_prior,
    save_prior,
    validate_prior,
)
from vq_models.edits.program import EditProgram, apply_program_rules, opening_kept, parse_program
from vq_models.edits.seen import TeethLook, TeethReach, shot_teeth_look, shot_teeth_reach, with_teeth_seen
from vq_models.edits.spec import DetailMove, EdgeShift, EditRule, FilledRegion, FrameContext, PlateRemnants
from vq_models.errors import InputError
from vq_models.fill_anchor import anchor_filled
from vq_models.frame_render import FrameRender, save_composite
from vq_models.moved_parts import move_remainders, redrawn, shift_edges, shift_render_edges
from vq_models.shot import Shot
from vq_models.tracking.schema import load_tracking

__all__ = ["RENDER_MODES", "FrameRender", "LabelOverride", "ShotModel", "save_composite", "shot_summary"]

log = logging.getLogger("vqedit.runtime")


@dataclass(frozen=True)
class LabelOverride:
    """Label maps a render starts from instead of the shot's own, and where they may show (expression
    transfer, :mod:`vq_models.transfer`: the driver's mouth on this shot's face).

    ``labels(frame)`` is the (L, L) uint8 map at any shot frame of the window, before the edit program;
    ``region`` is a crop-space (S, S) soft mask: the face mask is widened by it (a dropped jaw may leave the
    shot's own face mask) and an ``edit-only`` alpha never leaves it (feathered), so the plate outside it
    stays bit for bit whatever the labels there did. ``detail_exclude``: frames whose plate must not lend
    its detail where the labels changed (the plate-detail donors of :mod:`vq_models.detail`): a frame whose
    mouth is in another state than the transferred one (a smile's teeth through a closed mouth).
    """

    labels: Callable[[int], np.ndarray]
    region: np.ndarray
    detail_exclude: frozenset[int] = frozenset()


class ShotModel:
    """Everything needed to render one shot. Thread-safe for concurrent ``render_frame`` calls."""

    def __init__(self, shot: Shot, stage1: Any, stage2: Any, device: str = "cpu"):
        self.shot = shot
        self.stage1 = stage1
        self.stage2 = stage2
        self.device = device
        self._prior: Prior | None = None
        self._tracking: Any = None
        self._lock = threading.RLock()
        self._regions: dict[int, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = {}
        self.exemplars = PartExemplars(shot.frames, self.part_tracks, self.label_map, self.head_pose,
                                       region_grow=self._fitted_region_grow)
        self._grow_fits: dict[frozenset[int], GrowFit | None] = {}
        self._grow_lock = threading.Lock()
        # facts measured once over the shot's frames: its tracked mouths and the upper lip's share fitted on
        # them per left-out set, and how far its teeth reach under a prior (the prior kept with it)
        self._facts_lock = threading.Lock()
        self._mouth_middles: dict[int, tuple[float, float] | None] | None = None
        self._lip_shares: dict[frozenset[int], float] = {}
        self._reach: tuple[Prior, TeethReach] | None = None
        self.detail = PlateDetail(shot, self._labels_as_seen, self.num_codes, lambda: self.prior(required=False),
                                  self.render_size)
        code_luma, code_colours = getattr(stage2, "code_luma", None), getattr(stage2, "code_colours", None)
        self._code_luma = code_luma() if callable(code_luma) else None
        self._code_colours = code_colours() if callable(code_colours) else None
        if stage1.label_size != stage2.label_size or stage1.num_codes != stage2.num_codes:
            raise InputError(
                f"{shot.root}: Stage II was trained on {stage2.num_codes} codes at {stage2.label_size}² but Stage I "
                f"has {stage1.num_codes} at {stage1.label_size}² (retrain Stage II)"
            )

    @classmethod
    def load(cls, shot_dir: str | Path, device: str = "cpu") -> ShotModel:
        from vq_models.stage1_model import Stage1Model
        from vq_models.stage2_model import Stage2Renderer

        shot = Shot.open(shot_dir)
        if (missing := untrained(shot)) is not None:
            raise InputError(missing)
        stage1 = Stage1Model.load(shot.stage1_dir, device=device)
        stage2 = Stage2Renderer.load(shot.stage2_dir, device=device)
        if (stale := shot.stale_alignment()) is not None:
            log.warning(stale)
        return cls(shot, stage1, stage2, device)

    # --- description -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.shot.name

    @property
    def num_codes(self) -> int:
        return int(self.stage1.num_codes)

    @property
    def frames(self) -> list[int]:
        return self.shot.frames

    @property
    def label_size(self) -> int:
        return int(self.stage1.label_size)

    @property
    def render_size(self) -> int:
        return int(self.stage2.render_size)

    @property
    def plate_info(self) -> dict[str, Any]:
        plate = self.shot.plate
        w, h = self.shot.plate_size
        dw = tuple(plate.get("display_window") or (0, 0, w, h))
        return {
            "width": w,
            "height": h,
            "display_window": list(dw),
            "data_window": list(plate.get("data_window") or dw),
            "colorspace": str(plate.get("colorspace") or "lin_rec709"),
            "pixel_aspect": float(plate.get("pixel_aspect") or 1.0),
        }

    def memory_bytes(self) -> int:
        total = 0
        for part in (getattr(self.stage1, "net", None), getattr(self.stage2, "generator", None)):
            if part is not None:
                total += sum(p.numel() * p.element_size() for p in part.parameters())
                total += sum(b.numel() * b.element_size() for b in part.buffers())
        return int(total)

    # --- prior ---------------------------------------------------------------------------------------
    def get_prior(self) -> dict[str, Any]:
        prior = self.prior(required=False)
        return prior.to_json() if prior is not None else {}

    def set_prior(self, obj: dict[str, Any]) -> None:
        prior = validate_prior(obj, "prior")
        if prior.num_codes != self.num_codes:
            raise InputError(f"prior: num_codes is {prior.num_codes}, the shot model has {self.num_codes}")
        with self._lock:
            save_prior(prior, self.shot.prior_path)
            self._prior = prior
        self.detail.forget_donors()  # they compare frames by the prior's segments

    def prior(self, required: bool = True) -> Prior | None:
        with self._lock:
            if self._prior is None and self.shot.prior_path.is_file():
                self._prior = load_prior(self.shot.prior_path)
                if self._prior.num_codes != self.num_codes:
                    raise InputError(
                        f"{self.shot.prior_path}: num_codes is {self._prior.num_codes}, Stage I has {self.num_codes}"
                    )
        if self._prior is None and required:
            raise InputError(f"{self.shot.prior_path}: no artist prior (run `vqedit prior {self.shot.root} --auto`)")
        return self._prior

    # --- labels --------------------------------------------------------------------------------------
    def _frame(self, frame: int) -> int:
        frame = int(frame)
        if frame not in set(self.frames):
            raise InputError(f"frame {frame} is not in shot {self.name} ({self.frames[0]}-{self.frames[-1]})")
        return frame

    def label_map(self, frame: int) -> np.ndarray:
        return self.stage1.label_map(self._frame(frame))

    def labels_from_image(self, rgb: np.ndarray, frame: int | None = None, fg_mask: np.ndarray | None = None,
                          roi_mask: np.ndarray | None = None) -> np.ndarray:
        """Label a new image. A crop-sized (S, S, 3) sRGB image is labelled as is; a plate-sized one is first
        cropped with ``frame``'s transform (the frame must be in the shot). ``fg_mask`` (crop-sized, soft):
        pixels outside the face quantise to the background code, as in the shot's own labels (default: none).
        ``roi_mask`` (crop-sized, soft): the image's ROI, which a Stage I with the region tap reads; without
        it, ``frame``'s own ROI is used (the image is taken to show that frame's face where it was), and
        with neither such a model refuses rather than label with a guessed ROI."""
        img = np.asarray(rgb, dtype=np.float32)
        if img.ndim != 3 or img.shape[2] < 3:
            raise InputError(f"image: expected (H, W, 3) RGB, got shape {img.shape}")
        img = img[..., :3]
        if img.shape[0] != img.shape[1]:
            if frame is None:
                raise InputError("image: a plate-sized image needs the frame number its crop transform comes from")
            from vq_models.face.align import crop

            img = crop(img, self.shot.transform(self._frame(frame)), self.shot.crop_size)
        if roi_mask is None and self.stage1.needs_roi:
            if frame is None:
                raise InputError("image: this shot's Stage I reads the ROI mask (its region tap is on); give the "
                                 "frame whose crop the image shows, or the image's ROI mask")
            roi_mask = self.shot.roi_mask(self._frame(frame))
        return self.stage1.labels_from_image(np.clip(img, 0.0, 1.0), fg_mask, roi_mask)

    def _contours(self, frame: int) -> dict[str, Any]:
        """The frame's tracked contours in plate pixels ({} when the shot has no tracking for it)."""
        with self._lock:
            if self._tracking is None:
                self._tracking = load_tracking(self.shot.tracking_path) if self.shot.tracking_path.is_file() else False
        if self._tracking and frame in self._tracking.frames:
            return dict(self._tracking.frames[frame].contours or {})
        return {}

    def _labels_as_seen(self, frame: int) -> np.ndarray:
        """The frame's labels with the teeth its own pixels show where its codes miss them
        (:func:`~vq_models.edits.seen.with_teeth_seen`): how plate detail compares frames, so a frame whose
        teeth carry an interior code does not lend their band to an emptied mouth."""
        labels = self.label_map(frame)
        prior = self.prior(required=False)
        if prior is None:
            return labels
        return with_teeth_seen(labels, prior, self._inner_lips(frame), functools.partial(self._label_crop, frame),
                               self._teeth_look(prior), self._teeth_reach(prior))

    def _inner_lip_outline(self, frame: int) -> np.ndarray | None:
        """The frame's tracked inner-lip contour in label coordinates (None without it), the other contours left."""
        return label_outlines(self._contours(frame), self.shot.transform(frame), self.shot.crop_size,
                              self.label_size, names=("lips_inner",)).get("lips_inner")

    def _inner_lips(self, frame: int) -> np.ndarray | None:
        """The frame's tracked inner lips at label size (None without them), without rasterising the rest."""
        outline = self._inner_lip_outline(frame)
        return None if outline is None else self._label_regions({"lips_inner": outline})["lips_inner"]

    def _label_regions(self, outlines: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outlines in label coordinates → boolean masks at label size."""
        return {name: rasterize_polygon(points, (self.label_size, self.label_size)) for name, points in outlines.items()}

    def regions(self, frame: int) -> dict[str, np.ndarray]:
        """Tracked regions (eyes, brows, lips ...) at label size, used by edits to tell left from right."""
        return self._tracked(frame)[0]

    def _tracked(self, frame: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The frame's tracked regions at label size and their outlines in label coordinates (cached)."""
        if frame not in self._regions:
            outlines = label_outlines(self._contours(frame), self.shot.transform(frame), self.shot.crop_size,
                                      self.label_size)
            regions = self._label_regions(outlines)
            with self._lock:
                self._regions[frame] = (regions, outlines)
        return self._regions[frame]

    def _context(self, frame: int, exclude: set[int] | None = None) -> FrameContext:
        regions, outlines = self._tracked(frame)
        return FrameContext(regions=regions, transform=self.shot.transform(frame), crop_size=self.shot.crop_size,
                            code_luma=self._code_luma, frame=int(frame), exemplars=self.exemplars,
                            exclude=frozenset(exclude or ()), outlines=outlines,
                            crop=functools.partial(self._label_crop, int(frame)), teeth_look=self._teeth_look(),
                            teeth_reach=self._teeth_reach,
                            upper_lip_share=functools.partial(self._upper_lip_share, frozenset(exclude or ())))

    def _upper_lip_share(self, exclude: frozenset[int]) -> float:
        """How much of an opening this shot's upper lip takes (:mod:`vq_models.edits.lip_share`), fitted on its
        tracked mouths, none of ``exclude`` looked at (a what-if leaves its answer out). The mouths are read once
        per shot, the fit once per left-out set."""
        with self._facts_lock:
            if self._mouth_middles is None:
                middles = {}
                for f in self.frames:
                    outline = self._inner_lip_outline(f)
                    middles[f] = None if outline is None else mouth_middle(outline, self.label_size)
                self._mouth_middles = middles
            if exclude not in self._lip_shares:
                self._lip_shares[exclude] = fit_upper_lip_share(
                    m for f, m in self._mouth_middles.items() if f not in exclude)
            return self._lip_shares[exclude]

    def _teeth_look(self, prior: Prior | None = None) -> TeethLook | None:
        """What the shot's teeth look like beside its lips under ``prior`` (default: the current one; None
        without one)."""
        prior = prior or self.prior(required=False)
        return None if prior is None else shot_teeth_look(self._code_colours, prior)

    def _teeth_reach(self, prior: Prior | None = None) -> TeethReach | None:
        """How far from its lip a row of the shot's teeth reaches under ``prior`` (default: the current one; None
        without one), measured over the shot's frames once per prior."""
        prior = prior or self.prior(required=False)
        if prior is None:
            return None
        with self._facts_lock:
            if self._reach is None or self._reach[0] is not prior:
                frames = ((self.label_map(f), self._inner_lips(f)) for f in self.frames)
                self._reach = (prior, shot_teeth_reach(frames, prior))
            return self._reach[1]

    def _fitted_region_grow(self, exclude: frozenset[int]) -> float | None:
        """The exemplar region's share fitted on the shot's own blinks, none of ``exclude`` looked at
        (:func:`~vq_models.edits.exemplar_fit.fit_region_grow`); None where too few blinks can say. Fitted once
        per left-out set and kept: the first closing ``eye_open`` on a shot pays a few renders."""
        with self._grow_lock:
            if exclude not in self._grow_fits:
                self._grow_fits[exclude] = fit_region_grow(self.exemplars, self.label_map, self.render_window,
                                                           self._crop_at_render_size, exclude)
            fit = self._grow_fits[exclude]
        return None if fit is None else fit.grow

    def _crop_at_render_size(self, frame: int) -> np.ndarray:
        """The frame's real aligned crop, area-resized to the render's size (sRGB in [0, 1])."""
        return self._crop_at(frame, self.render_size)

    def _label_crop(self, frame: int) -> np.ndarray | None:
        """The frame's crop at the label map's size for ops that look at its pixels, or None where the shot folder
        holds no crop for it: what they find there refines an edit, so a missing file must not stop a render."""
        try:
            return self._crop_at(frame, self.label_size)
        except InputError:
            return None

    def _crop_at(self, frame: int, size: int) -> np.ndarray:
        """The frame's real aligned crop, area-resized to ``size``² (sRGB in [0, 1])."""
        crop = np.clip(self.shot.aligned(frame), 0.0, 1.0)
        return crop if crop.shape[0] == size else cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)

    def head_pose(self, frame: int) -> np.ndarray:
        """The head's in-plane pose at ``frame``: the 2×2 linear part (rotation and scale) of its plate-to-crop
        transform (:func:`vq_models.edits.exemplars.pose_distance` compares two)."""
        return self.shot.transform(frame).plate_to_crop[:, :2]

    def part_tracks(self, frame: int) -> dict[str, PartTrack]:
        """Each tracked eye and the mouth (:data:`~vq_models.edits.exemplars.MOUTH`) at ``frame`` in label pixels
        (for the parts borrowed from other frames)."""
        contours = self._contours(frame)
        tf, scale = self.shot.transform(frame), self.label_size / float(self.shot.crop_size)

        def label_px(name: str | None) -> np.ndarray | None:
            pts = contours.get(name) if name else None
            if pts is None or len(pts) < 3:
                return None
            return (tf.to_crop(np.asarray(pts, np.float64)[:, :2]) + 0.5) * scale - 0.5

        tracks = {}
        for part, (outline, opening) in PART_CONTOURS.items():
            line, inner = label_px(outline), label_px(opening)
            if line is None or (opening is not None and inner is None):
                continue
            track = part_track(line, inner, label_px(PART_IRISES[part]))
            if track is not None:
                tracks[part] = track
        lips = [label_px(name) for name in MOUTH_CONTOURS]
        if all(c is not None for c in lips) and (mouth := part_track(*lips)) is not None:
            tracks[MOUTH] = mouth
        return tracks

    def parse_program(self, program: Any) -> EditProgram | None:
        if program is None or isinstance(program, EditProgram):
            return program
        if isinstance(program, dict) and not program.get("edits"):
            return None
        return parse_program(program, prior=self.prior())

    def edited_labels(self, frame: int, program: Any = None, exclude: set[int] | None = None,
                      override: LabelOverride | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The frame's labels with the program applied at that frame: (labels uint8 (L, L), changed bool).
        ``exclude``: frames edits never borrow labels from (see :mod:`vq_models.edits.exemplars`).
        ``override``: start from its labels instead of the shot's; ``changed`` is then against the shot's own."""
        out, changed, _ = self._edited(frame, program, exclude, override)
        return out, changed

    def _edited(self, frame: int, program: Any, exclude: set[int] | None,
                override: LabelOverride | None) -> tuple[np.ndarray, np.ndarray, list[EditRule]]:
        """:meth:`edited_labels` and what the render must know of the program at ``frame`` (its
        :class:`~vq_models.edits.spec.EditRule` list: donor rules, moved parts, the edge field)."""
        own = self.label_map(frame)
        labels = own if override is None else np.asarray(override.labels(frame), np.uint8)
        prog = self.parse_program(program)
        if prog is None:
            return labels, labels != own, []
        out, changed, rules = apply_program_rules(prog, labels, frame, self.prior(), self._context(frame, exclude))
        return out, (changed | (labels != own)) if override is not None else changed, rules

    def window(self, frame: int, program: Any = None, exclude: set[int] | None = None,
               override: LabelOverride | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Edited label window (3, L, L) for t-1, t, t+1 (edge frames repeat) and the changed mask at t."""
        labels, changed, _ = self._window(frame, program, exclude, override)
        return labels, changed

    def _window(self, frame: int, program: Any, exclude: set[int] | None,
                override: LabelOverride | None) -> tuple[np.ndarray, np.ndarray, list[EditRule]]:
        """:meth:`window` and the program's detail rules at t (:meth:`_edited`)."""
        frames = self.frames
        i = frames.index(self._frame(frame))
        prog = self.parse_program(program)
        out, changed, rules = [], None, []
        for j in (max(0, i - 1), i, min(len(frames) - 1, i + 1)):
            labels, ch, r = self._edited(frames[j], prog, exclude, override)
            out.append(labels)
            if j == i:
                changed, rules = ch, r
        return np.stack(out), changed, rules  # type: ignore[return-value]

    # --- rendering -----------------------------------------------------------------------------------
    def render_window(self, labels: np.ndarray) -> np.ndarray:
        """uint8 (3, L, L) label window → float32 (R, R, 3) sRGB crop (Stage II)."""
        arr = np.asarray(labels)
        if arr.dtype != np.uint8 or arr.shape != (3, self.label_size, self.label_size):
            raise InputError(f"labels: expected uint8 (3, {self.label_size}, {self.label_size}), got {arr.dtype} {arr.shape}")
        if int(arr.max()) >= self.num_codes:
            raise InputError(f"labels: code {int(arr.max())} is not in 0..{self.num_codes - 1}")
        return self.stage2.render(arr)

    def render_frame(
        self,
        frame: int,
        program: Any = None,
        *,
        feather: float = 8.0,
        mode: str = "identity",
        labels: np.ndarray | None = None,
        detail: str | None = None,
        exclude_frames: set[int] | None = None,
        override: LabelOverride | None = None,
    ) -> FrameRender:
        """Render one frame into plate space.

        ``mode="identity"``: alpha is the whole face (the render replaces the face; with no edits this
        measures reconstruction). ``mode="edit-only"``: alpha covers only the pixels the edits changed,
        grown by the renderer's reach (``RENDER_REACH_PX`` label pixels) and feathered by ``feather`` plate
        pixels, within the face. ``labels`` overrides the
        shot's own (edited) labels, as the server's ``render`` request allows: a (3, L, L) window, or the
        (L, L) map at ``frame`` (its neighbours then come from the shot and ``program``).

        ``detail``: ``"plate"`` keeps the plate's pixel density (vq_models.detail: the render's band below its
        own pixel size, the plate's above, a donor frame's where the labels changed); ``"none"`` pastes the
        render as Stage II drew it (the paper's full-face renderer). Default: ``"plate"`` when the shot's
        plate source is readable, else ``"none"``; :attr:`FrameRender.detail` says which ran.
        ``exclude_frames``: frames never borrowed from, for labels or detail (what-ifs leave the answer out).
        ``override``: labels to start from instead of the shot's (:class:`LabelOverride`, expression transfer);
        the program applies on top, and an ``edit-only`` alpha stays inside its region.
        """
        from vq_models.io.colour import from_network

        if mode not in RENDER_MODES:
            raise InputError(f"mode {mode!r}: choose from {', '.join(RENDER_MODES)}")
        if detail is None:
            detail = "plate" if self.detail.available() else "none"
        if detail not in DETAIL_MODES:
            raise InputError(f"detail {detail!r}: choose from {', '.join(DETAIL_MODES)}")
        frame = self._frame(frame)
        rules: list[EditRule] = []  # a full window given as labels carries no program, so none
        if labels is not None:
            window = np.asarray(labels)
            original = self.label_map(frame)
            L = self.label_size
            if window.shape == (L, L):  # the edited map at t; t-1 and t+1 as the program makes them
                centre = window
                window, _, rules = self._window(frame, program, exclude_frames, override)
                rules = _moves_kept(rules, centre == window[1], window[1] != original)
                window[1] = centre
            if window.shape != (3, L, L):
                raise InputError(f"labels: expected ({L}, {L}) or (3, {L}, {L}), got {window.shape}")
            changed = window[1] != original
        else:
            window, changed, rules = self._window(frame, program, exclude_frames, override)
        moves = [r for r in rules if isinstance(r, DetailMove)]
        edges = [r for r in rules if isinstance(r, EdgeShift)]
        changed = redrawn(changed, moves)
        crop = move_remainders(self.render_window(window.astype(np.uint8)), moves, self.label_size)
        filled = np.zeros(np.shape(changed), bool)
        for rule in rules:
            if isinstance(rule, FilledRegion):
                filled |= rule.filled
        palette = self._code_colours if filled.any() else None
        if palette is not None:  # a model trained before meta.json kept the palette renders the fill as drawn
            crop = anchor_filled(crop, window[1], filled, palette)
        transform = self.shot.transform(frame)
        info = self.plate_info
        size = (info["display_window"][2], info["display_window"][3])
        # Paste-back works inside the crop's footprint on the plate only (a 2K/4K plate is mostly not face):
        # the sub-window's transform is the crop transform after a shift, and nothing outside it can be
        # covered, so the result equals the full-frame computation.
        (x0, y0, x1, y1), sub = _footprint(transform, self.shot.crop_size, size)
        sub_size = (x1 - x0, y1 - y0)
        rgb_sub, coverage = paste_to_plate(crop, sub, sub_size, crop_size=self.shot.crop_size)
        rgb_sub = shift_render_edges(rgb_sub, edges, sub, self.shot.crop_size)
        detail_result = DetailResult("none")
        if detail == "plate":
            no_donors = set(exclude_frames or ()) | set(override.detail_exclude if override is not None else ())
            rgb_sub, detail_result = self.detail.apply(frame, rgb_sub, (x0, y0, x1, y1), sub, np.asarray(changed, bool),
                                                       window[1], exclude=no_donors, rules=rules)
        # an edge's rest moves the finished edit there, detail and all (smoothed across columns, so a line
        # crossing the edge stays straight); the alpha covers what it moves
        rgb_sub = shift_edges(rgb_sub, edges, sub, self.shot.crop_size)
        changed = redrawn(changed, (), edges)
        face = self.shot.fg_mask(frame)
        if override is not None:
            face = np.maximum(face, np.asarray(override.region, np.float32))
        if mode == "identity":
            alpha_sub = face_alpha(face, sub, sub_size, feather, crop_size=self.shot.crop_size)
        else:
            # feathered inward like an identity render: the render is weakest at the silhouette, where Stage II
            # blends face and background, and an edit that reaches it (expression transfer moves the jaw and
            # cheeks) must fade out before it, not draw a halo there
            face_plate = face_alpha(face, sub, sub_size, feather, crop_size=self.shot.crop_size)
            alpha_sub = edit_alpha(changed, sub, sub_size, feather, face_mask_plate=face_plate,
                                   crop_size=self.shot.crop_size, reach_px=RENDER_REACH_PX)
            if detail_result.remnants is not None:  # what the labels were too coarse to remove goes too
                alpha_sub = np.maximum(alpha_sub, detail_result.remnants * face_plate)
            if override is not None:  # edit-only transfer: never outside the (feathered) lower-face region
                alpha_sub = alpha_sub * edit_alpha(np.asarray(override.region) >= 0.5, sub, sub_size, feather,
                                                   crop_size=self.shot.crop_size)
        alpha_sub = (alpha_sub * coverage).astype(np.float32)
        alpha_sub[coverage <= 0] = 0.0
        # Kept over the alpha's bounding box only, and colour-converted only there: on a 2K/4K plate the face
        # is a small part of the frame, and whole-plate arrays or an OCIO conversion of the whole plate would
        # cost more than the network.
        wx, wy = int(info["display_window"][0]), int(info["display_window"][1])
        bounds = alpha_bounds(alpha_sub)
        if bounds is not None:
            by, bx = slice(bounds[1], bounds[3]), slice(bounds[0], bounds[2])
            box = (wx + x0 + bx.start, wy + y0 + by.start, bx.stop - bx.start, by.stop - by.start)
            box_rgb = from_network(np.clip(rgb_sub[by, bx], 0.0, 1.0), info["colorspace"]).astype(np.float32, copy=False)
            box_alpha = np.ascontiguousarray(alpha_sub[by, bx])
        else:
            box = (wx, wy, 0, 0)
            box_rgb, box_alpha = np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32)
        return FrameRender(
            frame=frame,
            box=box,
            box_rgb=box_rgb,
            box_alpha=box_alpha,
            changed=np.asarray(changed, bool),
            labels=window[1].astype(np.uint8),
            crop=crop,
            colorspace=info["colorspace"],
            display_window=tuple(info["display_window"]),
            data_window=tuple(info["data_window"]),
            detail=detail_result,
        )

    def exemplar_png(self, frame: int | None = None) -> bytes:
        """The artist's guide (codes coloured and numbered over one frame) as PNG bytes."""
        import tempfile

        from vq_models.exemplar import detail_boxes, render_exemplar
        from vq_models.io.images import write_image

        frame = self._frame(frame if frame is not None else self.frames[len(self.frames) // 2])
        image = self.shot.aligned(frame)
        labels = self.label_map(frame)
        rgb = render_exemplar(image, labels, self.num_codes, details=detail_boxes(self.shot.roi_mask(frame), labels.shape[0]))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "exemplar.png"
            write_image(path, np.asarray(rgb), dtype="uint8")
            return path.read_bytes()


def _moves_kept(rules: list[EditRule], same: np.ndarray,
                by_program: np.ndarray) -> list[EditRule]:
    """The program's rules for a map the caller changed further (paint over the program's result): a move
    keeps only the pixels where the given map (``same``) still shows what the program moved there, so a part
    painted over is not drawn back by its own moved detail. Where the program changed labels to move the part
    (``by_program``) and the paint took all of them back, the part is back in its place: the pixels it landed
    on with its own codes (an iris overlapping itself) then show it unmoved too. An edge field, a fill and
    remnants keep only the pixels the paint left as the program made them."""
    kept: list[EditRule] = []
    for rule in rules:
        if isinstance(rule, EdgeShift):  # an edge the paint covered is the paint's
            rows = np.where(same, rule.rows, 0.0).astype(np.float32)
            if np.any(rows):
                kept.append(EdgeShift(rows))
            continue
        if isinstance(rule, FilledRegion):  # likewise a fill the paint covered
            if (filled := rule.filled & same).any():
                kept.append(FilledRegion(filled))
            continue
        if isinstance(rule, PlateRemnants):  # and the remnants of what the paint drew over
            if (within := rule.within & same).any():
                kept.append(replace(rule, within=within, opening=opening_kept(rule, [~same])))
            continue
        if isinstance(rule, DetailMove):
            moved_codes = rule.landed & by_program
            landed = rule.landed & same
            if not landed.any() or (moved_codes.any() and not (moved_codes & same).any()):
                continue
            rule = replace(rule, landed=landed)
        kept.append(rule)
    return kept


def _footprint(transform: Any, crop_size: int, size: tuple[int, int], margin: int = 3) -> tuple[tuple[int, int, int, int], Any]:
    """The plate box (x0, y0, x1, y1) holding the crop's footprint (plus ``margin`` pixels, clipped to the
    plate) and the crop transform for that box's pixels."""
    s = float(crop_size)
    corners = np.array([[-0.5, -0.5], [s - 0.5, -0.5], [-0.5, s - 0.5], [s - 0.5, s - 0.5]])
    box = transform.plate_box(corners, size, margin)
    return box, transform.windowed(box[0], box[1])


def untrained(shot: Shot) -> str | None:
    """Which training stage ``shot`` still lacks (the message names the command), or None."""
    if not shot.stage1_meta_path.is_file():
        return f"{shot.root}: no Stage I model (run `vqedit train {shot.root} --stage 1`)"
    if not shot.stage2_meta_path.is_file():
        return f"{shot.root}: no Stage II model (run `vqedit train {shot.root} --stage 2`)"
    return None


def shot_folder_warning(path: str | Path) -> str | None:
    """What a compositor picking the shot folder ``path`` on a render server should know first, or None: it is
    not a shot, a stage is untrained, or its crops were aligned on the irises (:meth:`Shot.stale_alignment`).
    Reads shot.json only, so a server can say it of every folder it offers without loading one."""
    try:
        shot = Shot.open(path)
    except InputError as exc:
        return str(exc)
    return untrained(shot) or shot.stale_alignment()


def shot_summary(model: ShotModel) -> dict[str, Any]:
    """Plain-data description of a model (for `info`/`list_models` replies and logs)."""
    return json.loads(json.dumps({
        "name": model.name,
        "num_codes": model.num_codes,
        "frames": [model.frames[0], model.frames[-1]] if model.frames else [],
        "label_size": model.label_size,
        "render_size": model.render_size,
        "plate": model.plate_info,
        "prior": bool(model.prior(required=False)),
    }))
