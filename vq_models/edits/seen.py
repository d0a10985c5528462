"""Parts found in a frame's own pixels where its codes miss them.

A Stage I code is a cluster of StyleGAN features, found passively: it means a look, not a part, and the prior
files each code under one segment. A code the shot mostly shows as the dark mouth interior also covers teeth in
the upper lip's shadow (lp_d13's widest smile), so an edit that trusts the codes alone leaves those teeth
standing, and the plate detail pass, comparing frames by their codes, takes a frame whose teeth carry such a
code for an empty mouth and lends their band. This module looks at the frame's crop at the label map's size
instead, learning what this frame's teeth look like from its teeth-coded pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from vq_models.edits import geometry as geo
from vq_models.edits.prior import Prior
from vq_models.io.colour import chroma, hue, luma

#: how much more saturated (max - min of display sRGB) than the frame's own teeth a pixel may be and still be
#: taken for a tooth (lips and tongue are pink, teeth near grey)
TEETH_SATURATION_MARGIN = 0.04
#: how far from the interior's median brightness toward the teeth's a pixel must be to be taken for a tooth
TEETH_BRIGHTNESS_SHARE = 0.5
#: how far from the interior's median brightness toward the teeth's a pixel continuing a row of teeth sideways
#: must be to be taken for one of its shadowed ends, however saturated (:func:`_shadowed_ends`)
TEETH_SHADOW_SHARE = 0.25
#: how much yellower (hue, degrees) than the lips a pixel must be to be taken for a tooth in their warm light
#: (:func:`_warmer_than_lips`: a tongue-coded shadowed end, or one measured from the interior's darker quarter):
#: teeth in the lips' warm light turn orange, a tongue is as pink as the lips or pinker
TEETH_END_HUE_MARGIN = 5.0
#: which percentile of the interior-coded pixels' brightness between the inner lips stands for the dark cavity
#: when a pixel yellower than the lips continues a row of teeth sideways (:func:`_shadowed_ends`): the median
#: stands for it otherwise, but where the codes file shadowed teeth under the interior (lp_d13's smiles) the
#: median is a tooth's, and the corner teeth in the lips' warm light fell below a floor drawn from it
TEETH_WARM_DARK_PERCENTILE = 25.0
#: the fewest teeth-coded pixels between the tracked inner lips that tell what this frame's teeth look like
TEETH_SAMPLE_MIN = 4
#: how saturated (max - min of display sRGB), as a share of the lips' median around the opening, a tongue-coded
#: pixel between the inner lips may be and still be taken for no tongue (:func:`grey_tongue`)
TONGUE_SATURATION_SHARE = 0.8
#: the prior's segments for the two rows of teeth
TEETH_ROWS = ("upper_teeth", "lower_teeth")
#: how far (label pixels) around the inner lips :func:`teeth_in_pixels` looks for the lips that scale the
#: shot's :class:`TeethLook` to this frame
LIPS_REACH = 4
#: which percentile of the shot's teeth-coded column heights between the inner lips a row of teeth reaches
#: (:class:`TeethReach`), and how many label rows beyond it
TEETH_REACH_PERCENTILE = 95.0
TEETH_REACH_MARGIN = 1.0


@dataclass(frozen=True)
class TeethLook:
    """What the shot's teeth look like beside its lips: the teeth codes' median brightness and saturation over
    the lip codes' (Stage II's palette, each code's mean colour over the training frames).

    Why: a frame whose teeth carry no teeth code (lp_d13 frames 15 and 53, lp_d0 frame 19: teeth across the
    mouth, hardly a teeth-coded pixel) has nothing of its own to learn the teeth's look from, and ``teeth 0``
    left every tooth standing. Relative to the lips so that it follows the frame's light."""

    brightness: float
    saturation: float


