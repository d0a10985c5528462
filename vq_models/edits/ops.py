"""Face edit operations (eyes, gaze, teeth, mouth, brows, nose): pure functions on uint8 label maps (crop
space, one code per pixel), each listed in :data:`FACE_OPERATIONS` beside the spec of what it accepts.

Each operation takes the label map, its keyframed value, its validated fields, the artist prior and an
optional :class:`~vq_models.edits.spec.FrameContext`, and returns a new label map.
:func:`vq_models.edits.program.apply_program` also returns the exact mask of changed pixels
(``before != after``), which drives the compositing alpha: pixels no edit touched are never re-rendered.

Operations only ever copy codes that exist (in the frame or the prior), so Stage II always sees labels it
was trained on. An operation at its neutral value (eye_open 1, gaze [0, 0], mouth_open 1 ...) changes
nothing, bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from vq_models.edits import geometry as geo
from vq_models.edits.exemplars import MOUTH
from vq_models.edits.prior import Prior
from vq_models.edits.pulls import ColumnPull, JawPull
from vq_models.edits.seen import TeethReach, grey_tongue, teeth_in_pixels
from vq_models.edits.spec import (
    DetailMove,
    FrameContext,
    Operation,
    OpResult,
    OpSpec,
    PlateRemnants,
    label_shift,
)
from vq_models.errors import InputError

EYE_OPENING = ("eye_whites", "irises", "pupils")
MOUTH_INNER = ("mouth_interior", "upper_teeth", "lower_teeth", "tongue")
#: how far past the widest mouth the shot shows (its tracked inner-lip height over outer-lip width) ``mouth_open``
#: opens a mouth, as a share of that opening: beyond anything Stage II saw, a mouth already wide open at 1.6
#: rendered as a dark smear (lp_d13 frames 106-108; benchmarks/RESULTS.md)
OPENING_PAST_WIDEST = 0.15


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


def code_for(labels: np.ndarray, spec: str | int, prior: Prior) -> int:
    """A segment's code in this frame (:func:`pick_code`), or a code given as a number."""
    return pick_code(labels, prior, spec) if isinstance(spec, str) else int(spec)


def _require_any(prior: Prior, names: Sequence[str]) -> list[int]:
    codes = prior.codes_of(names)
    if not codes:
        raise InputError(f"prior: needs at least one of the segments {', '.join(names)} (none is defined)")
    return codes


def _sides(mask: np.ndarray, side: str, ctx: FrameContext, suffix: str) -> list[tuple[str, np.ndarray]]:
    """``mask`` split into the image-left and image-right part (the tracked ``left_<suffix>`` /
    ``right_<suffix>`` regions tell which is which), as (side, part) for ``side`` = left, right or both."""
    hints = (ctx.regions.get(f"left_{suffix}"), ctx.regions.get(f"right_{suffix}"))
    left, right = geo.split_left_right(mask, hints)
    return {"left": [("left", left)], "right": [("right", right)], "both": [("left", left), ("right", right)]}[side]


def _eye_opening(labels: np.ndarray, prior: Prior, ctx: FrameContext) -> np.ndarray:
    """The eyes' opening in the label map: the eye-segment pixels together with the tracked eye contours
    where the frame has them.

    On real footage at 128² labels an iris is a few pixels whose codes often double as brow, lash or shadow
    codes, so a prior files some of them under skin or brows (lp_d0: 9 of an iris's ~20 pixels were
    "irises"). The tracked contour is the lid margin itself, so an op working on the opening reaches them."""
    return np.isin(labels, _require_any(prior, EYE_OPENING)) | _tracked(ctx, ("left_eye", "right_eye"), labels.shape)


def _tracked(ctx: FrameContext, names: Sequence[str], shape: tuple[int, ...]) -> np.ndarray:
    """The union of the frame's tracked regions ``names`` at label size (all False where it has none)."""
    out = np.zeros(shape, bool)
    for name in names:
        region = ctx.regions.get(name)
        if region is not None and np.shape(region) == tuple(shape):
            out |= np.asarray(region, bool)
    return out


