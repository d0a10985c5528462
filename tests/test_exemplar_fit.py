"""The exemplar region's share is chosen by replaying eye_open 0 on the shot's own blinks: a shot whose closed
lids bring a crease above the eye takes the wide region, a shot whose blinks differ in shading around the eye
takes the outlines alone, and a shot with fewer than two usable blinks keeps the default."""

from __future__ import annotations

import numpy as np
import pytest

from vq_models.edits.exemplar_fit import fit_region_grow, own_blinks
from vq_models.edits.exemplars import REGION_GROW, PartExemplars, part_track

L = 48
SKIN, LID, WHITE, IRIS, CREASE, SHADE = 1, 2, 3, 4, 5, 6
PALETTE = np.array([[0, 0, 0], [0.8, 0.6, 0.5], [0.2, 0.1, 0.1], [0.95, 0.95, 0.95], [0.3, 0.2, 0.2],
                    [0.4, 0.5, 0.7], [0.6, 0.45, 0.4]], np.float32)
CLOSED = {10, 11, 30, 31}  # two blinks in 40 frames


def _eye(opening: float, crease: bool, shade: bool) -> tuple[np.ndarray, np.ndarray]:
    """One eye at (24, 20), 16 wide: white and iris when open, a lid line when closed; ``crease`` puts a crease
    code 3 rows above the open eye's outline (where only a wide region reaches), ``shade`` a different skin
    code in a ring around the eye (as a head turned toward the light would)."""
    labels = np.full((L, L), SKIN, np.uint8)
    yy, xx = np.mgrid[0:L, 0:L]
    if shade:
        ring = (((xx - 24) / 13.0) ** 2 + ((yy - 20) / 9.0) ** 2 <= 1) & ~((np.abs(xx - 24) <= 8) & (np.abs(yy - 20) <= 4))
        labels[ring] = SHADE
    t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    contour = np.stack([24 + 8 * np.cos(t), 20 + 8 * opening * np.sin(t)], axis=1)
    if opening > 0.2:
        inside = ((xx - 24) / 8) ** 2 + ((yy - 20) / (8 * opening)) ** 2 <= 1
        labels[inside] = WHITE
        labels[inside & ((xx - 24) ** 2 + (yy - 20) ** 2 <= 9)] = IRIS
    else:
        labels[19:22, 16:33] = LID
        if crease:
            labels[13, 17:32] = CREASE
    return labels, contour


def _shot(kind: str):
    frames = list(range(40))
    maps, tracks = {}, {}
    for f in frames:
        shade = kind == "shading" and f < 20  # the first blink's stretch of the shot is lit differently
        maps[f], contour = _eye(0.05 if f in CLOSED else 0.5, crease=kind == "crease", shade=shade)
        tracks[f] = {"left": part_track(contour)}
    ex = PartExemplars(frames, lambda f: tracks[f], lambda f: maps[f])
    render = lambda window: PALETTE[window[1]]  # noqa: E731  a renderer that draws each code's colour
    real = lambda f: PALETTE[maps[f]]  # noqa: E731
    return ex, maps, render, real


def test_the_shots_own_blinks_are_found_as_the_blink_whatif_finds_them():
    ex, *_ = _shot("crease")
    assert own_blinks(ex) == [(6, 10), (26, 30)]
    assert own_blinks(ex, frozenset({29})) == [(6, 10)]  # a left-out frame near a blink drops that blink


def test_a_crease_that_comes_with_the_closed_lid_takes_the_wide_region():
    ex, maps, render, real = _shot("crease")
    fit = fit_region_grow(ex, lambda f: maps[f], render, real)
    assert fit is not None and fit.blinks == [(6, 10), (26, 30)]
    assert fit.grow == pytest.approx(0.3)
    assert fit.scores[0.3] > fit.scores[0.0]


def test_shading_that_differs_between_blinks_takes_the_outlines_alone():
    ex, maps, render, real = _shot("shading")
    fit = fit_region_grow(ex, lambda f: maps[f], render, real)
    assert fit is not None
    assert fit.grow == 0.0
    assert fit.scores[0.0] > fit.scores[0.3]


def test_fewer_than_two_usable_blinks_keep_the_default():
    ex, maps, render, real = _shot("crease")
    assert fit_region_grow(ex, lambda f: maps[f], render, real, exclude=frozenset({30})) is None
    assert ex.region_grow() == REGION_GROW  # no fit wired in: the default


def test_the_fitted_share_is_what_closing_uses():
    ex, maps, render, real = _shot("shading")
    fits = {}

    def fitted(exclude):
        fits.setdefault(exclude, fit_region_grow(ex, lambda f: maps[f], render, real, exclude))
        return None if fits[exclude] is None else fits[exclude].grow

    wired = PartExemplars(ex.frames, lambda f: {"left": ex.track(f, "left")}, lambda f: maps[f], region_grow=fitted)
    assert wired.region_grow() == 0.0
    out = wired.close(maps[26], 26, "left", 0.0)  # borrows blink 1 (frames 10/11): its shade must not come along
    assert out is not None
    assert not (out == SHADE).any()
    assert not np.isin(out, [WHITE, IRIS]).any()
    wide = wired.close(maps[26], 26, "left", 0.0, grow=0.3)
    assert (wide == SHADE).any()  # the wide region would have pasted the other blink's shading