@dataclass(frozen=True)
class TeethReach:
    """How far from its lip a row of teeth reaches in this shot (label rows, None where the shot has no such
    code): the upper row down from the inner lips' top edge, the lower up from their bottom edge; the
    :data:`TEETH_REACH_PERCENTILE` of the shot's teeth-coded column heights between the inner lips, plus
    :data:`TEETH_REACH_MARGIN`.

    Why: a tooth is only so tall, and whatever a frame's pixels show beyond that is tongue or cavity, however
    pale. lp_d12's tongue is as grey beside his lips as his teeth are, so the teeth found in pixels
    (:func:`teeth_in_pixels`) and the grey tongue codes (:func:`grey_tongue`) took it, and ``teeth 0`` cut a dark
    band through it (benchmarks/RESULTS.md)."""

    upper: float | None
    lower: float | None

    def near_lips(self, inner: np.ndarray) -> np.ndarray:
        """(L, L) bool: the pixels of ``inner`` within reach of their row's lip, each half of the opening
        (:func:`~vq_models.edits.geometry.upper_half`) measured from its own edge; a half whose row the shot
        never codes is not limited."""
        inner = np.asarray(inner, bool)
        top, bottom, _ = geo.column_extents(inner)
        ys = np.arange(inner.shape[0])[:, None]
        upper = geo.upper_half(inner)
        near_top = np.ones_like(inner) if self.upper is None else ys < top[None, :] + self.upper
        near_bottom = np.ones_like(inner) if self.lower is None else ys > bottom[None, :] - self.lower
        return inner & np.where(upper, near_top, near_bottom)


def shot_teeth_reach(frames: Iterable[tuple[np.ndarray, np.ndarray | None]], prior: Prior) -> TeethReach:
    """:class:`TeethReach` from ``frames``: each frame's labels and its tracked inner lips at label size (None
    where it has none)."""
    heights: dict[str, list[np.ndarray]] = {name: [] for name in TEETH_ROWS if prior.has(name)}
    for labels, inner in frames:
        if inner is None or np.shape(inner) != np.shape(labels):
            continue
        for name in heights:
            per_column = np.count_nonzero(prior.mask(labels, name) & np.asarray(inner, bool), axis=0)
            heights[name].append(per_column[per_column > 0])

    def reach(name: str) -> float | None:
        values = np.concatenate(heights.get(name) or [np.zeros(0)])
        if not values.size:
            return None
        return float(np.percentile(values, TEETH_REACH_PERCENTILE)) + TEETH_REACH_MARGIN

    return TeethReach(reach("upper_teeth"), reach("lower_teeth"))


def shot_teeth_look(palette: np.ndarray | None, prior: Prior) -> TeethLook | None:
    """The :class:`TeethLook` of ``palette`` ((K, 3) display sRGB per code, NaN rows for codes never seen)
    under ``prior``, or None without a palette or where the prior names no teeth or lips the shot showed."""
    if palette is None:
        return None
    colours = np.asarray(palette, np.float64)

    def seen(names: tuple[str, ...]) -> np.ndarray:
        codes = [c for c in prior.codes_of(names) if 0 <= c < len(colours) and np.isfinite(colours[c]).all()]
        return colours[codes]

    teeth, lips = seen(TEETH_ROWS), seen(("upper_lip", "lower_lip"))
    if not len(teeth) or not len(lips):
        return None
    lips_brightness, lips_saturation = float(np.median(luma(lips))), float(np.median(chroma(lips)))
    if lips_brightness <= 0 or lips_saturation <= 0:
        return None
    return TeethLook(float(np.median(luma(teeth))) / lips_brightness,
                     float(np.median(chroma(teeth))) / lips_saturation)