def _near_tracked(mask: np.ndarray, ctx: FrameContext, region: str, grow: int = 2) -> np.ndarray:
    """``mask`` kept within ``grow`` label pixels of a tracked region, when the frame has that region.

    An unsupervised code means a colour, not a place: a teeth code also marks a specular highlight on the chin
    (lp_d0), and ``teeth 0`` then changed it, leaving an alpha blob far from the mouth."""
    tracked = ctx.regions.get(region)
    if tracked is None or np.shape(tracked) != mask.shape or not np.any(tracked):
        return mask
    near = cv2.dilate(np.asarray(tracked, np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
    return mask & near.astype(bool)


def _fill_code(labels: np.ndarray, prior: Prior, names: Sequence[str]) -> int:
    for name in names:
        if prior.has(name):
            return pick_code(labels, prior, name)
    prior.codes(names[0])  # raises, naming the first choice
    raise AssertionError


#: rows of the upper lid's margin (the lash line) that ``eye_open``'s column rule moves down with the lid, as a
#: share of the eye's width in label pixels
LID_MARGIN_SHARE = 0.15
#: rows above the upper lid's margin where the column rule finds the lid's own skin code
LID_SKIN_ROWS = 3
#: thickness of a closed eye's lash band (the upper lid margin's darkest code along the lid's edge), as a share
#: of the eye's width at ``eye_open 0``; it thins in proportion as the value rises
LASH_BAND_SHARE = 0.17
#: rows of the lower lid just below a wholly closed column that the lash band covers too, as a share of the
#: eye's width at ``eye_open 0`` (one row at 128² labels): a closed eye's upper lashes lie over the lower lid
LASH_OVER_LID_SHARE = 0.07


def eye_open(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior, ctx: FrameContext) -> np.ndarray:
    """Close eyes. Strongly closed values take the eye region from one of the shot's own blinks when it has
    any (:mod:`vq_models.edits.exemplars`: the labels of a real closed eye in this shot's codes, from the
    blink whose head pose is nearest), drawn down from the top over the column rule below as the value goes
    from where borrowing starts to 0 (:func:`_drawn_down`).
    Otherwise, toward the lower lid, per column: the top ``1 - value`` of the opening becomes the lid's skin
    code, found above the upper lid's margin in that column (not the margin itself: a real closed lid is the
    fold's skin); the margin (:data:`LID_MARGIN_SHARE` of the eye's width) moves down to the new lid edge;
    and the rows just above that edge become a lash band (:func:`_lash_code`, :data:`LASH_BAND_SHARE`);
    where a column closes wholly, the band reaches over the lower lid's top row too
    (:data:`LASH_OVER_LID_SHARE`). Why: the labels of lp_d0's real closed eye are lid skin over a dark band
    two to three rows thick, not lid-margin codes with a one-row line, and the lower lid under it is darker
    than the open eye's (the upper lashes lie on it); the band raised both real clips' blink what-ifs and the
    synthetic main shot's, and cost variant 101's, whose drawn closed eye has no band; the row over the lower
    lid raised lp_d0's, left lp_d13's column rule as it was and cost the synthetic shots' a little, whose drawn
    closed eyes have no such row (benchmarks/RESULTS.md). At 0 no opening pixel remains. The column rule also
    reports each column's rest under a row and, asked for, the lid pulled down (:func:`_eye_open`'s
    :class:`~vq_models.edits.spec.OpResult`), so the render draws the lid where the value says with the frame's
    own lashes."""
    return _eye_open(labels, value, params, prior, ctx).labels


def _eye_open(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior,
              ctx: FrameContext) -> OpResult:
    """:func:`eye_open` with, for the render: where the column rule put each lid at whole rows, the rest of its
    exact place (the edge field; none where an eye was wholly borrowed from a real blink), and each lid it
    pulled down (:class:`~vq_models.edits.pulls.ColumnPull`): the detail pass then shows the frame's own lid,
    its skin stretched and its lashes moved, where the lid now covers the eye, rather than another frame's
    band or the render's."""
    out = labels.copy()
    edges = np.zeros(labels.shape, np.float32)
    moves: list[DetailMove] = []
    if value >= 1.0:
        return OpResult(out, moves, edges)
    side = params.get("eye", "both")
    geometric = []
    wiped: list[tuple[np.ndarray, float]] = []  # borrowed eyes drawn down over the column rule: (labels, share)
    for one in (("left", "right") if side == "both" else (side,)):
        borrowed = None
        if ctx.exemplars is not None and ctx.frame is not None:
            borrowed = ctx.exemplars.close(out, ctx.frame, one, float(value), set(ctx.exclude))
        share = ctx.exemplars.borrowed_share(ctx.frame, one, float(value)) if borrowed is not None else 1.0
        if borrowed is None or share < 1.0:
            geometric.append(one)
        if borrowed is not None and share < 1.0:
            wiped.append((borrowed, share))
        elif borrowed is not None:
            out = borrowed
    if not geometric:
        return OpResult(out, moves, edges)
    opening = _eye_opening(labels, prior, ctx)
    not_lid = opening | np.isin(labels, prior.codes_of(("brows", "hair")))
    for _, eye in _sides(opening, "both" if len(geometric) == 2 else geometric[0], ctx, "eye"):
        top, bottom, _ = geo.column_extents(eye)
        cols = np.nonzero(top >= 0)[0]
        if not cols.size:
            continue
        width = int(np.ptp(cols)) + 1
        margin_rows = max(1, int(round(LID_MARGIN_SHARE * width)))
        band = int(round(LASH_BAND_SHARE * width * (1.0 - value)))
        over_lid = int(round(LASH_OVER_LID_SHARE * width * (1.0 - value)))
        lash = _lash_code(labels, top, cols, margin_rows, opening, ctx.code_luma) if band > 0 else None
        pull = [np.full(labels.shape[1], np.nan) for _ in range(3)]  # opening, bottom, rest
        touched = np.zeros(labels.shape, bool)
        for x in cols:
            t, b = int(top[x]), int(bottom[x])
            keep = int(round(value * (b - t + 1)))
            new_top = b - keep + 1
            # the lid and its edge move on by the rest of the column's exact closing (the render draws it)
            rest = keep - value * (b - t + 1)
            edges[max(0, t - margin_rows):min(new_top, b) + 1, x] = rest
            for rows_of, row in zip(pull, (t, b, rest), strict=True):
                rows_of[x] = row
            touched[max(0, t - margin_rows):new_top, x] = True
            rows = np.nonzero(eye[t:new_top, x])[0] + t
            if rows.size == 0:
                continue
            code = geo.band_mode(labels, int(x), range(t - margin_rows - LID_SKIN_ROWS, t - margin_rows), not_lid)
            if code is None:
                code = geo.band_mode(labels, int(x), range(t - 3, t), opening)
            if code is None:
                code = _fill_code(labels, prior, ("eyelids", "skin"))
            out[rows, x] = code
            margin = np.arange(t - margin_rows, t)
            if margin[0] >= 0 and not opening[margin, x].any():  # the lash line moves down with the lid
                lashes = labels[margin, x]
                out[margin, x] = code
                out[margin + (new_top - t), x] = lashes
            if lash is not None:
                out[rows[rows >= new_top - band], x] = lash
                if new_top > b:  # the column is closed: its lashes lie over the lower lid
                    out[b + 1:min(labels.shape[0], b + 1 + over_lid), x] = lash
        landed = touched & (out != labels)
        lid = ColumnPull(*pull, float(value), margin_rows, LID_SKIN_ROWS)
        if params.get("pull", False) and landed.any() and lid.defined:  # its lashes move at every value
            moves.append(DetailMove(landed, (0.0, 0.0), pull=lid))
    for borrowed, share in wiped:
        out = _drawn_down(out, borrowed, labels, share)
    return OpResult(out, moves, edges)


def _drawn_down(out: np.ndarray, borrowed: np.ndarray, labels: np.ndarray, share: float) -> np.ndarray:
    """``out`` with the top ``share`` of each column of the borrowed eye's region (where ``borrowed`` differs
    from ``labels``) taken from ``borrowed``: a real closed eye coming down over the column rule's squint as a
    keyed value closes on, instead of replacing it whole where borrowing starts (lp_d0: a keyed close held
    still over its last 6 of 15 values)."""
    region = borrowed != labels
    top, bottom, _ = geo.column_extents(region)
    rows = np.arange(labels.shape[0])[:, None]
    line = top + share * (bottom - top + 1)
    down = region & (rows < line[None, :]) & (top >= 0)[None, :]
    result = out.copy()
    result[down] = borrowed[down]
    return result


def _lash_code(labels: np.ndarray, top: np.ndarray, cols: np.ndarray, margin_rows: int, opening: np.ndarray,
               code_luma: np.ndarray | None) -> int | None:
    """The code of a closed eye's lash band: the darkest code (by the shot's ``code_luma``) seen at least twice
    in the upper lid's margin over the eye (a lone dark pixel may be noise). None, and no band, when the shot
    has no code brightness (a model older than it) or the margin is outside the map: the moved margin then
    stays the lid's edge."""
    if code_luma is None:
        return None
    luma = np.asarray(code_luma, np.float64)
    seen = [int(labels[y, x]) for x in cols for y in range(int(top[x]) - margin_rows, int(top[x]))
            if y >= 0 and not opening[y, x] and np.isfinite(luma[labels[y, x]])]
    if not seen:
        return None
    codes, counts = np.unique(seen, return_counts=True)
    pool = codes[counts >= 2] if (counts >= 2).any() else codes
    return int(pool[np.argmin(luma[pool])])


def eye_open_donors(value: float, params: Mapping[str, Any], ctx: FrameContext) -> frozenset[int]:
    """Frames that must not lend plate detail where ``eye_open`` changed labels: those whose eye is open wider
    than asked (:meth:`~vq_models.edits.exemplars.PartExemplars.too_open_to_lend`).

    The detail pass picks donors by the prior's segments, and on real footage an iris's codes are partly filed
    under skin (lp_d0), so an open-eyed frame matched a closed lid and pasted its iris through it (the blink
    what-if scored lower with such donors than with none; benchmarks/RESULTS.md)."""
    if ctx.exemplars is None or ctx.frame is None:
        return frozenset()
    side = params.get("eye", "both")
    out: set[int] = set()
    for one in ("left", "right") if side == "both" else (side,):
        out |= ctx.exemplars.too_open_to_lend(ctx.frame, one, float(value))
    return frozenset(out)


def gaze(labels: np.ndarray, value: tuple[float, float], params: Mapping[str, Any], prior: Prior,
         ctx: FrameContext) -> np.ndarray:
    """Move irises + pupils by ``[dx, dy]`` × eye width, clipped to the eye opening: iris pixels that would
    land outside it are hidden by the lids, and the shift is shortened so the iris centre stays on an
    eye-opening pixel. Vacated pixels become the eye's own eye-white code. The eye's width is its tracked
    contour's, corner to corner, where the frame has one (the opening's label pixels counted run a pixel or
    two wider, and the iris moved further than the shot's own glances: ``vqedit eval --gaze``); else the
    opening's.

    With ``borrow``, where the shot itself looks there (a frame whose tracked iris sits within
    :data:`~vq_models.edits.exemplars.GAZE_MATCH` of the asked place, its eye as open), the eye is taken from
    that frame instead, moved onto this one by the eye's corners
    (:meth:`~vq_models.edits.exemplars.PartExemplars.look`): the white the iris leaves, the lid and the iris's
    shading then come as the shot shows them, and the detail pass finds that frame's plate for them, where
    moved labels leave a flat patch of one eye-white code (grey on lp_d0; the glance what-if gains more,
    benchmarks/RESULTS.md). Not by default: a keyed gaze glides with moved labels, and a borrowed eye is
    another frame's, swapped in where one matches, so a move between values can jump.

    The opening is the eye-segment pixels together with the tracked eye contour where the frame has one. On
    real footage at 128² labels the eye whites are a few pixels that often share a code with skin highlights,
    so a prior files them under skin: the label opening is then little more than the iris, no shift keeps the
    iris inside it, and the edit changed nothing (lp_d0). The tracked contour is the lid margin itself. In the
    same way the iris is the iris/pupil pixels together with the tracked iris where the frame has one: part
    of a real iris carries codes the prior files elsewhere (lp_d13: background), and left behind they drew
    a second iris."""
    return _gaze(labels, value, params, prior, ctx).labels


def _gaze(labels: np.ndarray, value: tuple[float, float], params: Mapping[str, Any], prior: Prior,
          ctx: FrameContext) -> OpResult:
    """:func:`gaze` with where it moved each iris and by how much (the detail pass moves the plate's iris
    with it)."""
    out = labels.copy()
    moves: list[DetailMove] = []
    dx, dy = value
    prior.codes("eye_whites")
    iris_codes = _require_any(prior, ("irises", "pupils"))
    opening = _eye_opening(labels, prior, ctx)
    tracked_iris = _tracked(ctx, ("left_iris", "right_iris"), labels.shape)
    for name, eye in _sides(opening, params.get("eye", "both"), ctx, "eye"):
        if params.get("borrow", False) and (dx, dy) != (0.0, 0.0) and ctx.exemplars is not None \
                and ctx.frame is not None:
            looked = ctx.exemplars.look(out, ctx.frame, name, (dx, dy), set(ctx.exclude))
            if looked is not None:  # a frame of the shot looks there: its eye, as the shot shows it
                out = looked[0]
                continue
        iris = _one_iris(eye & (np.isin(labels, iris_codes) | tracked_iris), tracked_iris & eye)
        box = geo.bbox(eye)
        if box is None or not iris.any():
            continue
        x0, y0, x1, y1 = box
        width = float(x1 - x0 + 1)
        outline = ctx.outlines.get(f"{name}_eye")
        if outline is not None and len(outline) >= 3:  # corner to corner, not the opening's pixels counted
            width = float(np.ptp(np.asarray(outline, np.float64)[:, 0]))
        cx, cy = geo.centroid(iris)  # type: ignore[misc]
        shift = _visible_shift(eye, cx, cy, dx * width, dy * width)
        if shift == (0.0, 0.0):
            continue
        sx, sy = label_shift(shift)
        moved = geo.shift(iris, sx, sy, False)
        moved_codes = geo.shift(np.where(iris, labels, 0).astype(labels.dtype), sx, sy, 0)
        land = moved & eye
        out[iris & ~land] = pick_code(labels, prior, "eye_whites", within=eye)
        out[land] = moved_codes[land]
        moves.append(DetailMove(land, shift, within=eye))
    return OpResult(out, moves)


def _one_iris(iris: np.ndarray, tracked: np.ndarray) -> np.ndarray:
    """The eye's iris among its iris- and pupil-coded pixels: the connected parts the tracked iris overlaps,
    else the largest. An eye has one iris; a code the prior files under the irises also marks a patch apart
    from it (lp_d12: a shadow in the eye's corner behind his glasses), and ``gaze`` moved that patch too, a
    second iris drawn beside the first. What is left stays as the frame shows it."""
    parts = geo.components(iris)
    if len(parts) <= 1:
        return iris
    if tracked.any():
        touching = [part for part in parts if (part & tracked).any()]
        if touching:
            return np.any(touching, axis=0)
    return parts[0]


def _visible_shift(eye: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> tuple[float, float]:
    """The longest shift along (sx, sy) that keeps the iris centre on an eye-opening pixel, so an extreme
    gaze parks the iris at the corner of the eye instead of hiding it under the lids. Not rounded: the labels
    move the whole label pixels of it, the render the rest (:class:`DetailMove`)."""
    h, w = eye.shape
    for t in np.linspace(1.0, 0.0, 65):
        ix, iy = label_shift((t * sx, t * sy))  # where the labels put it
        px, py = int(round(cx + ix)), int(round(cy + iy))
        if 0 <= px < w and 0 <= py < h and eye[py, px]:
            return float(t * sx), float(t * sy)
    return 0.0, 0.0


def teeth(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior, ctx: FrameContext) -> np.ndarray:
    """Remove teeth toward the gums: upper teeth keep their top ``value`` per column, lower teeth their
    bottom; removed pixels become mouth interior (else tongue; see :func:`_teeth_fill` for which code), the
    lower row's the tongue where it shows right above them (:func:`_tongue_above`), or ``fill`` (a segment or a
    code) when the artist names one. At 0 no tooth remains, nor the tongue-coded pixels greyer than a tongue
    (:func:`_empty_grey_tongue`). The teeth are the teeth
    codes near the tracked lips and, where the frame has its crop, the pixels between the tracked inner lips
    that look like this frame's teeth though another code covers them
    (:func:`~vq_models.edits.seen.teeth_in_pixels`: on lp_d13 the upper teeth of his widest smile carried an
    interior code and stayed standing; where the frame has hardly a teeth-coded pixel, like the shot's teeth,
    ``ctx.teeth_look``)."""
    out = labels.copy()
    if value >= 1.0:
        return out
    which = params.get("which", "both")
    names = {"upper": ["upper_teeth"], "lower": ["lower_teeth"], "both": ["upper_teeth", "lower_teeth"]}[which]
    if which == "both":
        _require_any(prior, names)
    else:
        prior.codes(names[0])
    reach = ctx.teeth_reach() if ctx.teeth_reach is not None else None
    seen = teeth_in_pixels(labels, prior, ctx.regions.get("lips_inner"), ctx.crop, ctx.teeth_look, reach)
    for name in names:
        if not prior.has(name):
            continue
        mask = _near_tracked(prior.mask(labels, name), ctx, "lips_outer") | seen.get(name, False)
        top, bottom, _ = geo.column_extents(mask)
        fill, asked = None, _row_fill(params.get("fill"), name)
        tongue_behind = name == "lower_teeth" and asked is None  # the artist's fill is taken as given
        for x in np.nonzero(top >= 0)[0]:
            t, b = int(top[x]), int(bottom[x])
            keep = int(round(value * (b - t + 1)))
            rows = np.arange(t + keep, b + 1) if name == "upper_teeth" else np.arange(t, b - keep + 1)
            rows = rows[mask[rows, x]]
            if rows.size:
                fill = _teeth_fill(labels, prior, asked, name, ctx) if fill is None else fill
                out[rows, x] = _tongue_above(labels, prior, t, x, fill) if tongue_behind else fill
    if value <= 0.0 and np.any(out != labels):
        _empty_grey_tongue(out, labels, prior, ctx, names, params.get("fill"), reach)
    return out


def _empty_grey_tongue(out: np.ndarray, labels: np.ndarray, prior: Prior, ctx: FrameContext,
                       names: Sequence[str], fill: Any, reach: TeethReach | None) -> None:
    """At ``teeth 0``, in place: the tongue-coded pixels of the opening that are no tongue
    (:func:`~vq_models.edits.seen.grey_tongue`: lp_d13's lower teeth and the shadow between them) take the
    fill of their half of the opening, for the rows ``names`` asks to remove, within the shot's ``reach``. Only
    where the op found teeth: between closed lips a grey seam is no mouthful of teeth."""
    inner = ctx.regions.get("lips_inner")
    grey = grey_tongue(labels, prior, inner, ctx.crop, reach)
    if grey is None:
        return
    grey &= out == labels
    upper = geo.upper_half(np.asarray(inner, bool))
    for name, half in (("upper_teeth", upper), ("lower_teeth", ~upper)):
        if name in names and (pixels := grey & half).any():
            out[pixels] = _teeth_fill(labels, prior, _row_fill(fill, name), name, ctx)


def teeth_remnants(value: float, params: Mapping[str, Any], ctx: FrameContext) -> PlateRemnants | None:
    """Where ``teeth`` at ``value`` leaves nothing of the teeth that the plate may still show finer than the
    label grid (:class:`~vq_models.edits.spec.PlateRemnants`): the tracked inner lips, at ``value`` 0 only
    (a partial removal keeps the rest of each tooth there), for ``which`` ``upper`` / ``lower`` only its half
    of the opening; with the tracked contour itself as the emptied opening, whose edge the plate draws. None
    without the tracked inner lips. Not grown: the lips around are the plate's, and the render's lips stood in
    for them worse on two synthetic shots (benchmarks/RESULTS.md)."""
    inner = ctx.regions.get("lips_inner")
    if value > 0.0 or inner is None or not np.any(inner):
        return None
    inner = np.asarray(inner, bool)
    opening = ctx.outlines.get("lips_inner")
    which = params.get("which", "both")
    if which != "both":
        upper = geo.upper_half(inner)
        inner = inner & (upper if which == "upper" else ~upper)
    return PlateRemnants(inner, None if opening is None else np.asarray(opening, np.float64))


#: how many label rows above a column's lower teeth :func:`_tongue_above` looks for the tongue
TONGUE_ABOVE_ROWS = 1


def _tongue_above(labels: np.ndarray, prior: Prior, top: int, x: int, fill: int) -> int:
    """The code a column's freed lower teeth take: the tongue's, where the column shows it right above them
    (:data:`TONGUE_ABOVE_ROWS`), else ``fill``. Behind the lower teeth lies the tongue, and where it shows over
    them it carries on down behind them: removed, the teeth reveal it down to the lip (the synthetic no-teeth
    what-ifs, +0.9 to +1.7 dB on three of five shots, benchmarks/RESULTS.md). Where the upper teeth or the dark
    interior sit above them, nothing says the tongue is there, and the default fill stays."""
    if not prior.has("tongue"):
        return fill
    tongue = set(prior.codes("tongue"))
    for y in range(top - 1, max(top - TONGUE_ABOVE_ROWS, 0) - 1, -1):
        if int(labels[y, x]) in tongue:
            return int(labels[y, x])
    return fill


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
    lit through the opening like the cavity the shot does show. On the synthetic shot the no-teeth what-if
    scored highest with the darkest code above and the cavity code below (benchmarks/RESULTS.md). Why the first
    code and not the frame's most frequent: the visible cavity is often a strip a few pixels tall, and its
    most frequent code is then an edge code half lip or half tooth, which scored well below on the K=255
    shot. prior --auto lists the cavity first; an artist reorders the JSON, or names a ``fill``, to choose."""
    if fill is not None:
        return code_for(labels, fill, prior)
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
    the interior stretches (nearest neighbour) and the lower lip moves with its bottom edge. Pixels uncovered
    when closing take the nearest non-mouth code (chin skin). Closing, the upper lip's inner edge comes down
    too, by the shot's own share of what closes (``ctx.upper_lip_share()``, :mod:`vq_models.edits.lip_share`),
    its lowest row drawn on, and the lower lip comes up by the rest: a lip rises as a mouth opens, so a mouth
    closed by the lower lip alone kept a thin open-mouth upper lip and put lower lip where it should be.

    Opening (``value`` > 1) where the frame tracks its inner lips, the lip moves by ``value - 1`` times the
    tracked opening between them at that column, not the interior's label rows: those take in the lips' inner
    shadow, a row or two more than the gap a small opening shows, so scaling them overshot the shot's own
    openings (``vqedit eval --jaw``; benchmarks/RESULTS.md). Closing keeps the scale, so 0 still closes the
    mouth. An opening stops :data:`OPENING_PAST_WIDEST` past the widest mouth the shot shows
    (:func:`_opening_within_shot`): Stage II cannot draw a mouth wider than any it was trained on. (A borrowed
    mouth, below, is one the shot shows; asked wider than any, the rule opens it this far.)

    With ``borrow``, opening where the shot itself opens the mouth that wide (a frame whose tracked opening is
    within :data:`~vq_models.edits.exemplars.MOUTH_MATCH` of ``value`` times this frame's), the mouth is taken
    from that frame instead, moved onto this one by the mouth's corners
    (:meth:`~vq_models.edits.exemplars.PartExemplars.open_wider`): its lips, teeth and tongue as the shot shows
    them at that opening, where stretched rows draw teeth tall and the cavity flat, and the detail pass finds
    that frame's plate for them. Not by default: a keyed opening then jumps between frames' mouths instead of
    growing, and from frame to frame a held value may take another frame's mouth."""
    return _mouth_open(labels, value, params, prior, ctx).labels


def _mouth_open(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior,
                ctx: FrameContext) -> OpResult:
    """:func:`mouth_open` with, for the render: where it put each column's lower lip at whole rows, the rest of
    its exact place (the edge field), and the lip it moved (:class:`~vq_models.edits.pulls.JawPull`): the
    detail pass shows the frame's own lip and chin there, moved, rather than another frame's band or the
    render's."""
    out = labels.copy()
    edges = np.zeros(labels.shape, np.float32)
    if value == 1.0:
        return OpResult(out, [], edges)
    if value > 1.0 and params.get("borrow", False) and ctx.exemplars is not None and ctx.frame is not None:
        borrowed = ctx.exemplars.open_wider(labels, ctx.frame, MOUTH, float(value), set(ctx.exclude))
        if borrowed is not None:  # a frame of the shot opens this wide: its mouth, as the shot shows it
            return OpResult(borrowed[0], [], None)
    value = _opening_within_shot(value, ctx)
    inner = np.isin(labels, _require_any(prior, MOUTH_INNER))
    lower_lip = prior.mask(labels, "lower_lip", required=False)
    upper_lip = prior.mask(labels, "upper_lip", required=False)
    cavity = prior.mask(labels, "mouth_interior", required=False)
    teeth = prior.mask(labels, ("upper_teeth", "lower_teeth"), required=False)
    h = labels.shape[0]
    holes = np.zeros_like(inner)
    painted = np.zeros_like(inner)
    top, bottom, _ = geo.column_extents(inner)
    jaw = [np.full(labels.shape[1], np.nan) for _ in range(5)]  # top, height, lip, rest, grow
    below_lip_top = np.zeros(labels.shape, bool)
    opening = _tracked_opening(ctx, labels.shape[1]) if value > 1.0 else None
    share = float(ctx.upper_lip_share()) if value < 1.0 and ctx.upper_lip_share is not None else 0.0
    for x in np.nonzero(top >= 0)[0]:
        t, b = int(top[x]), int(bottom[x])
        height = b - t + 1
        exact, scale = value * height, value
        if opening is not None:  # beyond the tracked gap's ends (the corners' shadow) nothing opens; a gap
            # tracked taller than the interior's rows is a tracking slip, never more than the rows' own scale
            exact = height + (value - 1.0) * min(float(np.nan_to_num(opening[x], nan=0.0)), height)
            scale = exact / height
        new_h = int(round(exact))
        drop = share * (height - exact) if t > 0 else 0.0  # the upper lip's part of the closing (rows)
        down = int(round(drop))
        start = t + down  # where the interior (closed: the lips' seam) now starts
        d = new_h - height + down
        col = labels[:, x]
        lip_rows = np.nonzero(lower_lip[:, x])[0]
        lip_rows = lip_rows[lip_rows > b]
        rest = exact - new_h + drop - down
        for rows_of, row in zip(jaw, (t + drop, height - drop, int(lip_rows.max(initial=b)), rest,
                                      exact - height + drop), strict=True):
            rows_of[x] = row
        below_lip_top[start + new_h:, x] = True
        moving = np.concatenate([np.arange(t, b + 1), lip_rows])
        holes[moving, x] = True
        if down > 0:
            out[t:start, x] = col[t - 1]
            painted[t:start, x] = True
        if new_h > 0:
            ys = np.arange(start, min(start + new_h, h))
            src = t + _interior_rows(cavity[t:b + 1, x], teeth[t:b + 1, x], ys - start, scale, value > 1.0)
            out[ys, x] = col[src]
            painted[ys, x] = True
        dst = lip_rows + d
        # the lower lip (and the interior's edge above it) moves on by the rest of the exact scale, the lowered
        # upper lip's edge by the rest of its own part
        low = max(start, start + new_h - 1)
        if drop:
            edges[start - 1:low, x] = drop - down
        edges[low:min(h, int(dst.max(initial=low)) + 2), x] = rest
        ok = (dst >= 0) & (dst < h)
        out[dst[ok], x] = col[lip_rows[ok]]
        painted[dst[ok], x] = True
    holes &= ~painted
    if holes.any():
        source = ~(inner | lower_lip | upper_lip | painted)
        out = geo.nearest_fill(out, holes, source, _fill_code(labels, prior, ("skin",)) if not source.any() else 0)
    landed = below_lip_top & (out != labels)
    top_, height_, lip_, rest_, grow_ = jaw
    lip = JawPull(top_, height_, lip_, rest_, float(value), grow=grow_)
    pulled = params.get("pull", False) and landed.any() and lip.strength > 0.0 and lip.defined
    return OpResult(out, [DetailMove(landed, (0.0, 0.0), pull=lip)] if pulled else [], edges)


def _opening_within_shot(value: float, ctx: FrameContext) -> float:
    """``value`` (``mouth_open``'s), an opening held to :data:`OPENING_PAST_WIDEST` past the widest mouth the shot
    shows outside ``ctx.exclude``, but never below 1 (a mouth wider than that is left as it is); unchanged where
    the frame's mouth or the shot's openings are not known (no exemplars, no tracking)."""
    if value <= 1.0 or ctx.exemplars is None or ctx.frame is None:
        return value
    here = ctx.exemplars.opening_at(ctx.frame, MOUTH)
    widest = ctx.exemplars.widest(MOUTH, set(ctx.exclude))
    if here is None or widest is None or here <= 0:
        return value
    return float(max(1.0, min(value, (1.0 + OPENING_PAST_WIDEST) * widest / here)))


def _interior_rows(cavity: np.ndarray, teeth: np.ndarray, rows: np.ndarray, scale: float, opening: bool) -> np.ndarray:
    """For one column of the mouth's interior (``cavity`` and ``teeth`` masks over its rows), which of its rows
    each of the new interior's ``rows`` shows when it grows ``scale`` times (nearest neighbour).

    Opening, only the cavity below the first teeth row grows, every other row keeps its height: the teeth
    stay teeth-sized and the ones below it move down with the lip, and the lip's shadow above the upper teeth
    stays; it scores closer to the shot's own opening mouths than scaling every row (``vqedit eval --jaw``;
    benchmarks/RESULTS.md). Where no such cavity shows (teeth clenched in one run, closing) every row scales
    alike."""
    height = cavity.size
    grows = np.asarray(cavity, bool).copy()
    if np.any(teeth):
        grows &= np.arange(height) > int(np.argmax(teeth))
    if opening and grows.any():
        weights = np.where(grows, 1.0 + height * (scale - 1.0) / grows.sum(), 1.0)
        return np.minimum(np.searchsorted(np.cumsum(weights), rows + 0.5, side="right"), height - 1)
    return np.minimum(((rows + 0.5) / scale).astype(int), height - 1)


def _tracked_opening(ctx: FrameContext, width: int) -> np.ndarray | None:
    """Per label column, the frame's tracked inner lips' opening (label rows, fractional; NaN beyond the
    contour's ends), or None where the frame has no inner-lip contour."""
    outline = ctx.outlines.get("lips_inner")
    if outline is None or len(outline) < 3:
        return None
    return geo.polygon_column_span(outline, width)


def brows(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior, ctx: FrameContext) -> np.ndarray:
    """``remove``: thin brows from the top by ``value`` (1 = gone), filling with the nearest skin code.
    ``raise``: move brows up by ``value`` × brow height (negative lowers); they only land on skin or brow
    pixels, and the uncovered part takes the nearest skin code."""
    return _brows(labels, value, params, prior, ctx).labels


def _brows(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior,
           ctx: FrameContext) -> OpResult:
    """:func:`brows` with where a raised (or lowered) brow landed and its shift: the plate's own brow hairs
    move with it."""
    out = labels.copy()
    moves: list[DetailMove] = []
    mask_all = prior.mask(labels, "brows")
    skin = prior.mask(labels, "skin")
    skin_code = pick_code(labels, prior, "skin")
    for _, brow in _sides(mask_all, params.get("side", "both"), ctx, "brow"):
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
            shift = (0.0, -float(value) * (y1 - y0 + 1))
            if shift[1] == 0.0:
                continue
            dy = label_shift(shift)[1]
            moved = geo.shift(brow, 0, dy, False)
            codes = geo.shift(np.where(brow, labels, 0).astype(labels.dtype), 0, dy, 0)
            land = moved & (skin | mask_all)
            out = geo.nearest_fill(out, brow & ~land, skin & ~mask_all, skin_code)
            out[land] = codes[land]
            moves.append(DetailMove(land, shift, within=skin | mask_all))
    return OpResult(out, moves)


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


FACE_OPERATIONS: dict[str, Operation] = {
    "eye_open": Operation(OpSpec("scalar", 0.0, 1.0, optional={"eye": "both", "pull": False},
                                 doc="1 = as shot, 0 = closed; pull: the frame's own lid, moved, for its detail"),
                          eye_open,
                          eye_open_donors, run=_eye_open),
    "gaze": Operation(OpSpec("vec2", -5.0, 5.0, optional={"eye": "both", "borrow": False},
                             doc="[dx, dy] as a fraction of the eye width; borrow: the eye of a frame of the shot "
                                 "that looks there, where one does"), gaze,
                      run=_gaze),
    "teeth": Operation(OpSpec("scalar", 0.0, 1.0, optional={"which": "both", "fill": None},
                    doc="1 = as shot, 0 = removed; fill: segment or code for the freed pixels, or "
                        "{\"upper\": ..., \"lower\": ...} per row"), teeth, donor_ghosts=True, fills=True,
                       remnants=teeth_remnants),
    "mouth_open": Operation(OpSpec("scalar", 0.0, 5.0, optional={"pull": False, "borrow": False},
                                   doc="how open: 1 = as shot, 2 = twice the tracked gap between the lips, 0 = closed; "
                                       "pull: the frame's own lower lip, moved, for its detail; borrow: opening, "
                                       "the mouth of a frame of the shot that opens that wide, where one does"),
                            mouth_open,
                            run=_mouth_open),
    "brows": Operation(OpSpec("scalar", -5.0, 5.0, required=("mode",), optional={"side": "both"},
                    doc="remove: 0..1 amount removed; raise: fraction of brow height (negative lowers)"), brows,
                       run=_brows),
    "nose_width": Operation(OpSpec("scalar", 0.05, 5.0, doc="horizontal scale of the nose about its centre"), nose_width),
}
