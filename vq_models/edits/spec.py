"""What an edit operation is: its value kinds and fields (:class:`OpSpec`), the function that runs it
(:class:`Operation`), and the per-frame facts it may use (:class:`FrameContext`). Each op module lists its
operations, spec beside function (``ops.FACE_OPERATIONS``, ``segment_ops.SEGMENT_OPERATIONS``); the program
parser validates against those specs and applies those functions, so an op is defined in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Value = float | tuple[float, float]


@dataclass(frozen=True)
class OpSpec:
    """What an operation accepts: its value kind and range, required and optional fields."""

    value: str  # "scalar", "vec2" or "scale" (scalar or [sx, sy], normalised to a pair)
    low: float
    high: float
    required: tuple[str, ...] = ()
    optional: dict[str, Any] = field(default_factory=dict)  # field -> default
    target: str = "none"  # "none", "one" (exactly one of segment/code), "to" (also a destination)
    doc: str = ""


@dataclass(frozen=True)
class Operation:
    """One edit operation: what it accepts and the pure function ``fn(labels, value, params, prior, ctx)``
    that returns the edited label map."""

    spec: OpSpec
    fn: Callable[..., np.ndarray]
    #: ``donor_exclude(value, params, ctx)``: frames whose plate must not lend detail (:mod:`vq_models.detail`)
    #: where this op changed the labels, because their look there contradicts the edit whatever their labels
    #: say (an open eye where the op closed one). None: any frame may lend.
    donor_exclude: Callable[..., frozenset[int]] | None = None
    #: ``detail_moves(labels, value, params, prior, ctx)``: the :class:`DetailMove` of each part this op moves
    #: within the frame (labels are the map before the op). None: the op moves nothing.
    detail_moves: Callable[..., list[DetailMove]] | None = None
    #: ``edge_shift(labels, value, params, prior, ctx)``: the :class:`EdgeShift` field of the edges this op placed
    #: per column at whole label rows (a closing lid, a moving lower lip). None: the op places no such edge.
    edge_shift: Callable[..., np.ndarray] | None = None


@dataclass(frozen=True)
class DonorRule:
    """Frames (``exclude``) that must not lend plate detail to a changed region meeting ``changed`` (L, L)."""

    changed: np.ndarray
    exclude: frozenset[int]


def label_shift(shift: tuple[float, float]) -> tuple[int, int]:
    """The whole label pixels of a shift (nearest, halves away from zero): what a label map can move."""
    return tuple(int(np.sign(v) * np.floor(abs(v) + 0.5)) for v in shift)  # type: ignore[return-value]


#: ``eye_open`` and ``mouth_open`` values from which the frame's own lid or lip, moved, is its detail
#: (:class:`ColumnPull`, :class:`JawPull`), and below which it is not at all (in between it fades). A squint is
#: the same lid moved and a half-closed mouth the same lip; a closed eye or mouth is not (the lashes fall onto
#: the lower lid and the fold unfolds; closed lips press together): lp_d0's blink what-if lost 0.6 dB and the
#: variants' closed-mouth what-ifs 3.8-4.5 dB to a pull at 0.
PULL_FULL_FROM = 0.5
PULL_NONE_BELOW = 0.25


def pull_strength(value: float) -> float:
    """How much of a moved lid's or lip's detail its pull gives at ``value`` (:data:`PULL_FULL_FROM`)."""
    return float(np.clip((value - PULL_NONE_BELOW) / (PULL_FULL_FROM - PULL_NONE_BELOW), 0.0, 1.0))
#: how far an op's per-column edge values are smoothed across columns, in label pixels (a Gaussian sigma): a
#: column's whole rows differ from its neighbour's by a row or more, and the edge they draw is one curve
EDGE_SMOOTH = 0.5


def _smoothed(values: np.ndarray, sigma: float = EDGE_SMOOTH, ends: str = "constant") -> np.ndarray:
    """``values`` smoothed by a Gaussian of ``sigma`` samples; beyond both ends zeros (``"constant"``) or the
    end values (``"edge"``)."""
    reach = max(1, int(np.ceil(3.0 * sigma)))
    taps = np.arange(-reach, reach + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    padded = np.pad(np.asarray(values, np.float64), reach, mode=ends)  # type: ignore[call-overload]
    return np.convolve(padded, kernel / kernel.sum(), mode="same")[reach:-reach]


@dataclass(frozen=True)
class ColumnPull:
    """A lid pulled down by ``eye_open``'s column rule, so the detail pass can show the frame's own lid where it
    now covers the eye: its margin (the lashes, ``margin`` rows above the opening) moves down with the lid's
    edge, and the skin ``skin`` rows above the margin stretches over the rows the margin left.

    Per label column (L,), NaN where a column has no lid: ``opening`` and ``bottom``, the opening's first and
    last rows before the edit, and ``rest``, the column's rest under half a row (:class:`EdgeShift`). The lid
    closes ``1 - value`` of the opening. :meth:`rows_at` gives, at any label position, how far above it the
    frame's plate shows what belongs there."""

    opening: np.ndarray
    bottom: np.ndarray
    rest: np.ndarray
    value: float
    margin: int
    skin: int

    @property
    def strength(self) -> float:
        return pull_strength(self.value)

    def rows_at(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """The pull (label rows, + = from above) at label coordinates ``u``, ``v`` (pixel centres at integers),
        0 outside the lid's columns and below its moved margin (the opening that stays is not moved).

        The lid's edge is a smooth arc the label rows only step along, so the opening's top and bottom are
        taken as parabolas through the columns' rows: the lid is cut on an arc, not in steps of a label row
        (13 plate pixels at 4K), and closes most in the middle and not at all at the corners, where the
        columns' own rows tore the lash line. The finished edit is then moved by the smoothed rest
        (:func:`vq_models.moved_parts.shift_edges`), so the pull leaves that out."""
        u = np.asarray(u, np.float64)
        v = np.asarray(v, np.float64)
        cols = np.nonzero(np.isfinite(self.opening))[0]
        if cols.size < 3:
            return np.zeros(np.broadcast(u, v).shape, np.float32)
        top = np.polyval(np.polyfit(cols, np.asarray(self.opening, np.float64)[cols] - 0.5, 2), u)
        bottom = np.polyval(np.polyfit(cols, np.asarray(self.bottom, np.float64)[cols] + 0.5, 2), u)
        ends = np.concatenate([[cols[0] - 1], cols, [cols[-1] + 1]])
        rest = np.interp(u, ends, _smoothed(np.concatenate([[0.0], np.asarray(self.rest, np.float64)[cols], [0.0]])))
        # the whole closing, fading to nothing a column beyond each end
        taper = np.clip(np.minimum(u - ends[0], ends[-1] - u), 0.0, 1.0)
        shift = np.maximum((1.0 - self.value) * np.maximum(bottom - top, 0.0) * taper - rest, 0.0)
        fold = top - self.margin - self.skin
        stretch_end = top - self.margin + shift  # the margin's new top: above it the skin is stretched
        out = np.where(v < stretch_end, shift * (v - fold) / np.maximum(stretch_end - fold, 1e-6), shift)
        out = np.where((v < fold) | (v >= top + shift) | (taper <= 0.0), 0.0, out)
        return out.astype(np.float32)


#: how far the mouth's per-column rows are smoothed across columns, in label pixels (a Gaussian sigma): a lip
#: line is no parabola (a smile), but it is smoother than its label rows
LIP_SMOOTH = 1.0
#: rows of chin below the lower lip that stretch (or give way) as the lip moves (:class:`JawPull`)
CHIN_ROWS = 4


@dataclass(frozen=True)
class JawPull:
    """The lower lip ``mouth_open`` moved, so the detail pass can show the frame's own lip (and the chin below
    it) where it now is rather than another frame's band or the render's: the lip moves with the interior's
    bottom, the :data:`CHIN_ROWS` rows of chin below stretch to meet it.

    Per label column (L,), NaN where the mouth has none: ``top`` and ``height``, the interior's first row and
    height before the edit, ``lip``, the lower lip's last row (the interior's where it has none), and
    ``rest``, the column's rest under half a row (:class:`EdgeShift`); the interior scales by ``value``."""

    top: np.ndarray
    height: np.ndarray
    lip: np.ndarray
    rest: np.ndarray
    value: float

    @property
    def strength(self) -> float:
        return pull_strength(self.value)

    def rows_at(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """The pull (label rows, + = from above) at label coordinates ``u``, ``v`` (pixel centres at integers):
        the lip's move over the lip, fading to 0 over the chin below it and over the interior above it (which
        scales as its labels do), 0 above the interior and beyond the mouth's columns. The columns' rows are smoothed by :data:`LIP_SMOOTH`, the rest is left to the edge field
        (:func:`vq_models.moved_parts.shift_edges`), as :meth:`ColumnPull.rows_at` does."""
        u = np.asarray(u, np.float64)
        v = np.asarray(v, np.float64)
        cols = np.nonzero(np.isfinite(self.lip))[0]
        if cols.size < 2:
            return np.zeros(np.broadcast(u, v).shape, np.float32)
        ends = np.concatenate([[cols[0] - 1], cols, [cols[-1] + 1]])

        def line(rows: np.ndarray, sigma: float = LIP_SMOOTH, fill: str = "edge") -> np.ndarray:
            smooth = _smoothed(np.asarray(rows, np.float64)[cols], sigma, fill)
            return np.interp(u, ends, np.concatenate([smooth[:1] if fill == "edge" else [0.0], smooth,
                                                      smooth[-1:] if fill == "edge" else [0.0]]))

        taper = np.clip(np.minimum(u - ends[0], ends[-1] - u), 0.0, 1.0)
        height = line(self.height)
        shift = ((self.value - 1.0) * height - line(self.rest, EDGE_SMOOTH, "constant")) * taper
        top = line(self.top) - 0.5
        lip_top = top + height + shift  # the interior's old bottom, moved
        lip_end = line(self.lip) + 0.5 + shift
        chin_end = line(self.lip) + 0.5 + CHIN_ROWS + np.maximum(shift, 0.0)
        # the interior scales as its labels do, so just above the lip is the interior's bottom, not the old lip
        interior = (v - top) * shift / np.maximum(lip_top - top, 1e-6)
        chin = shift * (chin_end - v) / np.maximum(chin_end - lip_end, 1e-6)
        out = np.where(v < lip_top, interior, np.where(v < lip_end, shift, chin))
        out = np.where((v < top) | (v >= chin_end) | (taper <= 0.0), 0.0, out)
        return out.astype(np.float32)


@dataclass(frozen=True)
class DetailMove:
    """A part an op moved within its own frame (an iris the gaze shifted): the pixels it ``landed`` on (L, L)
    and the ``shift`` (dx, dy) in label pixels, exact. The labels moved it by :attr:`label_shift`; the rest
    (:attr:`remainder`, under half a label pixel) is drawn by moving the render there, so a keyframed gaze
    glides instead of stepping a label pixel (several plate pixels) at a time. The plate's own detail there
    is the part's, moved the same way, so the detail pass takes the frame's plate band from ``shift`` back
    instead of a soft render band or another frame's.

    ``within`` (L, L), when given, is where the part moves (an eye's opening): the render is moved by the
    remainder only there, so the lids around an iris stay where their labels are.

    ``pull``, when given, moves the part per column instead (:class:`ColumnPull`, :class:`JawPull`; ``shift``
    is then (0, 0)):
    the detail pass takes the frame's plate from the pull back over the landed pixels."""

    landed: np.ndarray
    shift: tuple[float, float]
    within: np.ndarray | None = None
    pull: ColumnPull | JawPull | None = None

    @property
    def label_shift(self) -> tuple[int, int]:
        return label_shift(self.shift)

    @property
    def remainder(self) -> tuple[float, float]:
        (dx, dy), (ix, iy) = self.shift, self.label_shift
        return float(dx - ix), float(dy - iy)


@dataclass(frozen=True)
class EdgeShift:
    """How far (label pixels, + = down) the render must move at each label pixel (``rows``, (L, L) float32) to
    put the edges an op placed per column where their exact values say. ``eye_open`` and ``mouth_open`` move a
    lid or a lower lip by a share of each column's height, and a label map rounds that to whole rows, so a
    slowly keyed squint or jaw would hold still for frames and then jump a label pixel (13 plate pixels for a
    1,500-pixel face at 4K). Each column's rest, under half a row, is drawn by moving the finished edit there
    (:func:`vq_models.moved_parts.shift_edges`), lid or lip together with its edge: the labels say which rows,
    the field says where within them."""

    rows: np.ndarray

    @property
    def support(self) -> np.ndarray:
        """The label pixels the field moves (the edit's alpha must cover them)."""
        return np.asarray(self.rows) != 0.0


#: What an edit tells the render beyond its labels (:func:`vq_models.edits.program.apply_program_rules`).
EditRule = DonorRule | DetailMove | EdgeShift


@dataclass
class FrameContext:
    """Per-frame facts beyond the label map.

    ``regions``: tracked regions (``left_eye``, ``right_eye``, ``left_brow`` ...) as boolean masks at the
    label map's size; they tell the left eye from the right even when one is closed. ``transform`` and
    ``crop_size`` (the shot's crop transform and its crop size) let ``paint`` take plate-space polygons.
    ``code_luma``: (K,) brightness of each code over the shot (NaN = never seen; Stage II's meta.json),
    so an op can choose a code by appearance; None when the model predates it.
    ``exemplars`` (:class:`vq_models.edits.exemplars.PartExemplars`) lets ``eye_open`` borrow a real
    closed eye from the shot at ``frame``; ``exclude`` lists frames never borrowed from
    (what-if measurements).
    """

    regions: Mapping[str, np.ndarray] = field(default_factory=dict)
    transform: Any = None
    crop_size: int | None = None
    code_luma: np.ndarray | None = None
    frame: int | None = None
    exemplars: Any = None
    exclude: frozenset[int] = frozenset()