def teeth_in_pixels(labels: np.ndarray, prior: Prior, inner: np.ndarray | None,
                    crop: Callable[[], np.ndarray | None] | None,
                    look: TeethLook | None = None, reach: TeethReach | None = None) -> dict[str, np.ndarray]:
    """Per row of teeth the prior has, the pixels inside ``inner`` (the tracked inner lips at label size) that
    look like this frame's teeth in its ``crop()`` (display sRGB at label size) but carry another code: nearly
    as bright as the teeth (:data:`TEETH_BRIGHTNESS_SHARE` of the way from the interior's median brightness to
    theirs) and hardly more saturated (:data:`TEETH_SATURATION_MARGIN`). A pixel joins the row its column shows
    teeth codes of, else the row of its half of the opening. Then each row's ends in the corners' shadow: the
    pixels continuing it sideways that are brighter than :data:`TEETH_SHADOW_SHARE` of that way, however
    saturated (:func:`_shadowed_ends`); those yellower than the lips (:func:`_warmer_than_lips`) that far from the
    interior's darker quarter (:data:`TEETH_WARM_DARK_PERCENTILE`). Never a lip-coded pixel (a lip code is a lip,
    wherever the inner-lip contour runs) nor a tongue-coded one as pink as the lips: a synthetic variant's tongue
    lies beside its lower teeth as bright as their shadowed ends, and taking it cost its no-teeth what-if, while
    lp_d13's shadowed corner teeth carry a tongue code too, but are orange where its tongue is pink. Where fewer
    than :data:`TEETH_SAMPLE_MIN` teeth-coded pixels lie between the inner lips to learn the teeth's look from,
    the shot's ``look`` scaled by the lips around them stands in (:class:`TeethLook`). Nothing beyond the shot's ``reach`` from its row's lip (:class:`TeethReach`) that is
    no brighter than the lips (:func:`_within_reach`). Empty without the crop (``crop`` None or giving None), the
    inner lips, or both the sample and the look."""
    if crop is None or inner is None or np.shape(inner) != labels.shape or not np.any(inner):
        return {}
    inner = np.asarray(inner, bool)
    rows = {name: prior.mask(labels, name) & inner for name in TEETH_ROWS if prior.has(name)}
    coded = np.any(list(rows.values()), axis=0) if rows else np.zeros(labels.shape, bool)
    sampled = np.count_nonzero(coded) >= TEETH_SAMPLE_MIN
    if not rows or not (sampled or look is not None):
        return {}
    image = crop()
    if image is None:
        return {}
    image = np.asarray(image, np.float32)
    brightness = luma(image)
    saturation = chroma(image)
    if sampled:
        teeth_brightness, teeth_saturation = float(np.median(brightness[coded])), float(np.median(saturation[coded]))
    else:
        lips = prior.mask(labels, ("upper_lip", "lower_lip"), required=False) & geo.grow_square(inner, LIPS_REACH)
        if not lips.any():
            return {}
        teeth_brightness = look.brightness * float(np.median(brightness[lips]))
        teeth_saturation = look.saturation * float(np.median(saturation[lips]))
    interior = prior.mask(labels, "mouth_interior") & inner if prior.has("mouth_interior") else np.zeros_like(inner)
    dark = float(np.median(brightness[interior])) if interior.any() else 0.0
    floor = dark + TEETH_BRIGHTNESS_SHARE * (teeth_brightness - dark)
    ceiling = teeth_saturation + TEETH_SATURATION_MARGIN
    found = inner & ~coded & (brightness > floor) & (saturation < ceiling)
    if reach is not None:
        within = _within_reach(labels, prior, inner, brightness, reach)
        found &= within
    upper_cols = rows.get("upper_teeth", np.zeros_like(inner)).any(axis=0)[None, :]
    lower_cols = rows.get("lower_teeth", np.zeros_like(inner)).any(axis=0)[None, :]
    upper = np.where(upper_cols != lower_cols, upper_cols, geo.upper_half(inner))
    seen = {name: found & (upper if name == "upper_teeth" else ~upper) for name in rows}
    shadow_floor = dark + TEETH_SHADOW_SHARE * (teeth_brightness - dark)
    lip_coded = prior.mask(labels, ("upper_lip", "lower_lip"), required=False)
    warm = _warmer_than_lips(lip_coded, inner, image)
    lit = brightness > shadow_floor
    if warm is not None and interior.any():
        deep = float(np.percentile(brightness[interior], TEETH_WARM_DARK_PERCENTILE))
        lit |= warm & (brightness > deep + TEETH_SHADOW_SHARE * (teeth_brightness - deep))
    pink_tongue = prior.mask(labels, "tongue", required=False) & (~warm if warm is not None else True)
    free = inner & ~coded & ~found & lit & ~lip_coded & ~pink_tongue
    if reach is not None:
        free &= within
    for name in rows:  # the upper row first: a pixel either row reaches is the upper's
        ends = _shadowed_ends(rows[name] | seen[name], free)
        seen[name] = seen[name] | ends
        free &= ~ends
    return seen


def _lips_around(labels: np.ndarray, prior: Prior, inner: np.ndarray) -> np.ndarray:
    """The lip-coded pixels within :data:`LIPS_REACH` of the inner lips, outside them: what a pixel between them is
    compared with."""
    return prior.mask(labels, ("upper_lip", "lower_lip"), required=False) & geo.grow_square(inner, LIPS_REACH) & ~inner


