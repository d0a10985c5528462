"""Keyframe interpolation: the one definition the edit programs and the host knobs share.

A value keyed as ``[[frame, value], ...]`` is held before the first key and after the last; between
keys ``step`` holds the earlier key, ``linear`` blends, ``smooth`` blends with smoothstep (eases in and
out, so a blink does not start or stop with a jolt). Values are numbers or ``(x, y)`` pairs. Pure Python,
so a host's knob at a frame and the edit program the server applies give the same number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

INTERPOLATIONS = ("step", "linear", "smooth")

Value = Union[float, tuple[float, float]]


def blend(a: Value, b: Value, t: float) -> Value:
    """``a`` + (``b`` - ``a``) ``t`` for numbers and (x, y) pairs."""
    if isinstance(a, tuple):
        return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)  # type: ignore[index]
    return a + (b - a) * t  # type: ignore[operator]


def interpolate(keys: Sequence[tuple[float, Value]], frame: float, interp: str = "linear") -> Value:
    """The value of sorted, non-empty ``keys`` at ``frame`` (see the module docstring)."""
    if interp not in INTERPOLATIONS:
        raise ValueError(f"interpolation {interp!r}: expected one of {', '.join(INTERPOLATIONS)}")
    if frame <= keys[0][0]:
        return keys[0][1]
    if frame >= keys[-1][0]:
        return keys[-1][1]
    for (f0, v0), (f1, v1) in zip(keys[:-1], keys[1:]):
        if f0 <= frame < f1:
            if interp == "step":
                return v0
            t = (frame - f0) / (f1 - f0)
            if interp == "smooth":
                t = t * t * (3.0 - 2.0 * t)
            return blend(v0, v1, t)
    return keys[-1][1]
