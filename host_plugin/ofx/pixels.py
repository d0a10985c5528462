"""Pixel conversions for the OpenFX bridge: host bit depths ↔ the shot plate's float colour space.

Why here and not in vq_models: the bridge process may only import host_plugin modules and numpy (hosts'
machines have no OpenImageIO/torch). The sRGB curve is the standard piecewise one (IEC 61966-2-1),
mirrored below 0, the same curve OCIO's "sRGB Encoded Rec.709" applies to the shot's plates.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

DTYPES = {"OfxBitDepthByte": np.uint8, "OfxBitDepthShort": np.uint16, "OfxBitDepthFloat": np.float32}
SCALE = {"OfxBitDepthByte": 255.0, "OfxBitDepthShort": 65535.0, "OfxBitDepthFloat": 1.0}
_LINEAR = {"lin_rec709", "linear", "lin_srgb", "scene_linear", "linear rec.709 (srgb)"}
_SRGB = {"srgb", "srgb_texture", "srgb_rec709", "srgb encoded rec.709 (srgb)"}


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    a = np.abs(v)
    out = np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)
    return (np.sign(v) * out).astype(np.float32)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    a = np.abs(v)
    out = np.where(a <= 0.0031308, a * 12.92, 1.055 * a ** (1.0 / 2.4) - 0.055)
    return (np.sign(v) * out).astype(np.float32)


def canonical(name: str) -> str:
    """``"srgb"`` / ``"linear"`` for the names the shot plates use, else the name itself (lower-case)."""
    low = name.strip().lower()
    return "linear" if low in _LINEAR else "srgb" if low in _SRGB else low


def transfer(source_space: str, depth: str, shot_space: str) -> str:
    """How Source values become the shot plate's values: ``"none"``, ``"decode_srgb"`` or ``"encode_srgb"``.

    ``source_space`` is the ``colorspace`` parameter: ``auto`` means float images are already in the
    shot's space and 8/16-bit images are display sRGB; ``shot`` means the shot's space."""
    if source_space == "auto":
        source_space = shot_space if depth == "OfxBitDepthFloat" else "sRGB"
    if source_space == "shot":
        source_space = shot_space
    src, dst = canonical(source_space), canonical(shot_space)
    if src == dst:
        return "none"
    if (src, dst) == ("srgb", "linear"):
        return "decode_srgb"
    if (src, dst) == ("linear", "srgb"):
        return "encode_srgb"
    raise ValueError(f"colorspace: cannot convert {source_space!r} images to the shot's {shot_space!r} "
                     "(use sRGB, lin_rec709 or shot)")


@lru_cache(maxsize=8)
def _lut(depth: str, mode: str) -> np.ndarray:
    codes = np.arange(int(SCALE[depth]) + 1, dtype=np.float64) / SCALE[depth]
    if mode == "decode_srgb":
        return srgb_to_linear(codes)
    if mode == "encode_srgb":
        return linear_to_srgb(codes)
    return codes.astype(np.float32)


def to_plate(pixels: np.ndarray, depth: str, mode: str) -> np.ndarray:
    """Host pixels (any depth) → float32 in the shot's colour space (colour channels converted, alpha scaled)."""
    if depth == "OfxBitDepthFloat":
        out = np.asarray(pixels, dtype=np.float32)
        if mode == "none":
            return out
        out = out.copy()
        fn = srgb_to_linear if mode == "decode_srgb" else linear_to_srgb
        out[..., :3] = fn(out[..., :3])
        return out
    out = _lut(depth, mode)[pixels[..., :3]]
    if pixels.shape[-1] > 3:
        out = np.concatenate([out, pixels[..., 3:].astype(np.float32) / np.float32(SCALE[depth])], axis=-1)
    return out


def from_plate(rgb: np.ndarray, depth: str, mode: str) -> np.ndarray:
    """Float colour in the shot's space → the host's depth (inverse of :func:`to_plate` for colour)."""
    if mode == "decode_srgb":
        rgb = linear_to_srgb(rgb)
    elif mode == "encode_srgb":
        rgb = srgb_to_linear(rgb)
    if depth == "OfxBitDepthFloat":
        return np.asarray(rgb, dtype=np.float32)
    scale = SCALE[depth]
    return np.clip(np.rint(np.asarray(rgb, np.float64) * scale), 0, scale).astype(DTYPES[depth])


def downscale_premultiplied(rgba: np.ndarray, window: tuple[int, int, int, int], sx: float, sy: float
                            ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A full-resolution premultiplied render over ``window`` (x, y, w, h) → the same render on the grid of a
    host render scale (sx, sy ≤ 1): each scaled pixel is the mean of the full-resolution pixels whose
    centres fall in it (premultiplied, so edges average correctly)."""
    x, y, w, h = window
    xs = np.floor((np.arange(x, x + w) + 0.5) * sx).astype(np.int64)
    ys = np.floor((np.arange(y, y + h) + 0.5) * sy).astype(np.int64)
    x0, y0 = int(xs[0]), int(ys[0])
    ow, oh = int(xs[-1]) - x0 + 1, int(ys[-1]) - y0 + 1
    idx = ((ys - y0)[:, None] * ow + (xs - x0)[None, :]).ravel()
    count = np.bincount(idx, minlength=ow * oh).astype(np.float64)
    flat = np.asarray(rgba, np.float64).reshape(-1, rgba.shape[-1])
    out = np.stack([np.bincount(idx, weights=flat[:, c], minlength=ow * oh) for c in range(flat.shape[1])], -1)
    out /= np.maximum(count, 1.0)[:, None]
    return out.reshape(oh, ow, -1).astype(np.float32), (x0, y0, ow, oh)


def upscale_matte(matte: np.ndarray, window: tuple[int, int, int, int], sx: float, sy: float
                  ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A matte over ``window`` on a render-scale grid → the same matte on the full-resolution plate grid
    (each full-resolution pixel takes the scaled pixel its centre falls in). Scale 1 returns it as is."""
    m = np.ascontiguousarray(matte, dtype=np.float32)
    if abs(sx - 1.0) < 1e-9 and abs(sy - 1.0) < 1e-9:
        return m, window
    x, y, w, h = window
    fx0, fy0 = int(np.floor(x / sx)), int(np.floor(y / sy))
    fx1, fy1 = int(np.ceil((x + w) / sx)), int(np.ceil((y + h) / sy))
    cols = np.floor((np.arange(fx0, fx1) + 0.5) * sx).astype(np.int64) - x
    rows = np.floor((np.arange(fy0, fy1) + 0.5) * sy).astype(np.int64) - y
    cols, rows = np.clip(cols, 0, w - 1), np.clip(rows, 0, h - 1)
    return m[rows[:, None], cols[None, :]], (fx0, fy0, fx1 - fx0, fy1 - fy0)
