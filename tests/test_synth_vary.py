"""`vqedit synth --vary`: faces whose proportions, skin and lighting come from the seed.

Why these tests: the variants exist so Stage I and the edits can be measured on faces nobody tuned on,
which only works if (a) the proportions really differ from seed to seed *in the ground-truth labels*
(not just in a number nobody draws), (b) a variant is reproducible from its seed, and (c) the plain
generator is untouched, so every figure measured on it still holds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from vq_models.cli import main
from vq_models.synth import PART_ID, WHATIFS, Identity, performance, render, render_whatif
from vq_models.synth.face_model import VARIED_FIELDS

P = PART_ID
SEEDS = (1, 2, 3, 4, 5, 6)  # plain-generator checks

#: sha256 of the label maps (plate and every what-if) of the plain generator, computed with the code at
#: commit 9dd5dd9, before the proportions became identity fields: see :func:`_plain_label_digest`.
PLAIN_LABELS_SHA256 = "7d41c9be9b643917fbd9d7dea71d2cf9151045e9ef28b54549d749aa65d36e73"


def _plain_label_digest() -> str:
    h = hashlib.sha256()
    for seed in (0, 4, 17):
        for state in performance(24, seed=seed)[::4]:
            frame = render(state, 96)
            h.update(frame.labels.tobytes())
            for edit in WHATIFS.values():
                h.update(render_whatif(frame, edit(state)).labels.tobytes())
    return h.hexdigest()


def _neutral_labels(seed: int, vary: bool, size: int = 256) -> np.ndarray:
    """Labels of the seed's face looking straight ahead, eyes open, mouth closed, no roll or yaw: the
    proportions without the performance in the way."""
    state = performance(1, seed=seed, vary=vary)[0]
    state = dataclasses.replace(state, head_roll=0.0, head_yaw=0.0, head_x=0.0, head_y=0.0, head_scale=1.0,
                                eye_open=1.0, gaze_x=0.0, gaze_y=0.0, mouth_open=0.0, mouth_smile=0.0)
    return render(state, size).labels


def _measures(labels: np.ndarray) -> tuple[float, float]:
    """(pupil area / iris-and-pupil area, mouth width / distance between the eye centres), both from
    label pixels only."""
    pupil, iris = (labels == P["pupils"]).sum(), (labels == P["irises"]).sum()
    lips = np.nonzero(np.isin(labels, (P["upper_lip"], P["lower_lip"])))[1]
    eyes = np.nonzero(np.isin(labels, (P["eye_whites"], P["irises"], P["pupils"])))[1]
    centre = labels.shape[1] / 2.0
    left, right = eyes[eyes < centre].mean(), eyes[eyes >= centre].mean()
    return float(pupil / (pupil + iris)), float((lips.max() - lips.min() + 1) / (right - left))


def test_plain_generator_is_unchanged() -> None:
    """Without --vary the labels are byte for byte those of the generator before this option existed,
    and the identity has the original proportions (which states.json does not list)."""
    assert _plain_label_digest() == PLAIN_LABELS_SHA256
    for seed in SEEDS:
        ident = Identity.from_seed(seed)
        assert all(getattr(ident, f) == getattr(Identity(), f) for f in VARIED_FIELDS)
        assert not set(VARIED_FIELDS) & set(ident.record())
        assert performance(3, seed=seed) == performance(3, seed=seed, vary=False)


def test_vary_changes_proportions_in_the_labels() -> None:
    seeds = range(1, 13)
    plain = np.array([_measures(_neutral_labels(s, vary=False)) for s in seeds[:3]])
    varied = np.array([_measures(_neutral_labels(s, vary=True)) for s in seeds])
    pupil, mouth = varied[:, 0], varied[:, 1]
    # the plain face's pupils are the same whatever the seed; its mouth moves only with the eye-spacing jitter
    assert np.ptp(plain[:, 0]) < 0.03, plain
    # varied: pupils from small to large, mouths from narrow to wide
    assert pupil.max() / pupil.min() > 1.5, pupil
    assert mouth.max() / mouth.min() > 1.15 and np.ptp(mouth) > 2 * np.ptp(plain[:, 1]), (mouth, plain)
    # and the labels follow the drawn identity: the pupil fraction ranks as (pupil / iris radius)², the
    # mouth as its half-width over the eye spacing (rank correlation; pixels quantise close values)
    ids = [Identity.from_seed(s, vary=True) for s in seeds]
    for measured, drawn in ((pupil, [(i.pupil_radius / i.iris_radius) ** 2 for i in ids]),
                            (mouth, [i.mouth_width / i.eye_spacing for i in ids])):
        rank = np.corrcoef(np.argsort(np.argsort(measured)), np.argsort(np.argsort(drawn)))[0, 1]
        assert rank > 0.8, (measured, drawn)


def test_vary_is_deterministic_and_keeps_the_geometry_consistent() -> None:
    a, b = Identity.from_seed(7, vary=True), Identity.from_seed(7, vary=True)
    assert a == b and a != Identity.from_seed(8, vary=True)
    assert set(VARIED_FIELDS) <= set(a.record())
    # the colours and texture the plain seed draws are kept; only proportions, skin and light change
    plain = Identity.from_seed(7)
    assert (a.hair, a.iris, a.background, a.texture_seed) == (plain.hair, plain.iris, plain.background,
                                                              plain.texture_seed)
    # tracking contours come from the same geometry as the labels: the iris contour has the drawn radius
    frame = render(performance(1, seed=7, vary=True)[0], 128)
    geom = frame.geometry
    iris = geom.to_canonical(geom.contours()["left_iris"])
    radius = np.linalg.norm(iris - iris.mean(0), axis=1)
    np.testing.assert_allclose(radius, a.iris_radius, rtol=0.02)


def test_ranges_stay_plausible_over_many_seeds() -> None:
    """No drawn part crosses its neighbour: the pupil sits inside the iris, the iris inside the eye, the
    open mouth above the chin, lips thinner than the mouth is wide."""
    for seed in range(200):
        i = Identity.from_seed(seed, vary=True)
        assert 0.25 <= i.pupil_radius / i.iris_radius <= 0.6
        assert i.iris_radius <= 0.53 * i.eye_width and i.eye_width <= 0.6 * i.eye_spacing + 1e-12
        assert i.mouth_y + i.jaw_drop + i.lower_lip <= i.face_height - 0.14 + 1e-12
        assert all(0.0 < c <= 1.0 for c in (*i.skin, *i.lips))
        assert 0.7 <= i.exposure <= 1.2 and 0.0 < i.ambient < 0.6


@pytest.mark.parametrize("seed", [5])
def test_cli_vary_writes_the_identity_and_repeats(tmp_path: Path, seed: int) -> None:
    args = ["--frames", "3", "--size", "64", "--seed", str(seed), "--vary", "--no-progress"]
    assert main(["synth", str(tmp_path / "a"), *args]) == 0
    assert main(["synth", str(tmp_path / "b"), *args]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) > 10
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    recorded = json.loads((tmp_path / "a" / "states.json").read_text())["identity"]
    assert recorded["pupil_radius"] == Identity.from_seed(seed, vary=True).pupil_radius
    assert main(["synth", str(tmp_path / "c"), *args[:-2], "--no-progress"]) == 0  # without --vary
    plain = json.loads((tmp_path / "c" / "states.json").read_text())["identity"]
    assert "pupil_radius" not in plain
