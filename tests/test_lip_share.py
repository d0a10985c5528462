"""The upper lip's share of an opening, fitted on a shot's tracked mouths (vq_models.edits.lip_share)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from vq_models.edits import lip_share
from vq_models.edits.lip_share import MAX_UPPER_SHARE, MIN_FRAMES, fit_upper_lip_share, mouth_middle


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 64) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def test_mouth_middle_reads_the_upper_edge_and_opening_at_the_middle():
    top, opening = mouth_middle(_ellipse(30.0, 40.0, 10.0, 3.0), 64)
    assert top == pytest.approx(37.0, abs=0.1)
    assert opening == pytest.approx(6.0, abs=0.15)
    assert mouth_middle(_ellipse(30.0, 40.0, 10.0, 3.0)[:2], 64) is None  # no polygon
    assert mouth_middle(_ellipse(80.0, 40.0, 5.0, 3.0), 64) is None  # off the label map


def test_fit_recovers_the_share_from_noisy_frames():
    rng = np.random.default_rng(0)
    opening = rng.uniform(0.0, 10.0, 60)
    upper = 20.0 - 0.25 * opening + rng.normal(0.0, 0.2, opening.size)
    assert fit_upper_lip_share(zip(upper, opening, strict=True)) == pytest.approx(0.25, abs=0.03)
    with_gaps = [*zip(upper, opening, strict=True), None, (np.nan, 3.0)]  # frames without a tracked mouth are skipped
    assert fit_upper_lip_share(with_gaps) == pytest.approx(fit_upper_lip_share(zip(upper, opening, strict=True)))


def test_fit_keeps_the_upper_lip_still_when_the_shot_cannot_say():
    rng = np.random.default_rng(1)
    opening = rng.uniform(0.0, 10.0, MIN_FRAMES - 1)
    assert fit_upper_lip_share(zip(20.0 - 0.25 * opening, opening, strict=True)) == 0.0  # too few frames
    flat = np.full(40, 5.0) + rng.normal(0.0, 0.1, 40)
    assert fit_upper_lip_share(zip(20.0 - 0.25 * flat, flat, strict=True)) == 0.0  # openings that hardly vary
    wide = rng.uniform(0.0, 10.0, 40)
    assert fit_upper_lip_share(zip(20.0 - 0.9 * wide, wide, strict=True)) == MAX_UPPER_SHARE  # a sneer, not an opening
    assert fit_upper_lip_share(zip(20.0 + 0.2 * wide, wide, strict=True)) == 0.0  # an upper lip that falls as it opens


def test_a_trained_shot_fits_its_share_on_its_own_tracked_mouths(tiny_shot, tmp_path, monkeypatch):
    """The tiny synthetic shot's upper lip rises with its opening as the face generator draws it (a share near
    0.19 at the middle); the shot model fits it from its tracked contours and hands it to the ops' context; its
    64² labels open less than MIN_SPREAD rows, so by default it keeps its upper lip still."""
    from vq_models.runtime import ShotModel

    model = ShotModel.load(shutil.copytree(tiny_shot, tmp_path / "shot"))
    assert model._upper_lip_share(frozenset()) == 0.0
    monkeypatch.setattr(lip_share, "MIN_SPREAD", 0.1)
    model = ShotModel.load(tmp_path / "shot")
    share = model._upper_lip_share(frozenset())
    assert 0.1 < share < 0.3
    assert model._context(model.frames[0]).upper_lip_share() == share
    some = frozenset(model.frames[: len(model.frames) // 2])
    assert model._context(model.frames[-1], set(some)).upper_lip_share() == model._upper_lip_share(some) != share
