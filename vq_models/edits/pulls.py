"""Lids and lips an op moved per label column (``eye_open``, ``mouth_open``), as the detail pass must move the
frame's own plate to show them: :class:`ColumnPull` for a lid pulled down, :class:`JawPull` for a lower lip moved.

A label map places those edges at whole rows per column, a staircase, while the plate's lid or lip is one smooth
curve. A pull is therefore evaluated at any label position from its columns' rows taken as a curve (parabolas
for a lid, smoothed rows for a lip), less each column's rest, which the edge field
(:class:`~vq_models.edits.spec.EdgeShift`, :func:`vq_models.moved_parts.shift_edges`) adds to the finished edit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: ``eye_open`` and ``mouth_open`` values from which the frame's own lid or lip, moved, is its detail
#: (:class:`ColumnPull`, :class:`JawPull`), and below which it is not at all (in between it fades). A squint is
#: the same lid moved and a half-closed mouth the same lip; a closed eye or mouth is not (the lashes fall onto
#: the lower lid and the fold unfolds; closed lips press together): a pull at 0 cost lp_d0's blink what-if and,
#: by several dB, the variants' closed-mouth what-ifs (benchmarks/RESULTS.md). A lid's moved lashes show at
#: every value (:meth:`ColumnPull.weight_at`).
PULL_FULL_FROM = 0.5
PULL_NONE_BELOW = 0.25


def pull_strength(value: float) -> float:
    """How much of a moved lid's or lip's detail its pull gives at ``value`` (:data:`PULL_FULL_FROM`)."""
    return float(np.clip((value - PULL_NONE_BELOW) / (PULL_FULL_FROM - PULL_NONE_BELOW), 0.0, 1.0))


#: how far an edge field is smoothed, in label pixels (Gaussian sigmas): along a column, over half a row (the
#: rest's rows blend into the rows around them); across columns, over two. A column's rest differs from its
#: neighbour's by up to a row, and the plate moved by it bent straight lines crossing the lid edge into waves a
#: few plate pixels high (the rim of lp_d13's glasses lies on the lid line); smoothed across, the edge still
#: moves on every value, and a line crossing it stays straight.
EDGE_SMOOTH = 0.5
EDGE_SMOOTH_ACROSS = 2.0


def _taper(u: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """1 from the first column to the last, falling to 0 a column beyond each end: a lid or lip's move ends at
    its corners instead of stopping short there."""
    return np.clip(np.minimum(u - (cols[0] - 1), (cols[-1] + 1) - u), 0.0, 1.0)


def _across_columns(rows: np.ndarray, cols: np.ndarray, u: np.ndarray, sigma: float, ends: str) -> np.ndarray:
    """Per-column ``rows`` (taken at ``cols``) smoothed across columns by a Gaussian of ``sigma`` columns and
    interpolated linearly at label positions ``u``; beyond each end, and at the column past it, zeros
    (``ends="constant"``) or the end's value (``"edge"``)."""
    values = np.asarray(rows, np.float64)[cols]
    reach = max(1, int(np.ceil(3.0 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-reach, reach + 1) / sigma) ** 2)
    padded = np.pad(values, reach, mode=ends)  # type: ignore[call-overload]
    smooth = np.convolve(padded, kernel / kernel.sum(), mode="same")[reach:-reach]
    outer = (smooth[:1], smooth[-1:]) if ends == "edge" else ([0.0], [0.0])
    return np.interp(u, np.concatenate([[cols[0] - 1], cols, [cols[-1] + 1]]),
                     np.concatenate([outer[0], smooth, outer[1]]))


