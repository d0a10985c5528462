"""Grain where the render's own band stands in for the plate's (a changed region no donor frame could lend to).

The detail pass keeps the plate's band wherever the labels did not change, and takes a donor frame's band where
they did. Where no frame of the shot shows what the edit asks for (teeth removed, a closed mouth, the white a
gazing iris left), the region keeps the render's band, and the render has no grain: at 2K/4K that patch sits
still while the plate's grain dances around it. A compositor would regrain it by hand, matching the plate's
grain to its brightness; this module does the same.

- :func:`measure_grain` reads the plate's grain from its finest band (``plate - G(plate, GRAIN_SPLIT_PX)``) on the
  flattest half of the pixels the edit kept: per channel, a robust sigma (median absolute value) per brightness bin, since film grain
  and sensor noise grow with exposure; and how far it is correlated between neighbouring pixels, since grain is
  a few pixels across on a scanned or debayered plate.
- :func:`synthesize_grain` makes noise with that profile and correlation over a box: seeded by the frame and the
  box's place on the plate, so a frame renders the same every time and the grain changes from frame to frame as a
  plate's does.

A plate without grain (a synthetic shot) measures a sigma of zero and gets nothing added.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: the finest band's split (plate pixels): grain lives below it, image structure mostly above
GRAIN_SPLIT_PX = 1.0
#: brightness bins of the profile (display encoding, 0..1)
BRIGHTNESS_BINS = 8
#: grain below this sigma (display encoding; a twentieth of an 8-bit step) is none: a synthetic or denoised plate
GRAIN_FLOOR = 2e-4
#: the fewest kept pixels a bin needs to say anything (others take their neighbours' sigma)
MIN_BIN_PIXELS = 200
#: the share of kept pixels, the flattest, the grain is read on
FLAT_SHARE = 0.5
#: about how many kept pixels the profile is measured on (a regular subsample of a 4K face's surroundings)
MEASURE_PIXELS = 40_000
#: blurs (plate pixels) tried for the synthetic grain's correlation; the one whose finest band correlates with
#: its neighbour as the plate's does is used
GRAIN_BLURS = (0.0, 0.4, 0.6, 0.8, 1.0, 1.3, 1.7)


def finest_band(image: np.ndarray) -> np.ndarray:
    """``image - G(image, GRAIN_SPLIT_PX)`` for an (H, W[, C]) float32 image."""
    img = np.asarray(image, np.float32)
    return img - cv2.GaussianBlur(img, (0, 0), GRAIN_SPLIT_PX, borderType=cv2.BORDER_REFLECT)


def _neighbour_correlation(band: np.ndarray, mask: np.ndarray) -> float:
    """Correlation of a band with its right-hand neighbour over ``mask`` (both pixels kept), all channels."""
    both = mask[:, :-1] & mask[:, 1:]
    if both.sum() < MIN_BIN_PIXELS:
        return 0.0
    a, b = band[:, :-1][both], band[:, 1:][both]
    return float((a * b).sum() / max(float(np.sqrt((a * a).sum() * (b * b).sum())), 1e-12))


@dataclass(frozen=True)
class GrainProfile:
    """The plate's grain: per brightness bin centre (``brightness``), the sigma of each channel's finest band
    (``sigma``, (bins, C)); and the blur (plate pixels) that gives white noise the plate's neighbour correlation."""

    brightness: np.ndarray
    sigma: np.ndarray
    blur: float

    @property
    def empty(self) -> bool:
        return not np.any(self.sigma > GRAIN_FLOOR)

    def sigma_at(self, brightness: np.ndarray) -> np.ndarray:
        """Per-pixel, per-channel sigma (H, W, C) at ``brightness`` (H, W)."""
        return np.stack([np.interp(brightness, self.brightness, self.sigma[:, c]) for c in range(self.sigma.shape[1])],
                        axis=-1).astype(np.float32)


def _unit_noise_band(shape: tuple[int, ...], blur: float, rng: np.random.Generator) -> np.ndarray:
    """White noise blurred by ``blur``, its finest band taken and scaled to unit sigma (per channel)."""
    noise = rng.standard_normal(shape).astype(np.float32)
    if blur > 0:
        noise = cv2.GaussianBlur(noise, (0, 0), blur, borderType=cv2.BORDER_REFLECT)
    band = finest_band(noise)
    return band / max(float(band.std()), 1e-12)


def _flat(luma: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The ``kept`` pixels with the least structure just above the grain (the band between 1 and 3 pixels):
    lip lines, lashes and pores are in the finest band too, and a profile read on them regrains too strongly."""
    mid = np.abs(cv2.GaussianBlur(luma, (0, 0), GRAIN_SPLIT_PX) - cv2.GaussianBlur(luma, (0, 0), 3 * GRAIN_SPLIT_PX))
    if np.count_nonzero(kept) < MIN_BIN_PIXELS:
        return kept
    return kept & (mid <= np.percentile(mid[kept], 100 * FLAT_SHARE))


def measure_grain(plate: np.ndarray, kept: np.ndarray) -> GrainProfile:
    """The grain of ``plate`` ((H, W, C) display encoding) over the ``kept`` (H, W) bool pixels."""
    full = finest_band(plate)
    luma = plate.mean(axis=2).astype(np.float32)
    kept = _flat(luma, kept)
    step = max(1, int(np.ceil(np.sqrt(np.count_nonzero(kept) / MEASURE_PIXELS))))
    target = _neighbour_correlation(full[::step], kept[::step])  # whole rows: neighbours stay neighbours
    band, kept = full[::step, ::step], kept[::step, ::step]
    channels = plate.shape[2]
    brightness = luma[::step, ::step]
    edges = np.linspace(0.0, 1.0, BRIGHTNESS_BINS + 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    sigma = np.full((BRIGHTNESS_BINS, channels), np.nan)
    for i in range(BRIGHTNESS_BINS):
        inside = kept & (brightness >= edges[i]) & (brightness < edges[i + 1] if i < BRIGHTNESS_BINS - 1 else True)
        if inside.sum() >= MIN_BIN_PIXELS:
            # the median absolute value of a Gaussian is 0.6745 sigma; edges are few, so the median ignores them
            sigma[i] = np.median(np.abs(band[inside]), axis=0) / 0.6745
    known = ~np.isnan(sigma[:, 0])
    if not known.any():
        return GrainProfile(centres, np.zeros((BRIGHTNESS_BINS, channels)), 0.0)
    for c in range(channels):  # bins without pixels take the nearest measured value
        sigma[:, c] = np.interp(centres, centres[known], sigma[known, c])
    probe = np.random.default_rng(0)
    tried = [(abs(_neighbour_correlation(_unit_noise_band((64, 64, 1), b, probe), np.ones((64, 64), bool)) - target), b)
             for b in GRAIN_BLURS]
    return GrainProfile(centres, sigma, float(min(tried)[1]))


def synthesize_grain(profile: GrainProfile, brightness: np.ndarray, frame: int,
                     origin: tuple[int, int]) -> np.ndarray:
    """Grain (H, W, C) for a box whose ``brightness`` (H, W) is given, at ``origin`` (x, y) on the plate."""
    h, w = brightness.shape
    channels = profile.sigma.shape[1]
    if profile.empty:
        return np.zeros((h, w, channels), np.float32)
    rng = np.random.default_rng([int(frame) & 0xFFFFFFFF, int(origin[0]), int(origin[1])])
    return _unit_noise_band((h, w, channels), profile.blur, rng) * profile.sigma_at(brightness)