def _within_reach(labels: np.ndarray, prior: Prior, inner: np.ndarray, brightness: np.ndarray,
                  reach: TeethReach) -> np.ndarray:
    """Where :func:`teeth_in_pixels` may find a tooth given the shot's ``reach``: within it of a lip
    (:meth:`TeethReach.near_lips`), or anywhere brighter than the lips around the opening. Why the second: a
    tongue, however pale, is no brighter than the lips (lp_d12's; benchmarks/RESULTS.md), but where the codes miss a
    whole row of teeth (lp_d13's widest smile, its upper teeth coded as the interior) the teeth codes the reach is
    measured on are short, and those teeth stand well above the lips."""
    near = reach.near_lips(inner)
    lips = _lips_around(labels, prior, inner)
    if not lips.any():
        return near
    return near | (inner & (brightness > float(np.median(brightness[lips]))))


def _warmer_than_lips(lip_coded: np.ndarray, inner: np.ndarray, image: np.ndarray) -> np.ndarray | None:
    """(L, L) bool: the pixels of ``image`` :data:`TEETH_END_HUE_MARGIN` yellower than the median of the lip-coded
    pixels (``lip_coded``) around the opening ``inner``, or None where no lip code is near to compare with. Teeth in the lips' warm light
    turn orange; a tongue is as pink as the lips or pinker, however pale (lp_d12's; benchmarks/RESULTS.md)."""
    around = lip_coded & geo.grow_square(inner, 2)
    if not around.any():
        return None
    angle = hue(image)
    return angle >= float(np.median(angle[around])) + TEETH_END_HUE_MARGIN


def _shadowed_ends(teeth: np.ndarray, free: np.ndarray) -> np.ndarray:
    """The pixels of ``free`` that continue ``teeth`` sideways: reached from a tooth through ``free`` pixels
    along its own label row, left or right.

    Why: toward the mouth's corners a row of teeth darkens and takes the lips' warm light (lp_d13's smile: as
    saturated as the lips), so neither its codes nor the look test above find it, and ``teeth 0`` left the
    corner teeth standing (lp_d13, lp_d0). Sideways only: what lies above or below a row is lip, tongue or
    cavity, which may be as bright."""
    grown = teeth.copy()
    while True:
        beside = np.zeros_like(grown)
        beside[:, 1:] |= grown[:, :-1]
        beside[:, :-1] |= grown[:, 1:]
        new = beside & free & ~grown
        if not new.any():
            return grown & ~teeth
        grown |= new


def grey_tongue(labels: np.ndarray, prior: Prior, inner: np.ndarray | None,
                crop: Callable[[], np.ndarray | None] | None, reach: TeethReach | None = None) -> np.ndarray | None:
    """The tongue-coded pixels inside ``inner`` (the tracked inner lips at label size) that are greyer in the
    frame's ``crop()`` (display sRGB at label size) than a tongue: saturation under
    :data:`TONGUE_SATURATION_SHARE` of the lips' median around the opening, within the shot's ``reach`` of a lip
    (:class:`TeethReach`: a grey tongue further in is a pale tongue, lp_d12's). None without the crop, the inner
    lips, a tongue segment or lips to compare with.

    Why: a tongue is as pink as the lips or pinker; lp_d13's prior files under tongue codes the pixels that
    cover his lower teeth and the shadow between them, which Stage II draws as pale teeth, so an emptied mouth
    kept a row of grey ghosts of them (benchmarks/RESULTS.md)."""
    if crop is None or inner is None or np.shape(inner) != labels.shape or not np.any(inner) \
            or not prior.has("tongue"):
        return None
    inner = np.asarray(inner, bool)
    lips = _lips_around(labels, prior, inner)
    tongue = prior.mask(labels, "tongue") & inner
    if not lips.any() or not tongue.any():
        return None
    image = crop()
    if image is None:
        return None
    image = np.asarray(image, np.float32)
    saturation = chroma(image)
    grey = tongue & (saturation < TONGUE_SATURATION_SHARE * float(np.median(saturation[lips])))
    return grey if reach is None else grey & reach.near_lips(inner)


def with_teeth_seen(labels: np.ndarray, prior: Prior, inner: np.ndarray | None,
                    crop: Callable[[], np.ndarray | None] | None, look: TeethLook | None = None,
                    reach: TeethReach | None = None) -> np.ndarray:
    """``labels`` with the teeth :func:`teeth_in_pixels` finds given their row's first code: what the frame shows
    by segment, for comparing frames (the detail pass's donors) rather than for rendering."""
    seen = teeth_in_pixels(labels, prior, inner, crop, look, reach)
    if not seen:
        return labels
    out = labels.copy()
    for name, mask in seen.items():
        out[mask] = prior.codes(name)[0]
    return out
