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

from vq_models.edits.geometry import grow_square
from vq_models.edits.pulls import ColumnPull, JawPull
from vq_models.edits.seen import TeethLook, TeethReach

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
class OpResult:
    """An op's edited labels together with what the render must know beyond them, from one pass: the
    :class:`DetailMove` of each part it moved within the frame, and the rows of its :class:`EdgeShift` field
    ((L, L), the rest of the edges it placed per column at whole label rows; None: no such edge)."""

    labels: np.ndarray
    moves: list[DetailMove] = field(default_factory=list)
    edges: np.ndarray | None = None


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
    #: True: where this op changed the labels, a frame that still shows a segment the op removed, where its band
    #: would show and the edit does not ask for that segment, never lends (``teeth``: a donor whose mouth showed
    #: teeth a row lower put them back, crisp; :meth:`vq_models.detail.DonorIndex.best`). Closing ops leave it
    #: off: a closed eye's or mouth's best donors show a little of the opening in the ring around it.
    donor_ghosts: bool = False
    #: ``run(labels, value, params, prior, ctx)``: ``fn``'s labels with the op's moved parts and edge field
    #: (:class:`OpResult`), for ops that move parts (``gaze``, ``brows``, ``translate``) or place edges per
    #: column (``eye_open``, ``mouth_open``); the program calls it instead of ``fn``, also where no label
    #: changed (a move under half a label pixel). None: ``fn``'s labels are all there is.
    run: Callable[..., OpResult] | None = None
    #: True: the labels this op changes are a fill the renderer never saw over such an area (:class:`FilledRegion`).
    fills: bool = False
    #: ``remnants(value, params, ctx)``: where what this op removed may still show on the plate finer than the
    #: label grid (:class:`PlateRemnants`), or None. None: nothing the op removes is finer than a label pixel.
    remnants: Callable[..., PlateRemnants | None] | None = None


@dataclass(frozen=True)
class DonorRule:
    """Frames (``exclude``) that must not lend plate detail to a changed region meeting ``changed`` (L, L);
    with ``ghosts``, neither may a frame still showing what the op removed there (:attr:`Operation.donor_ghosts`)."""

    changed: np.ndarray
    exclude: frozenset[int]
    ghosts: bool = False


def label_shift(shift: tuple[float, float]) -> tuple[int, int]:
    """The whole label pixels of a shift (nearest, halves away from zero): what a label map can move."""
    return tuple(int(np.sign(v) * np.floor(abs(v) + 0.5)) for v in shift)  # type: ignore[return-value]


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


@dataclass(frozen=True)
class FilledRegion:
    """Label pixels (``filled``, (L, L) bool) an op filled with a code over an area the shot never shows it
    across (:attr:`Operation.fills`: ``teeth 0`` turns a mouthful of teeth into one interior code the shot shows
    only in the gaps between them). The renderer extrapolates there (lp_d13: an orange glow inside the emptied
    mouth), so the render holds its low frequencies to the shot's own colour of each code
    (:func:`vq_models.fill_anchor.anchor_filled`), and where the plate detail pass runs, what the op left alone
    around it (lips, tongue) stays the plate (:meth:`vq_models.detail.PlateDetail.apply`)."""

    filled: np.ndarray


#: how far (label pixels) around a :class:`PlateRemnants` region its ``opening`` holds: the plate keeps its
#: lips there outside the contour, and another edit's change there drops the opening
OPENING_CLEARANCE = 2


@dataclass(frozen=True)
class PlateRemnants:
    """Label pixels (``within``, (L, L) bool) where what an op removed may still show on the plate, finer than
    the label grid: at 5.6 plate pixels a label pixel (lp_d13) a row of teeth's rim lies in label pixels that
    are half lip or cavity, and ``teeth 0`` left it standing, the plate detail pass keeping the plate's band
    there. Where the plate stands well above the render inside it, grey, the detail pass takes the render
    (:func:`vq_models.detail.plate_remnants`) and the edit's alpha covers it.

    ``opening``: the tracked contour (label coordinates, (N, 2)) of the opening the op emptied, or None. Around
    it the plate, not the label grid, draws the edge: outside the contour, grown by
    :data:`vq_models.detail.OPENING_GROW_PX`, the detail pass keeps the plate's lips where the op changed label
    pixels that straddle it (lp_d0's emptied mouth met his upper lip in label-pixel steps). Dropped where
    another edit changed labels near it: the contour is the frame's as shot."""

    within: np.ndarray
    opening: np.ndarray | None = None

    @property
    def near(self) -> np.ndarray:
        """``within`` grown by :data:`OPENING_CLEARANCE`: where its ``opening`` holds."""
        return grow_square(self.within, OPENING_CLEARANCE)


#: What an edit tells the render beyond its labels (:func:`vq_models.edits.program.apply_program_rules`).
EditRule = DonorRule | DetailMove | EdgeShift | FilledRegion | PlateRemnants


@dataclass
class FrameContext:
    """Per-frame facts beyond the label map.

    ``regions``: tracked regions (``left_eye``, ``right_eye``, ``left_brow`` ...) as boolean masks at the
    label map's size; they tell the left eye from the right even when one is closed. ``transform`` and
    ``crop_size`` (the shot's crop transform and its crop size) let ``paint`` take plate-space polygons.
    ``code_luma``: (K,) brightness of each code over the shot (NaN = never seen; Stage II's meta.json),
    so an op can choose a code by appearance; None when the model predates it.
    ``exemplars`` (:class:`vq_models.edits.exemplars.PartExemplars`) lets ``eye_open`` borrow a real
    closed eye from the shot at ``frame``, ``gaze`` a look and ``mouth_open`` a wider mouth; ``exclude`` lists
    frames never borrowed from
    (what-if measurements). ``outlines``: the tracked contours themselves in label coordinates (N, 2), where
    an op needs them finer than a label pixel (``mouth_open``'s tracked opening). ``crop``: returns the frame's
    own aligned crop at the label map's size (display sRGB, (L, L, 3); None where the shot has none), for ops
    that must find a part its codes miss (``teeth``: teeth whose code the prior files under the interior), and
    ``teeth_look`` (:class:`~vq_models.edits.seen.TeethLook`, None when the model predates Stage II's palette)
    what the shot's teeth look like, for a frame whose teeth carry hardly any teeth code. Two facts measured over
    the shot's frames, asked for only by the ops that need them (so called, like ``crop``, not stored):
    ``teeth_reach()`` how far from its lip a row of teeth reaches (:class:`~vq_models.edits.seen.TeethReach`), and
    ``upper_lip_share()`` how much of an opening the shot's upper lip takes (:mod:`vq_models.edits.lip_share`),
    for ``mouth_open`` closing; None: not known (no reach, a share of 0: the upper lip holds still).
    """

    regions: Mapping[str, np.ndarray] = field(default_factory=dict)
    transform: Any = None
    crop_size: int | None = None
    code_luma: np.ndarray | None = None
    frame: int | None = None
    exemplars: Any = None
    exclude: frozenset[int] = frozenset()
    outlines: Mapping[str, np.ndarray] = field(default_factory=dict)
    crop: Callable[[], np.ndarray | None] | None = None
    teeth_look: TeethLook | None = None
    teeth_reach: Callable[[], TeethReach | None] | None = None
    upper_lip_share: Callable[[], float] | None = None