@dataclass(frozen=True)
class ColumnPull:
    """A lid pulled down by ``eye_open``'s column rule, so the detail pass can show the frame's own lid where it
    now covers the eye: its margin (the lashes, ``margin`` rows above the opening) moves down with the lid's
    edge, and the skin ``skin`` rows above the margin stretches over the rows the margin left.

    Per label column (L,), NaN where a column has no lid: ``opening`` and ``bottom``, the opening's first and
    last rows before the edit, and ``rest``, the column's rest under half a row
    (:class:`~vq_models.edits.spec.EdgeShift`). The lid closes ``1 - value`` of the opening. :meth:`rows_at`
    gives, at any label position, how far above it the frame's plate shows what belongs there."""

    opening: np.ndarray
    bottom: np.ndarray
    rest: np.ndarray
    value: float
    margin: int
    skin: int

    @property
    def strength(self) -> float:
        return pull_strength(self.value)

    @property
    def defined(self) -> bool:
        """Whether the lid has the three columns a parabola needs (a smaller lid moves nothing: its band would
        show the plate's unmoved eye where the labels say lid, so the op reports no pull)."""
        return int(np.count_nonzero(np.isfinite(self.opening))) >= 3

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
        if not self.defined:
            return np.zeros(np.broadcast(u, v).shape, np.float32)
        top, shift, taper = self._closing(u)
        fold = top - self.margin - self.skin
        stretch_end = top - self.margin + shift  # the margin's new top: above it the skin is stretched
        out = np.where(v < stretch_end, shift * (v - fold) / np.maximum(stretch_end - fold, 1e-6), shift)
        out = np.where((v < fold) | (v >= top + shift) | (taper <= 0.0), 0.0, out)
        return out.astype(np.float32)

    def weight_at(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """How much of the pulled plate the detail pass shows at label coordinates ``u``, ``v``: the moved
        margin (the lashes, down to the lid's new edge) at every value, the rest (the stretched skin above it)
        by :attr:`strength`. A closed lid is not the open one stretched (the fold unfolds), but its lashes
        still lie along its edge: without them the closed lid of a shot with no blink to lend its detail was the
        render's soft band alone (lp_d0: 0.63 of the real closed eye's fine detail; ``vqedit eval --blinks``).
        The margin fades in over its first row (above it is the stretched skin) and out over half a row below
        the edge."""
        u = np.asarray(u, np.float64)
        v = np.asarray(v, np.float64)
        strength = self.strength
        if strength >= 1.0 or not self.defined:
            return np.full(np.broadcast(u, v).shape, strength if self.defined else 0.0, np.float32)
        top, shift, taper = self._closing(u)
        edge = top + shift
        lashes = np.clip(v - (edge - self.margin), 0.0, 1.0) * np.clip(edge + 0.5 - v, 0.0, 1.0) * taper
        return np.maximum(lashes, strength).astype(np.float32)

    def _closing(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """At label columns ``u``: the opening's top (its arc), how far the lid comes down from it (the whole
        closing less the rest, fading to nothing a column beyond each end) and that fade."""
        cols = np.nonzero(np.isfinite(self.opening))[0]
        top = np.polyval(np.polyfit(cols, np.asarray(self.opening, np.float64)[cols] - 0.5, 2), u)
        bottom = np.polyval(np.polyfit(cols, np.asarray(self.bottom, np.float64)[cols] + 0.5, 2), u)
        rest = _across_columns(self.rest, cols, u, EDGE_SMOOTH_ACROSS, "constant")
        taper = _taper(u, cols)
        shift = np.maximum((1.0 - self.value) * np.maximum(bottom - top, 0.0) * taper - rest, 0.0)
        return top, shift, taper


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
    height before the edit, ``lip``, the lower lip's last row (the interior's where it has none), ``rest``,
    the column's rest under half a row (:class:`~vq_models.edits.spec.EdgeShift`), and ``grow``, how many rows
    (exact) the interior grows by, so the lip moves by ``grow`` (``(value - 1) * height`` where the op scales
    the interior's rows)."""

    top: np.ndarray
    height: np.ndarray
    lip: np.ndarray
    rest: np.ndarray
    value: float
    grow: np.ndarray

    @property
    def strength(self) -> float:
        return pull_strength(self.value)

    @property
    def defined(self) -> bool:
        """Whether the mouth has two columns to draw a lip line through (else the op reports no pull)."""
        return int(np.count_nonzero(np.isfinite(self.lip))) >= 2

    def weight_at(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """How much of the pulled plate the detail pass shows: :attr:`strength` everywhere (closed lips press
        together, so the moved lip fades out as a whole, unlike a lid's lashes)."""
        return np.full(np.broadcast(np.asarray(u), np.asarray(v)).shape, self.strength, np.float32)

    def rows_at(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """The pull (label rows, + = from above) at label coordinates ``u``, ``v`` (pixel centres at integers):
        the lip's move over the lip, fading to 0 over the chin below it and over the interior above it (which
        scales as its labels do), 0 above the interior and beyond the mouth's columns. The columns' rows are
        smoothed by :data:`LIP_SMOOTH`; the rest is left to the edge field
        (:func:`vq_models.moved_parts.shift_edges`), as :meth:`ColumnPull.rows_at` does."""
        u = np.asarray(u, np.float64)
        v = np.asarray(v, np.float64)
        cols = np.nonzero(np.isfinite(self.lip))[0]
        if not self.defined:
            return np.zeros(np.broadcast(u, v).shape, np.float32)

        def line(rows: np.ndarray) -> np.ndarray:
            return _across_columns(rows, cols, u, LIP_SMOOTH, "edge")

        taper = _taper(u, cols)
        height = line(self.height)
        shift = (line(self.grow) - _across_columns(self.rest, cols, u, EDGE_SMOOTH_ACROSS, "constant")) * taper
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
