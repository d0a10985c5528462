"""Rasterise a :class:`FaceGeometry` into a ground-truth label map and a shaded, textured sRGB frame.

Labels are the part covering each pixel centre (painter's order, clipped parts such as irises are
intersected with the eye opening). Colour is drawn at ``ss`` x supersampling from the same polygons and
area-averaged down, so edges are antialiased while labels stay crisp. Appearance is deliberately not a
lookup of the label: skin shading and pore/blotch texture, lips close in hue to skin, shadows in the
mouth, eye whites darkening to the corners, a specular glint over iris and pupil, hair strands, a
textured background, lighting drift and sensor noise — so a renderer has to learn structure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from vq_models.synth.face_model import PART_ID, FaceGeometry, FaceState, Identity, face_geometry

_SHIFT = 4  # cv2 sub-pixel bits: polygons are placed to 1/16 pixel
P = PART_ID
HEAD_LABELS = (P["hair"], P["skin"], P["brows"], P["eyelids"], P["nose"], P["upper_lip"], P["lower_lip"])


def _to_grid(points: np.ndarray, ss: int) -> np.ndarray:
    """Plate pixels (centre of the top-left pixel at 0) -> fixed-point coordinates on the ss-grid."""
    g = (np.asarray(points, dtype=np.float64) + 0.5) * ss - 0.5
    return np.round(g * (1 << _SHIFT)).astype(np.int32)


def _fill(labels: np.ndarray, poly: np.ndarray, value: int, ss: int) -> None:
    cv2.fillPoly(labels, [_to_grid(poly, ss)], int(value), lineType=cv2.LINE_8, shift=_SHIFT)


def _fill_clipped(labels: np.ndarray, poly: np.ndarray, clip: np.ndarray, value: int, ss: int) -> None:
    """Set ``value`` where ``poly`` and ``clip`` overlap, working only inside the clip polygon's box."""
    grid = (np.asarray(clip, dtype=np.float64) + 0.5) * ss - 0.5
    h, w = labels.shape
    x0, y0 = max(int(math.floor(grid[:, 0].min())) - 1, 0), max(int(math.floor(grid[:, 1].min())) - 1, 0)
    x1, y1 = min(int(math.ceil(grid[:, 0].max())) + 2, w), min(int(math.ceil(grid[:, 1].max())) + 2, h)
    if x1 <= x0 or y1 <= y0:
        return
    offset = np.array([x0, y0], dtype=np.float64) / ss
    a = np.zeros((y1 - y0, x1 - x0), np.uint8)
    b = np.zeros_like(a)
    cv2.fillPoly(a, [_to_grid(clip - offset, ss)], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    cv2.fillPoly(b, [_to_grid(poly - offset, ss)], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    window = labels[y0:y1, x0:x1]
    window[(a & b).astype(bool)] = value


def rasterize_labels(geom: FaceGeometry, ss: int = 1) -> np.ndarray:
    """uint8 part ids, (H*ss, W*ss): the part covering each (sub-)pixel centre."""
    w, h = geom.size
    lab = np.zeros((h * ss, w * ss), np.uint8)
    px = geom.to_plate
    _fill(lab, px(geom.hair_back), P["hair"], ss)
    _fill(lab, px(geom.neck), P["skin"], ss)
    for ear in geom.ears:
        _fill(lab, px(ear), P["skin"], ss)
    _fill(lab, px(geom.face_oval), P["skin"], ss)
    _fill(lab, px(geom.hair_cap), P["hair"], ss)
    for brow in geom.brows:
        _fill(lab, px(brow), P["brows"], ss)
    for eye in geom.eyes:
        _fill(lab, px(eye.socket), P["eyelids"], ss)
        if eye.opening is not None:
            opening = px(eye.opening)
            _fill(lab, opening, P["eye_whites"], ss)
            _fill_clipped(lab, px(eye.iris), opening, P["irises"], ss)
            _fill_clipped(lab, px(eye.pupil), opening, P["pupils"], ss)
    _fill(lab, px(geom.nose), P["nose"], ss)
    mouth = geom.mouth
    _fill(lab, px(mouth.outer), P["lower_lip"], ss)
    _fill(lab, px(mouth.upper_lip), P["upper_lip"], ss)
    if mouth.interior is not None:
        interior = px(mouth.interior)
        _fill(lab, interior, P["mouth_interior"], ss)
        _fill_clipped(lab, px(mouth.tongue), interior, P["tongue"], ss)
        if geom.state.teeth:
            _fill_clipped(lab, px(mouth.upper_teeth), interior, P["upper_teeth"], ss)
            _fill_clipped(lab, px(mouth.lower_teeth), interior, P["lower_teeth"], ss)
    return lab


# --- appearance --------------------------------------------------------------------------------------


def _noise(
    rng: np.random.Generator, shape: tuple[int, int], sigma: float, aniso: tuple[float, float] = (1, 1)
) -> np.ndarray:
    """Unit-variance smooth noise (Gaussian-blurred white noise; anisotropic for hair strands)."""
    n = rng.standard_normal(shape).astype(np.float32)
    n = cv2.GaussianBlur(
        n, (0, 0), sigmaX=sigma * aniso[0], sigmaY=sigma * aniso[1], borderType=cv2.BORDER_REFLECT
    )
    return (n - n.mean()) / (n.std() + 1e-8)


# texture space covers canonical u in [-2.2, 2.2], v in [-2.2, 4.2]
_TEX_U0, _TEX_V0, _TEX_W, _TEX_H = -2.2, -2.2, 4.4, 6.4


@dataclass
class _Assets:
    """Per-identity, per-size assets: canonical-space textures and the static background."""

    tex: np.ndarray  # (Th, Tw, 3) float32: pores, blotches, hair strands
    texels_per_unit: float
    background: np.ndarray  # (H*ss, W*ss, 3) float32 sRGB
    albedo: np.ndarray  # (15, 3) float32
    amp: np.ndarray  # (15, 3) float32 texture amplitude per label and texture channel


@lru_cache(maxsize=8)
def _assets(identity: Identity, size: tuple[int, int], ss: int) -> _Assets:
    rng = np.random.default_rng([identity.texture_seed, size[0], size[1], ss])
    w, h = size
    tpu = float(np.clip(0.215 * min(w, h) * ss, 32, 400))
    tw, th = int(_TEX_W * tpu), int(_TEX_H * tpu)
    pores = _noise(rng, (th, tw), 0.012 * tpu)
    blotch = _noise(rng, (th, tw), 0.09 * tpu)
    strands = _noise(rng, (th, tw), 0.01 * tpu, aniso=(0.6, 9.0))
    tex = np.ascontiguousarray(np.stack([pores, blotch, strands], -1))
    # background: soft colour blotches, two soft vertical panels and fine grain, static in the plate
    hh, ww = h * ss, w * ss
    base = np.asarray(identity.background, np.float32)
    big = np.stack([_noise(rng, (hh, ww), 0.12 * min(hh, ww)) for _ in range(3)], -1)
    xs = np.linspace(0.0, 1.0, ww, dtype=np.float32)
    panels = 0.10 * np.tanh(12.0 * np.sin(2.0 * math.pi * (xs * 1.7 + rng.uniform())))[None, :, None]
    vert = np.linspace(0.12, -0.10, hh, dtype=np.float32)[:, None, None]
    grain = _noise(rng, (hh, ww), 0.8 * ss)[..., None]
    background = base * (1.0 + 0.12 * big + panels + vert) + 0.02 * grain
    albedo = np.zeros((15, 3), np.float32)
    skin = np.asarray(identity.skin)
    albedo[P["hair"]] = identity.hair
    albedo[P["skin"]] = skin
    albedo[P["brows"]] = identity.brows
    albedo[P["eyelids"]] = skin * np.array([0.96, 0.92, 0.92])
    albedo[P["eye_whites"]] = (0.93, 0.90, 0.88)
    albedo[P["irises"]] = identity.iris
    albedo[P["pupils"]] = (0.035, 0.03, 0.03)
    albedo[P["nose"]] = skin * np.array([1.0, 0.97, 0.96])
    albedo[P["upper_lip"]] = identity.lips
    albedo[P["lower_lip"]] = np.asarray(identity.lips) * 1.03
    albedo[P["mouth_interior"]] = (0.34, 0.09, 0.10)
    albedo[P["upper_teeth"]] = (0.93, 0.90, 0.82)
    albedo[P["lower_teeth"]] = (0.86, 0.83, 0.75)
    albedo[P["tongue"]] = np.asarray(identity.lips) * np.array([0.95, 0.75, 0.80])
    amp = np.zeros((15, 3), np.float32)
    for name in ("skin", "eyelids", "nose"):
        amp[P[name]] = (0.035, 0.06, 0.0)
    for name in ("upper_lip", "lower_lip", "tongue"):
        amp[P[name]] = (0.05, 0.04, 0.0)
    amp[P["hair"]] = (0.0, 0.08, 0.30)
    amp[P["brows"]] = (0.0, 0.05, 0.25)
    amp[P["eye_whites"]] = (0.02, 0.03, 0.0)
    amp[P["irises"]] = (0.12, 0.0, 0.0)
    amp[P["mouth_interior"]] = (0.05, 0.1, 0.0)
    amp[P["upper_teeth"]] = amp[P["lower_teeth"]] = (0.02, 0.03, 0.0)
    return _Assets(tex, tpu, np.clip(background, 0.0, 1.0).astype(np.float32), albedo, amp)


Box = tuple[int, int, int, int]  # y0, y1, x0, x1 on the ss-grid


def _canonical_grid(geom: FaceGeometry, ss: int, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Canonical (u, v) of every ss-grid sample centre inside ``box`` (float32 each)."""
    y0, y1, x0, x1 = box
    xs = (np.arange(x0, x1, dtype=np.float32) + 0.5) / ss - 0.5 - np.float32(geom.centre[0])
    ys = (np.arange(y0, y1, dtype=np.float32) + 0.5) / ss - 0.5 - np.float32(geom.centre[1])
    r = (geom.rotation / geom.scale).astype(np.float32)
    # canonical = R^T (p - c) / scale
    u = xs[None, :] * r[0, 0] + ys[:, None] * r[1, 0]
    v = xs[None, :] * r[0, 1] + ys[:, None] * r[1, 1]
    return u, v


def feature_box(geom: FaceGeometry, poly: np.ndarray, ss: int, pad: int = 2) -> Box:
    """The ss-grid box around a canonical polygon (clipped to the frame; may be empty)."""
    g = (geom.to_plate(poly) + 0.5) * ss - 0.5
    w, h = geom.size[0] * ss, geom.size[1] * ss
    x0, y0 = max(int(g[:, 0].min()) - pad, 0), max(int(g[:, 1].min()) - pad, 0)
    x1, y1 = min(int(g[:, 0].max()) + pad + 1, w), min(int(g[:, 1].max()) + pad + 1, h)
    return (y0, max(y1, y0), x0, max(x1, x0))


def _window(geom: FaceGeometry, poly: np.ndarray, ss: int, box: Box) -> tuple[slice, slice] | None:
    """Slices, local to ``box``, around a canonical polygon: local effects are computed there only."""
    fy0, fy1, fx0, fx1 = feature_box(geom, poly, ss)
    y0, y1, x0, x1 = max(fy0, box[0]), min(fy1, box[1]), max(fx0, box[2]), min(fx1, box[3])
    if x1 <= x0 or y1 <= y0:
        return None
    return slice(y0 - box[0], y1 - box[0]), slice(x0 - box[2], x1 - box[2])


def _smoothstep(a: float, b: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - a) / (b - a), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def shade(geom: FaceGeometry, labels_ss: np.ndarray, ss: int, box: Box | None = None) -> np.ndarray:
    """Display sRGB float32 (before noise) for the supersampled ``labels_ss`` inside ``box`` (default:
    the whole frame). Every pixel depends only on its own label, position and the state, so shading a
    box gives exactly the pixels a full-frame call would — what-if frames re-shade only what changed."""
    state = geom.state
    assets = _assets(state.identity, geom.size, ss)
    if box is None:
        # outside the head's box there is only background: shade the head box, copy the rest
        outline = np.concatenate([geom.hair_back, geom.hair_cap, geom.neck, geom.face_oval, *geom.ears])
        head = feature_box(geom, outline, ss)
        col = np.clip(assets.background * np.float32(state.exposure), 0.0, 1.0)
        if head[1] > head[0] and head[3] > head[2]:
            col[head[0] : head[1], head[2] : head[3]] = shade(geom, labels_ss, ss, head)
        return col
    u, v = _canonical_grid(geom, ss, box)
    lab = labels_ss[box[0] : box[1], box[2] : box[3]]
    tpu = assets.texels_per_unit
    tex = cv2.remap(
        assets.tex, (u - _TEX_U0) * tpu, (v - _TEX_V0) * tpu, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    amp = assets.amp[lab]
    mod = 1.0 + (amp * tex).sum(-1)
    col = assets.albedo[lab] * mod[..., None]

    # head lighting: an ellipsoid normal plus local bumps for the nose and lips
    nx = u / 1.15
    ny = (v + 0.15) / 1.55
    nose_m = lab == P["nose"]
    nx = np.where(nose_m, nx + np.clip((u - geom.nose_tip[0]) / 0.12, -1.0, 1.0) * 0.7, nx)
    ny = np.where(lab == P["lower_lip"], ny + 0.35, np.where(lab == P["upper_lip"], ny - 0.35, ny))
    nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.04, 1.0))
    inv = 1.0 / np.sqrt(nx * nx + ny * ny + nz * nz)
    el, az = state.light_elevation, state.light_angle
    light = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)], np.float32)
    ndl = np.clip((nx * light[0] + ny * light[1] + nz * light[2]) * inv, 0.0, 1.0)
    half = light + np.array([0.0, 0.0, 1.0], np.float32)
    half /= np.linalg.norm(half)
    ndh = np.clip((nx * half[0] + ny * half[1] + nz * half[2]) * inv, 0.0, 1.0)
    diffuse = state.identity.ambient + 0.68 * state.light_strength * ndl
    # the chin shades the neck
    diffuse = diffuse * np.where(lab == P["skin"], 1.0 - 0.35 * _smoothstep(1.0, 1.45, v), 1.0)
    shiny = np.select(
        [lab == P["upper_lip"], lab == P["lower_lip"], lab == P["hair"]], [0.22, 0.22, 0.10], 0.06
    )
    spec = shiny * state.light_strength * ndh**24
    head = np.isin(lab, HEAD_LABELS)
    col = np.where(head[..., None], col * diffuse[..., None] + spec[..., None], col)
    # nostrils: dark, colour only (the label stays "nose")
    for nostril in geom.nostrils:
        win = _window(geom, nostril, ss, box)
        if win is None:
            continue
        c, r = nostril.mean(0), np.ptp(nostril, 0) / 2
        uu, vv, cc = u[win], v[win], col[win]
        d = ((uu - c[0]) / r[0]) ** 2 + ((vv - c[1]) / r[1]) ** 2
        cc[:] = np.where((nose_m[win] & (d < 1.0))[..., None], cc * (0.35 + 0.4 * d[..., None]), cc)

    # eyes: whites darken to the corners and under the upper lid; iris ring, streaks, pupil, glint
    for eye in geom.eyes:
        win = _window(geom, eye.socket, ss, box)
        if win is None:
            continue
        uu, vv, ll, cc = u[win], v[win], lab[win], col[win]
        s = (uu - eye.centre[0]) / eye.half_width
        white = ll == P["eye_whites"]
        f = (1.0 - 0.38 * np.clip(s * s, 0.0, 1.0)) * (
            1.0 - 0.25 * _smoothstep(0.0, 0.12, eye.centre[1] - vv + 0.04)
        )
        cc[:] = np.where(white[..., None], cc * f[..., None], cc)
        du, dv = uu - eye.iris_centre[0], vv - eye.iris_centre[1]
        d = np.sqrt(du * du + dv * dv) / eye.iris_radius
        iris = ll == P["irises"]
        streak = 0.82 + 0.25 * np.sin(11.0 * np.arctan2(dv, du) + 4.0 * d)
        ring = 1.0 - 0.6 * _smoothstep(0.72, 1.0, d)
        cc[:] = np.where(iris[..., None], cc * (streak * ring)[..., None], cc)
        gx = eye.iris_centre[0] + 0.35 * eye.iris_radius * math.cos(az)
        gy = eye.iris_centre[1] + 0.35 * eye.iris_radius * math.sin(az) - 0.2 * eye.iris_radius
        g = np.sqrt((uu - gx) ** 2 + (vv - gy) ** 2) / (0.28 * eye.iris_radius)
        glint = (1.0 - _smoothstep(0.6, 1.0, g)) * (iris | (ll == P["pupils"]))
        cc += (0.95 - cc) * glint[..., None] * 0.9

    # mouth: interior darkens towards the back and under the upper lip; teeth gaps and lip shadow
    mouth = geom.mouth
    win = _window(geom, mouth.outer, ss, box)
    if win is not None:
        uu, vv, ll, cc = u[win], v[win], lab[win], col[win]
        sm = (uu - mouth.centre[0]) / mouth.half_width
        depth = 0.4 + 0.6 * _smoothstep(0.0, 0.20, vv - mouth.centre[1] + 0.02) * (
            1.0 - 0.6 * np.clip(sm * sm, 0.0, 1.0)
        )
        inside = np.isin(ll, (P["mouth_interior"], P["tongue"]))
        cc[:] = np.where(inside[..., None], cc * depth[..., None], cc)
        teeth = np.isin(ll, (P["upper_teeth"], P["lower_teeth"]))
        gap = np.abs(np.sin(math.pi * (uu - mouth.centre[0]) / 0.085)) ** 0.35
        lip_shadow = 0.65 + 0.35 * _smoothstep(0.0, 0.05, vv - mouth.centre[1] + 0.02)
        tf = (0.55 + 0.45 * gap) * np.where(ll == P["upper_teeth"], lip_shadow, 0.9)
        cc[:] = np.where(teeth[..., None], cc * tf[..., None], cc)

    background = assets.background[box[0] : box[1], box[2] : box[3]]
    col = np.where((lab == P["background"])[..., None], background, col)
    return np.clip(col * np.float32(state.exposure), 0.0, 1.0).astype(np.float32)


@dataclass
class SynthFrame:
    """One rendered frame: display sRGB float32 (H, W, 3) in [0, 1], uint8 labels (H, W), geometry.

    ``rgb_ss`` / ``labels_ss`` (supersampled, before noise) are kept so what-if frames can reuse them.
    """

    rgb: np.ndarray
    labels: np.ndarray
    geometry: FaceGeometry
    rgb_ss: np.ndarray
    labels_ss: np.ndarray
    ss: int


#: Fields whose effect is confined to the eyes, brows and mouth: a what-if that changes only these is
#: re-shaded inside a box around what changed; anything else (pose, light, identity) redraws everything.
LOCAL_FIELDS = frozenset({"eye_open", "gaze_x", "gaze_y", "brow_raise", "mouth_open", "mouth_smile", "teeth"})


def _finish(
    state: FaceState, geom: FaceGeometry, rgb_ss: np.ndarray, labels_ss: np.ndarray, ss: int
) -> SynthFrame:
    """Downsample (area average = antialiasing), add the state's sensor noise, rasterise 1x labels."""
    w, h = geom.size
    rgb = cv2.resize(rgb_ss, (w, h), interpolation=cv2.INTER_AREA) if ss > 1 else rgb_ss.copy()
    if state.noise_sigma > 0:
        rng = np.random.default_rng([int(state.noise_seed), 104729])
        rgb = rgb + rng.standard_normal(rgb.shape, dtype=np.float32) * np.float32(state.noise_sigma)
    labels = rasterize_labels(geom, 1)
    return SynthFrame(np.clip(rgb, 0.0, 1.0).astype(np.float32), labels, geom, rgb_ss, labels_ss, ss)


def render(state: FaceState, size: tuple[int, int] | int, ss: int = 2) -> SynthFrame:
    """Draw ``state`` at ``size`` (an int for a square plate). Deterministic: same state, same pixels."""
    if isinstance(size, int):
        size = (size, size)
    geom = face_geometry(state, size)
    labels_ss = rasterize_labels(geom, ss)
    return _finish(state, geom, shade(geom, labels_ss, ss), labels_ss, ss)


def _union(a: Box | None, b: Box) -> Box | None:
    if b[1] <= b[0] or b[3] <= b[2]:
        return a
    if a is None:
        return b
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def render_whatif(base: SynthFrame, state: FaceState) -> SynthFrame:
    """Render ``state`` — ``base``'s state with local fields changed — re-shading only a box around the
    change. The result is pixel-identical to ``render(state, ...)`` (tested), only faster."""
    old = base.geometry.state
    changed = {f for f in old.__dataclass_fields__ if getattr(old, f) != getattr(state, f)}
    ss = base.ss
    if not changed <= LOCAL_FIELDS:
        return render(state, base.geometry.size, ss)
    geom = face_geometry(state, base.geometry.size)
    labels_ss = rasterize_labels(geom, ss)
    box: Box | None = None
    diff = np.nonzero(labels_ss != base.labels_ss)
    if len(diff[0]):
        box = (int(diff[0].min()), int(diff[0].max()) + 1, int(diff[1].min()), int(diff[1].max()) + 1)
    for g in (base.geometry, geom):
        for eye in g.eyes:
            box = _union(box, feature_box(g, eye.socket, ss))
        box = _union(box, feature_box(g, g.mouth.outer, ss))
    rgb_ss = base.rgb_ss.copy()
    if box is not None:
        rgb_ss[box[0] : box[1], box[2] : box[3]] = shade(geom, labels_ss, ss, box)
    return _finish(state, geom, rgb_ss, labels_ss, ss)
