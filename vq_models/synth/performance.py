"""The performance: per-frame :class:`FaceState` curves for a talking, blinking, glancing head.

All curves derive from one seed. Talking starts at once and the first blink comes within the first
few frames, so even a 12-frame test shot shows an open mouth and a closed eye. The what-if edits are
declared here as one-field changes of the state.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from vq_models.synth.face_model import FaceState, Identity

FPS = 24.0

#: What-if edits: name -> the state with one thing changed ("left" = the image's left).
WHATIFS: dict[str, Callable[[FaceState], FaceState]] = {
    "eyes_closed": lambda s: dataclasses.replace(s, eye_open=0.0),
    "no_teeth": lambda s: dataclasses.replace(s, teeth=False),
    "gaze_left": lambda s: dataclasses.replace(s, gaze_x=-1.0),
    "mouth_closed": lambda s: dataclasses.replace(s, mouth_open=0.0),
}

_BLINK = np.array([0.35, 0.8, 1.0, 1.0, 0.75, 0.45, 0.2, 0.06])  # eyelid closure over a blink


def _wander(rng: np.random.Generator, t: np.ndarray, lo: float = 0.03, hi: float = 0.35) -> np.ndarray:
    """Smooth zero-mean wander in [-1, 1]: three sinusoids with random rates (Hz) and phases."""
    out = np.zeros_like(t)
    for _ in range(3):
        f, phase = rng.uniform(lo, hi), rng.uniform(0, 2 * math.pi)
        out += np.sin(2 * math.pi * f * t + phase)
    return out / 3.0


def _blinks(rng: np.random.Generator, n: int) -> np.ndarray:
    closure = np.zeros(n)
    start = int(rng.integers(2, 5))
    while start < n:
        seg = _BLINK[: n - start]
        closure[start : start + len(seg)] = np.maximum(closure[start : start + len(seg)], seg)
        start += int(rng.integers(30, 80))
    return closure


def _saccades(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaze holds a target for 12-40 frames, then jumps (over two frames) to a new one."""
    gaze = np.zeros((n, 2))
    prev = cur = np.array([rng.uniform(-0.4, 0.4), rng.uniform(-0.3, 0.3)])
    i = 0
    while i < n:
        hold = int(rng.integers(12, 40))
        for k in range(min(hold, n - i)):
            gaze[i + k] = prev + (cur - prev) * min(1.0, (k + 1) / 2.0)
        i += hold
        prev, cur = cur, np.array([rng.uniform(-0.85, 0.85), rng.uniform(-0.5, 0.5)])
    return gaze[:, 0], gaze[:, 1]


def _talking(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Mouth opening: syllables at ~4-5 Hz under a speech envelope with pauses."""
    n = len(t)
    envelope = np.zeros(n)
    i, speaking = 0, True
    while i < n:
        length = int(rng.integers(30, 90)) if speaking else int(rng.integers(10, 30))
        if speaking:
            envelope[i : i + length] = rng.uniform(0.75, 1.0)
        i += length
        speaking = not speaking
    if n >= 3:  # "same" returns max(n, 3) values: a 1- or 2-frame shot keeps its envelope as drawn
        envelope = np.convolve(envelope, np.ones(3) / 3.0, mode="same")
    rate = rng.uniform(4.0, 5.0)
    phase = np.cumsum(np.full(n, 2 * math.pi * rate / FPS) * (1.0 + 0.25 * _wander(rng, t, 0.2, 0.6)))
    syllable = np.clip(0.5 - 0.5 * np.cos(phase), 0.0, 1.0) ** 0.8
    return np.clip(envelope * (0.25 + 0.85 * syllable), 0.0, 1.0)


def performance(num_frames: int, seed: int = 0, identity: Identity | None = None,
                mouth: np.ndarray | None = None, vary: bool = False) -> list[FaceState]:
    """``num_frames`` consecutive states of one performance (deterministic for ``seed``). ``mouth``: the
    mouth opening per frame in place of the talking curve (a shot with a known mouth: a closed-mouth target
    or an open-mouth driver for expression transfer); everything else is the seed's performance. ``vary``:
    the seed also draws the face's proportions, skin tone and lighting (:meth:`Identity.from_seed`); the
    motion curves are the same either way."""
    if num_frames < 1:
        raise ValueError("num_frames must be at least 1")
    ident = identity or Identity.from_seed(seed, vary=vary)
    rng = np.random.default_rng([int(seed), 31337])
    t = np.arange(num_frames) / FPS
    closure = _blinks(rng, num_frames)
    gx, gy = _saccades(rng, num_frames)
    talking = _talking(rng, t)  # always drawn, so the seed's other curves do not depend on ``mouth``
    if mouth is None:
        mouth = talking
    else:
        mouth = np.asarray(mouth, np.float64).reshape(-1)
        if len(mouth) != num_frames or not np.isfinite(mouth).all():
            raise ValueError(f"mouth: expected {num_frames} finite openings, got {len(mouth)}")
        mouth = np.clip(mouth, 0.0, 1.0)
    curves = {
        "head_x": 0.025 * _wander(rng, t),
        "head_y": 0.015 * _wander(rng, t),
        "head_scale": 1.0 + 0.04 * _wander(rng, t),
        "head_roll": 5.0 * _wander(rng, t),
        "head_yaw": 0.6 * _wander(rng, t),
        "brow_raise": np.clip(0.3 + 0.4 * _wander(rng, t, 0.1, 0.5) + 0.3 * mouth, 0.0, 1.0),
        "mouth_smile": 0.4 * _wander(rng, t, 0.02, 0.1),
        # the shot's key light and exposure (the identity's) drift a little
        "light_angle": ident.light_angle + 0.5 * _wander(rng, t, 0.02, 0.08),
        "light_elevation": ident.light_elevation + 0.15 * _wander(rng, t, 0.02, 0.08),
        "light_strength": ident.light_strength + 0.12 * _wander(rng, t, 0.02, 0.1),
        "exposure": ident.exposure + 0.03 * _wander(rng, t, 0.05, 0.2),
    }
    eye_open = np.clip((1.0 - closure) * (0.97 + 0.03 * _wander(rng, t)), 0.0, 1.0)
    base_noise = int(rng.integers(0, 2**31 - 1))
    states = []
    for i in range(num_frames):
        states.append(
            FaceState(
                identity=ident,
                eye_open=float(eye_open[i]),
                gaze_x=float(gx[i]),
                gaze_y=float(gy[i]),
                mouth_open=float(mouth[i]),
                noise_seed=base_noise + i,
                **{k: float(v[i]) for k, v in curves.items()},
            )
        )
    return states
