"""Edit operations: pure functions on uint8 label maps (crop space, one code per pixel).

Each operation takes the label map, its keyframed value, its validated fields, the artist prior and an
optional :class:`FrameContext`, and returns a new label map. :func:`apply_edit` / :func:`apply_program`
also return the exact mask of changed pixels (``before != after``), which drives the compositing alpha:
pixels no edit touched are never re-rendered into the plate.

Operations only ever copy codes that exist (in the frame or the prior), so Stage II always sees labels it
was trained on. An operation at its neutral value (eye_open 1, gaze [0, 0], mouth_open 1 ...) changes
nothing, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vq_models.edits import geometry as geo
from vq_models.edits.prior import Prior
from vq_models.edits.program import Edit, EditProgram, Value
from vq_models.errors import InputError

EYE_OPENING = ("eye_whites", "irises", "pupils")
MOUTH_INNER = ("mouth_interior", "upper_teeth", "lower_teeth", "tongue")


@dataclass
class FrameContext:
    """Per-frame facts beyond the label map.

    ``regions``: tracked regions (``left_eye``, ``right_eye``, ``left_brow`` ...) as boolean masks at the
    label map's size; they tell the left eye from the right even when one is closed. ``transform`` and
    ``crop_size`` (the shot's crop transform and its crop size) let ``paint`` take plate-space polygons.
    ``code_luma``: (K,) brightness of each code over the shot (NaN = never seen; Stage II's meta.json),
    so an op can choose a code by appearance; None when the model predates it.
    ``exemplars`` (:class:`vq_models.edits.exemplars.PartExemplars`) lets ``eye_open`` and ``mouth_open``
    borrow a real closed eye or mouth from the shot at ``frame``; ``exclude`` lists frames never borrowed from
    (what-if measurements).
    """

    regions: Mapping[str, np.ndarray] = field(default_factory=dict)
    transform: Any = None
    crop_size: int | None = None
    code_luma: np.ndarray | None = None
    frame: int | None = None
    exemplars: Any = None
    exclude: frozenset[int] = frozenset()


def pick_code(labels: np.ndarray, prior: Prior, segment: str, within: np.ndarray | None = None) -> int:
    """The code to paint ``segment`` with: its most frequent code in this frame (inside ``within`` when
    given and non-empty there), else the first code of the prior's list. Ties go to list order."""
    codes = prior.codes(segment)
    for region in ([within] if within is not None else []) + [None]:
        values = labels if region is None else labels[region]
        counts = [int(np.count_nonzero(values == c)) for c in codes]
        if max(counts) > 0:
            return codes[int(np.argmax(counts))]
    return codes[0]


def _require_any(prior: Prior, names: Sequence[str]) -> list[int]:
    codes = prior.codes_of(names)
    if not codes:
        raise InputError(f"prior: needs at least one of the segments {', '.join(names)} (none is defined)")
    return codes


def _sides(mask: np.ndarray, side: str, ctx: FrameContext, suffix: str) -> list[np.ndarray]:
    hints = (ctx.regions.get(f"left_{suffix}"), ctx.regions.get(f"right_{suffix}"))
    left, right = geo.split_left_right(mask, hints)
    return {"left": [left], "right": [right], "both": [left, right]}[side]


def _fill_code(labels: np.ndarray, prior: Prior, names: Sequence[str]) -> int:
    for name in names:
        if prior.has(name):
            return pick_code(labels, prior, name)
    prior.codes(names[0])  # raises, naming the first choice
    raise AssertionError


# --- high-level operations -------------------------------------------------------------------------------


def eye_open(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior, ctx: FrameContext) -> np.ndarray:
    """Close eyes. Strongly closed values take the eye region from the shot's own most closed frame when it
    blinks (:mod:`vq_models.edits.exemplars`: the labels of a real closed eye in this shot's codes).
    Otherwise, toward the lower lid: per column, the top ``1 - value`` of the opening becomes the lid code
    found just above the eye in that column (eyelid, else skin). At 0 no opening pixel remains."""
    out = labels.copy()
    if value >= 1.0:
        return out
    side = params.get("eye", "both")
    geometric = []
    for one in (("left", "right") if side == "both" else (side,)):
        borrowed = None
        if ctx.exemplars is not None and ctx.frame is not None:
            borrowed = ctx.exemplars.close(out, ctx.frame, one, float(value), set(ctx.exclude))
        if borrowed is None:
            geometric.append(one)
        else:
            out = borrowed
    if not geometric:
        return out
    opening = np.isin(labels, _require_any(prior, EYE_OPENING))
    for eye in _sides(opening, "both" if len(geometric) == 2 else geometric[0], ctx, "eye"):
        top, bottom, _ = geo.column_extents(eye)
        for x in np.nonzero(top >= 0)[0]:
            t, b = int(top[x]), int(bottom[x])
            keep = int(round(value * (b - t + 1)))
            new_top = b - keep + 1
            rows = np.nonzero(eye[t:new_top, x])[0] + t
            if rows.size == 0:
                continue
            code = geo.band_mode(labels, int(x), range(t - 3, t), opening)
            if code is None:
                code = _fill_code(labels, prior, ("eyelids", "skin"))
            out[rows, x] = code
    return out


def gaze(labels: np.ndarray, value: tuple[float, float], params: Mapping[str, Any], prior: Prior,
         ctx: FrameContext) -> np.ndarray:
    """Move irises + pupils by ``[dx, dy]`` × eye width, clipped to the eye opening: iris pixels that would
    land outside it are hidden by the lids, and the shift is shortened so the iris centre stays on an
    eye-opening pixel. Vacated pixels become the eye's own eye-white code."""
    out = labels.copy()
    dx, dy = value
    prior.codes("eye_whites")
    iris_codes = _require_any(prior, ("irises", "pupils"))
    opening = np.isin(labels, prior.codes_of(EYE_OPENING))
    for eye in _sides(opening, params.get("eye", "both"), ctx, "eye"):
        iris = eye & np.isin(labels, iris_codes)
        box = geo.bbox(eye)
        if box is None or not iris.any():
            continue
        x0, y0, x1, y1 = box
        width = x1 - x0 + 1
        cx, cy = geo.centroid(iris)  # type: ignore[misc]
        sx, sy = _visible_shift(eye, cx, cy, dx * width, dy * width)
        if sx == 0 and sy == 0:
            continue
        moved = geo.shift(iris, sx, sy, False)
        moved_codes = geo.shift(np.where(iris, labels, 0).astype(labels.dtype), sx, sy, 0)
        land = moved & eye
        white = pick_code(labels, prior, "eye_whites", within=eye)
        vacated = iris & ~land
        out[vacated] = white
        out[land] = moved_codes[land]
    return out


def _visible_shift(eye: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> tuple[int, int]:
    """The longest integer shift along (sx, sy) that keeps the iris centre on an eye-opening pixel, so an
    extreme gaze parks the iris at the corner of the eye instead of hiding it under the lids."""
    h, w = eye.shape
    for t in np.linspace(1.0, 0.0, 65):
        ix, iy = int(round(t * sx)), int(round(t * sy))
        px, py = int(round(cx + ix)), int(round(cy + iy))
        if 0 <= px < w and 0 <= py < h and eye[py, px]:
            return ix, iy
    return 0, 0


def teeth(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior, ctx: FrameContext) -> np.ndarray:
    """Remove teeth toward the gums: upper teeth keep their top ``value`` per column, lower teeth their
    bottom; removed pixels become mouth interior (else tongue; see :func:`_teeth_fill` for which code), or
    ``fill`` (a segment or a code) when the artist names one. At 0 no tooth remains."""
    out = labels.copy()
    if value >= 1.0:
        return out
    which = params.get("which", "both")
    names = {"upper": ["upper_teeth"], "lower": ["lower_teeth"], "both": ["upper_teeth", "lower_teeth"]}[which]
    if which == "both":
        _require_any(prior, names)
    else:
        prior.codes(names[0])
    for name in names:
        if not prior.has(name):
            continue
        mask = prior.mask(labels, name)
        top, bottom, _ = geo.column_extents(mask)
        fill = None
        for x in np.nonzero(top >= 0)[0]:
            t, b = int(top[x]), int(bottom[x])
            keep = int(round(value * (b - t + 1)))
            rows = np.arange(t + keep, b + 1) if name == "upper_teeth" else np.arange(t, b - keep + 1)
            rows = rows[mask[rows, x]]
            if rows.size:
                fill = _teeth_fill(labels, prior, _row_fill(params.get("fill"), name), name, ctx) if fill is None else fill
                out[rows, x] = fill
    return out


def _row_fill(fill: str | int | Mapping[str, str | int] | None, name: str) -> str | int | None:
    """The fill for one row of teeth: ``fill`` itself, or its ``upper`` / ``lower`` entry (None = default)."""
    if isinstance(fill, Mapping):
        return fill.get("upper" if name == "upper_teeth" else "lower")
    return fill


def _teeth_fill(labels: np.ndarray, prior: Prior, fill: str | int | None, row: str, ctx: FrameContext) -> int:
    """The code freed teeth pixels take: ``fill`` when given. Else, for the upper row, the darkest
    mouth_interior code by the shot's code brightness (``ctx.code_luma``), and for the lower row (or when
    brightness is unknown) the first code of mouth_interior (else of tongue).

    Why two defaults: behind the upper teeth is the palate in the upper lip's shadow, the deepest and
    darkest part of the mouth, which the shot never shows; behind the lower teeth the floor of the mouth,
    lit through the opening like the cavity the shot does show. On the synthetic shot (renderer trained
    with painted regions) the no-teeth what-if read 29.2 dB with the darkest code above and the cavity code
    below, 27.7 dB with the cavity code for both rows and 28.0 dB with the darkest for both. Why the first
    code and not the frame's most frequent: the visible cavity is often a strip a few pixels tall, and its
    most frequent code is then an edge code half lip or half tooth (23.1 dB against 26.7 dB on the K=255
    shot). prior --auto lists the cavity first; an artist reorders the JSON, or names a ``fill``, to choose."""
    if fill is not None:
        return _code_for(labels, fill, prior)
    if row == "upper_teeth" and ctx.code_luma is not None and prior.has("mouth_interior"):
        luma = np.asarray(ctx.code_luma, np.float64)
        seen = [c for c in prior.codes("mouth_interior") if c < len(luma) and np.isfinite(luma[c])]
        if seen:
            return min(seen, key=lambda c: luma[c])
    for name in ("mouth_interior", "tongue"):
        if prior.has(name):
            return prior.codes(name)[0]
    return _fill_code(labels, prior, ("mouth_interior", "tongue"))  # raises, naming the segment


def mouth_open(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior,
               ctx: FrameContext) -> np.ndarray:
    """Scale the mouth interior vertically about the upper lip line (the interior's top edge per column):
    the upper lip stays, the interior stretches (nearest neighbour) and the lower lip moves with its
    bottom edge. Pixels uncovered when closing take the nearest non-mouth code (chin skin). A strong closing
    in a shot that holds closed mouths takes the lips from its most closed one instead (as ``eye_open``)."""
    out = labels.copy()
    if value == 1.0:
        return out
    if value < 1.0 and ctx.exemplars is not None and ctx.frame is not None:
        borrowed = ctx.exemplars.close(out, ctx.frame, "mouth", float(value), set(ctx.exclude))
        if borrowed is not None:
            return borrowed
    inner = np.isin(labels, _require_any(prior, MOUTH_INNER))
    lower_lip = prior.mask(labels, "lower_lip", required=False)
    upper_lip = prior.mask(labels, "upper_lip", required=False)
    h = labels.shape[0]
    holes = np.zeros_like(inner)
    painted = np.zeros_like(inner)
    top, bottom, _ = geo.column_extents(inner)
    for x in np.nonzero(top >= 0)[0]:
        t, b = int(top[x]), int(bottom[x])
        height = b - t + 1
        new_h = int(round(value * height))
        d = new_h - height
        col = labels[:, x]
        lip_rows = np.nonzero(lower_lip[:, x])[0]
        lip_rows = lip_rows[lip_rows > b]
        moving = np.concatenate([np.arange(t, b + 1), lip_rows])
        holes[moving, x] = True
        if new_h > 0:
            ys = np.arange(t, min(t + new_h, h))
            src = t + np.minimum(((ys - t + 0.5) / value).astype(int), height - 1)
            out[ys, x] = col[src]
            painted[ys, x] = True
        dst = lip_rows + d
        ok = (dst >= 0) & (dst < h)
        out[dst[ok], x] = col[lip_rows[ok]]
        painted[dst[ok], x] = True
    holes &= ~painted
    if holes.any():
        source = ~(inner | lower_lip | upper_lip | painted)
        out = geo.nearest_fill(out, holes, source, _fill_code(labels, prior, ("skin",)) if not source.any() else 0)
    return out


def brows(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior, ctx: FrameContext) -> np.ndarray:
    """``remove``: thin brows from the top by ``value`` (1 = gone), filling with the nearest skin code.
    ``raise``: move brows up by ``value`` × brow height (negative lowers); they only land on skin or brow
    pixels, and the uncovered part takes the nearest skin code."""
    out = labels.copy()
    mask_all = prior.mask(labels, "brows")
    skin = prior.mask(labels, "skin")
    skin_code = pick_code(labels, prior, "skin")
    for brow in _sides(mask_all, params.get("side", "both"), ctx, "brow"):
        if not brow.any():
            continue
        if params["mode"] == "remove":
            if value <= 0.0:
                continue
            hole = np.zeros_like(brow)
            top, bottom, _ = geo.column_extents(brow)
            for x in np.nonzero(top >= 0)[0]:
                t, b = int(top[x]), int(bottom[x])
                keep = int(round((1.0 - value) * (b - t + 1)))
                hole[t:b - keep + 1, x] = brow[t:b - keep + 1, x]
            out = geo.nearest_fill(out, hole, skin & ~mask_all, skin_code)
        else:
            x0, y0, x1, y1 = geo.bbox(brow)  # type: ignore[misc]
            dy = -int(round(value * (y1 - y0 + 1)))
            if dy == 0:
                continue
            moved = geo.shift(brow, 0, dy, False)
            codes = geo.shift(np.where(brow, labels, 0).astype(labels.dtype), 0, dy, 0)
            land = moved & (skin | mask_all)
            out = geo.nearest_fill(out, brow & ~land, skin & ~mask_all, skin_code)
            out[land] = codes[land]
    return out


def nose_width(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior,
               ctx: FrameContext) -> np.ndarray:
    """Scale the nose horizontally about its centre; the wider nose only covers skin, a narrower one
    leaves the nearest skin code behind."""
    out = labels.copy()
    nose = prior.mask(labels, "nose")
    if value == 1.0 or not nose.any():
        return out
    skin = prior.mask(labels, "skin")
    x0, y0, x1, y1 = geo.bbox(nose)  # type: ignore[misc]
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    scaled = geo.scale_about(nose, value, 1.0, cx, cy, 0)
    codes = geo.scale_about(np.where(nose, labels, 0).astype(np.uint8), value, 1.0, cx, cy, 0)
    land = scaled & (nose | skin)
    out = geo.nearest_fill(out, nose & ~land, skin, pick_code(labels, prior, "skin"))
    out[land] = codes[land]
    return out


# --- low-level operations --------------------------------------------------------------------------------


def _target(labels: np.ndarray, params: Mapping[str, Any], prior: Prior) -> np.ndarray:
    if "segment" in params:
        return prior.mask(labels, params["segment"])
    return labels == params["code"]


def _code_for(labels: np.ndarray, spec: str | int, prior: Prior) -> int:
    return pick_code(labels, prior, spec) if isinstance(spec, str) else int(spec)


def replace(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior, ctx: FrameContext) -> np.ndarray:
    """Switch (value ≥ 0.5): every pixel of the source segment/code takes the destination's code."""
    out = labels.copy()
    if value >= 0.5:
        out[_target(labels, params, prior)] = _code_for(labels, params["to"], prior)
    return out


def _move(labels: np.ndarray, target: np.ndarray, moved: np.ndarray, codes: np.ndarray) -> np.ndarray:
    out = geo.nearest_fill(labels, target & ~moved, ~target, int(labels[0, 0]))
    out[moved] = codes[moved]
    return out


def translate(labels: np.ndarray, value: tuple[float, float], params: Mapping[str, Any], prior: Prior,
              ctx: FrameContext) -> np.ndarray:
    """Move a segment/code by [dx, dy] label pixels; the uncovered area takes the nearest other code."""
    target = _target(labels, params, prior)
    dx, dy = int(round(value[0])), int(round(value[1]))
    if (dx == 0 and dy == 0) or not target.any():
        return labels.copy()
    moved = geo.shift(target, dx, dy, False)
    codes = geo.shift(np.where(target, labels, 0).astype(labels.dtype), dx, dy, 0)
    return _move(labels, target, moved, codes)


def scale(labels: np.ndarray, value: tuple[float, float], params: Mapping[str, Any], prior: Prior,
          ctx: FrameContext) -> np.ndarray:
    """Scale a segment/code by [sx, sy] about its bounding-box centre (nearest neighbour)."""
    target = _target(labels, params, prior)
    if tuple(value) == (1.0, 1.0) or not target.any():
        return labels.copy()
    x0, y0, x1, y1 = geo.bbox(target)  # type: ignore[misc]
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    moved = geo.scale_about(target, value[0], value[1], cx, cy, 0)
    codes = geo.scale_about(np.where(target, labels, 0).astype(np.uint8), value[0], value[1], cx, cy, 0)
    return _move(labels, target, moved, codes)


def dilate(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior, ctx: FrameContext) -> np.ndarray:
    """Grow a segment/code by ``value`` pixels; the new band takes the segment's paint code."""
    out = labels.copy()
    target = _target(labels, params, prior)
    r = int(round(value))
    if r <= 0 or not target.any():
        return out
    band = geo.dilate(target, r) & ~target
    out[band] = _code_for(labels, params.get("segment", params.get("code")), prior)
    return out


def erode(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior, ctx: FrameContext) -> np.ndarray:
    """Shrink a segment/code by ``value`` pixels; the removed rim takes the nearest other code."""
    target = _target(labels, params, prior)
    r = int(round(value))
    if r <= 0 or not target.any():
        return labels.copy()
    rim = target & ~geo.erode(target, r)
    return geo.nearest_fill(labels, rim, ~target, int(labels[0, 0]))


def paint(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior, ctx: FrameContext) -> np.ndarray:
    """Switch (value ≥ 0.5): fill a polygon with a segment/code. ``space: crop`` means label-map pixel
    coordinates; ``space: plate`` means plate pixels, mapped through the frame's crop transform."""
    out = labels.copy()
    if value < 0.5:
        return out
    pts = np.asarray(params["polygon"], dtype=np.float64)
    if params.get("space", "crop") == "plate":
        if ctx.transform is None or not ctx.crop_size:
            raise InputError("paint: space 'plate' needs the frame's crop transform (render through a shot)")
        s = labels.shape[0] / float(ctx.crop_size)
        pts = (ctx.transform.to_crop(pts) + 0.5) * s - 0.5
    region = geo.rasterize_polygon(pts, labels.shape)
    out[region] = _code_for(labels, params.get("segment", params.get("code")), prior)
    return out


OPERATIONS: dict[str, Callable[..., np.ndarray]] = {
    "eye_open": eye_open,
    "gaze": gaze,
    "teeth": teeth,
    "mouth_open": mouth_open,
    "brows": brows,
    "nose_width": nose_width,
    "replace": replace,
    "translate": translate,
    "scale": scale,
    "dilate": dilate,
    "erode": erode,
    "paint": paint,
}


def _check_labels(labels: np.ndarray, prior: Prior) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"label map must be uint8 (L, L), got {labels.dtype} {labels.shape}")
    if labels.size and int(labels.max()) >= prior.num_codes:
        raise InputError(f"prior: num_codes is {prior.num_codes} but the label map uses code {int(labels.max())} "
                         "(prior made for another Stage I model?)")
    return labels


def apply_edit(edit: Edit, value: Value, labels: np.ndarray, prior: Prior, context: FrameContext | None = None,
               where: str = "program") -> tuple[np.ndarray, np.ndarray]:
    """Apply one edit at ``value``; returns (edited labels, changed mask == (before != after))."""
    labels = _check_labels(labels, prior)
    try:
        out = OPERATIONS[edit.op](labels, value, edit.params, prior, context or FrameContext())
    except InputError as exc:
        raise InputError(f"{where}: edits[{edit.index}] ({edit.op}): {exc}") from None
    return out, out != labels


def apply_program(program: EditProgram, labels: np.ndarray, frame: float, prior: Prior,
                  context: FrameContext | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Apply every edit of ``program`` at ``frame`` in order; returns (edited labels, changed mask)."""
    original = _check_labels(labels, prior)
    out = original
    for edit, value in program.values_at(frame):
        out, _ = apply_edit(edit, value, out, prior, context, program.source)
    return out.copy(), out != original
