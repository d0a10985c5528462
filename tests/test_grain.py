"""The plate's grain measured and matched where the render's own band stands in for the plate's."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vq_models.grain import GrainProfile, finest_band, measure_grain, synthesize_grain


def _grainy_plate(size: int = 160, strength: float = 0.03, blur: float = 0.6, seed: int = 0) -> np.ndarray:
    """A left-to-right brightness ramp with grain that grows with brightness (as film's does)."""
    ramp = np.linspace(0.15, 0.85, size, dtype=np.float32)[None, :, None] * np.ones((size, 1, 3), np.float32)
    noise = np.random.default_rng(seed).standard_normal((size, size, 3)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), blur)
    noise /= noise.std()
    return ramp * (1.0 + strength * noise)


def _mad_sigma(values: np.ndarray) -> float:
    return float(np.median(np.abs(values)) / 0.6745)


def test_the_profile_follows_the_grain_with_brightness():
    plate = _grainy_plate()
    profile = measure_grain(plate, np.ones(plate.shape[:2], bool))
    band = finest_band(plate)
    for lo, hi in ((0.2, 0.3), (0.7, 0.8)):
        cols = (plate[0, :, 0] >= lo) & (plate[0, :, 0] < hi)
        assert profile.sigma_at(np.full((1, 1), (lo + hi) / 2))[0, 0, 0] == pytest.approx(
            _mad_sigma(band[:, cols, 0]), rel=0.2)
    bright, dark = profile.sigma_at(np.array([[0.75, 0.25]]))[0, :, 0]
    assert bright > 2.0 * dark
    assert profile.blur in (0.4, 0.6, 0.8)  # the plate's grain is a little more than a pixel across


def test_synthetic_grain_matches_the_plates_and_changes_with_the_frame():
    plate = _grainy_plate()
    profile = measure_grain(plate, np.ones(plate.shape[:2], bool))
    brightness = plate.mean(axis=2)
    grain = synthesize_grain(profile, brightness, frame=1001, origin=(40, 8))
    cols = slice(100, 140)
    assert _mad_sigma(finest_band(grain)[:, cols]) == pytest.approx(_mad_sigma(finest_band(plate)[:, cols]), rel=0.25)
    again = synthesize_grain(profile, brightness, frame=1001, origin=(40, 8))
    np.testing.assert_array_equal(grain, again)  # a frame renders the same every time
    other = synthesize_grain(profile, brightness, frame=1002, origin=(40, 8))
    assert abs(np.corrcoef(grain.ravel(), other.ravel())[0, 1]) < 0.05  # and the grain moves from frame to frame


def test_a_plate_without_grain_gets_none():
    smooth = _grainy_plate(strength=0.0)
    profile = measure_grain(smooth, np.ones(smooth.shape[:2], bool))
    assert profile.empty
    assert not synthesize_grain(profile, smooth.mean(axis=2), 1, (0, 0)).any()


def test_the_profile_is_read_only_where_the_edit_kept_the_plate():
    plate = _grainy_plate()
    kept = np.ones(plate.shape[:2], bool)
    kept[:, 60:] = False
    plate[:, 60:] = 0.5  # what the edit removed: flat, no grain; it must not lower the profile
    profile = measure_grain(plate, kept)
    assert isinstance(profile, GrainProfile) and not profile.empty
    assert profile.sigma_at(np.array([[0.5]]))[0, 0, 0] > 0.5 * _mad_sigma(finest_band(_grainy_plate())[:, 55:60, 0])
