"""Artist priors: named segments made of Stage I codebook indices (paper Sec. 4.3, Fig. 1, 4, 9).

Stage I discovers ``K`` unsupervised classes; an artist prior groups code indices into segments with
names people can reason about (``pupils``, ``upper_teeth`` ...). Edits address segments by name, so the
same edit program works on every shot once its prior is defined. ``SHOT/prior.json``::

    {"version": 1, "num_codes": 128, "segments": {"pupils": [12], "eye_whites": [3, 40]}}

Priors are hand-edited, so :func:`validate_prior` checks everything and reports the JSON path of the
first problem. :func:`propose_prior` drafts one automatically from label maps, images and tracked
regions, for the artist to correct rather than to write from scratch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vq_models.edits.geometry import rasterize_polygon
from vq_models.errors import InputError
from vq_models.io.atomic import atomic_write_json
from vq_models.io.colour import luma as rec709_luma
from vq_models.io.jsonfile import read_json
from vq_models.parts import FACE_PARTS

PRIOR_VERSION = 1

#: The share of a shot's teeth-to-cavity brightness contrast its redness contrast must reach for
#: :func:`propose_prior` to split mouth codes by redness; below it, by chromaticity.
REDNESS_TRUST = 0.2

#: Segment names the high-level edit operations understand (others are allowed for low-level edits).
STANDARD_SEGMENTS: tuple[str, ...] = (
    ("skin", "hair") + tuple(p for p in FACE_PARTS if p not in ("background", "hair", "skin")) + ("background",)
)  # proposal order: skin first, background last

#: Tracking regions used by the auto proposal (closed contours, rasterised at label size).
REGION_NAMES: tuple[str, ...] = (
    "face_oval",
    "left_eye",
    "right_eye",
    "left_iris",
    "right_iris",
    "left_brow",
    "right_brow",
    "nose",
    "lips_outer",
    "lips_inner",
)

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class Prior:
    """Named segments → code lists. Insertion order of ``segments`` and of each list is meaningful: it is
    the fallback order when an edit must pick one code to paint a segment with."""

    num_codes: int
    segments: dict[str, list[int]] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name in self.segments

    def codes(self, name: str) -> list[int]:
        """Codes of a segment; a missing segment is the user's problem (their prior lacks it)."""
        if name not in self.segments:
            known = ", ".join(self.segments) or "none"
            raise InputError(f"prior: segment {name!r} is not defined in the prior (defined: {known})")
        return list(self.segments[name])

    def codes_of(self, names: Sequence[str], required: bool = False) -> list[int]:
        """Union of the codes of several segments; absent segments are skipped unless ``required``."""
        out: list[int] = []
        for name in names:
            if required or self.has(name):
                out.extend(self.codes(name))
        return out

    def mask(self, labels: np.ndarray, names: str | Sequence[str], required: bool = True) -> np.ndarray:
        """Boolean mask of the pixels whose code belongs to the named segment(s)."""
        names = [names] if isinstance(names, str) else list(names)
        return np.isin(labels, self.codes_of(names, required=required))

    def segment_of(self, code: int) -> str | None:
        for name, codes in self.segments.items():
            if code in codes:
                return name
        return None

    def part_table(self, leave_out: Sequence[str] = ()) -> np.ndarray:
        """code → index of its segment (in ``segments`` order), -1 for codes no segment lists and for those of
        the segments in ``leave_out``: one lookup (``table[labels]``) gives every pixel's part."""
        table = np.full(max(int(self.num_codes), 256), -1, np.int32)  # any uint8 label indexes it
        for i, (name, codes) in enumerate(self.segments.items()):
            if name not in leave_out:
                table[[c for c in codes if 0 <= c < len(table)]] = i
        return table

    def to_json(self) -> dict[str, Any]:
        return {"version": PRIOR_VERSION, "num_codes": int(self.num_codes), "segments": {
            k: [int(c) for c in v] for k, v in self.segments.items()}}


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def validate_prior(obj: Any, where: str = "prior", num_codes: int | None = None) -> Prior:
    """Check a parsed prior.json and build a :class:`Prior`; errors name the JSON path of the problem.

    The one parser of prior.json, for edits, the render server and Stage II training. ``num_codes``: the
    shot's K when the caller knows it; a file without its own ``num_codes`` is then read against it."""
    if isinstance(obj, Mapping) and num_codes is not None and "num_codes" not in obj:
        obj = {**obj, "num_codes": int(num_codes)}
    if not isinstance(obj, Mapping):
        raise InputError(f"{where}: top level must be an object with version, num_codes, segments")
    for key in obj:
        if key not in ("version", "num_codes", "segments"):
            raise InputError(f"{where}: {key}: unknown field (expected version, num_codes, segments)")
    if obj.get("version") != PRIOR_VERSION:
        raise InputError(f"{where}: version: expected {PRIOR_VERSION}, got {obj.get('version')!r}")
    num_codes = obj.get("num_codes")
    if not _is_int(num_codes) or not 1 <= int(num_codes) <= 256:
        raise InputError(f"{where}: num_codes: expected an integer in 1..256 (label maps are uint8), got {num_codes!r}")
    segments = obj.get("segments")
    if not isinstance(segments, Mapping):
        raise InputError(f"{where}: segments: expected an object mapping segment names to lists of codes")
    owner: dict[int, str] = {}
    out: dict[str, list[int]] = {}
    for name, codes in segments.items():
        path = f"segments[{json.dumps(name)}]" if isinstance(name, str) else f"segments[{name!r}]"
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise InputError(f"{where}: {path}: segment names are lower-case words (a-z, 0-9, _)")
        if not isinstance(codes, list):
            raise InputError(f"{where}: {path}: expected a list of codes")
        if not codes:
            raise InputError(f"{where}: {path}: empty segment (list at least one code or remove it)")
        for i, code in enumerate(codes):
            if not _is_int(code):
                raise InputError(f"{where}: {path}[{i}]: expected an integer code, got {code!r}")
            if not 0 <= int(code) < int(num_codes):
                raise InputError(f"{where}: {path}[{i}]: unknown code {code} (codes are 0..{int(num_codes) - 1})")
            if int(code) in owner:
                other = owner[int(code)]
                detail = "listed twice" if other == name else f"already in segment {other!r}"
                raise InputError(f"{where}: {path}[{i}]: code {code} is {detail}; a code belongs to one segment")
            owner[int(code)] = name
        out[name] = [int(c) for c in codes]
    return Prior(num_codes=int(num_codes), segments=out)


def load_prior(path: str | Path, num_codes: int | None = None) -> Prior:
    """Read and validate a prior.json file (``num_codes`` as in :func:`validate_prior`)."""
    path = Path(path)
    obj = read_json(path, "prior not found (create one with `vqedit prior SHOT --auto`)")
    return validate_prior(obj, where=str(path), num_codes=num_codes)


def save_prior(prior: Prior, path: str | Path) -> None:
    """Validate (so a bad prior never reaches disk) and write atomically."""
    validate_prior(prior.to_json())
    atomic_write_json(path, prior.to_json())


# --- automatic proposal -------------------------------------------------------------------------------


@dataclass
class _CodeStats:
    """Per-code sums gathered over every frame (blinks and closed mouths simply contribute nothing)."""

    num_codes: int

    def __post_init__(self) -> None:
        k = self.num_codes
        self.count = np.zeros(k)
        self.region = {name: np.zeros(k) for name in ("face", "eye", "above_eye", "brow", "nose", "lips", "mouth")}
        self.rgb = np.zeros((k, 3))
        self.rel_y = np.zeros(k)  # sum of (y - mouth centre y) for pixels inside the mouth/lips area
        self.rel_n = np.zeros(k)

    def add(self, labels: np.ndarray, image: np.ndarray, regions: Mapping[str, np.ndarray]) -> None:
        k = self.num_codes
        flat = labels.reshape(-1).astype(np.int64)
        self.count += np.bincount(flat, minlength=k)[:k]
        for c in range(3):
            self.rgb[:, c] += np.bincount(flat, weights=image[..., c].reshape(-1), minlength=k)[:k]
        empty = np.zeros(labels.shape, bool)

        def get(name: str) -> np.ndarray:
            m = regions.get(name)
            return empty if m is None else np.asarray(m, bool)

        eye = get("left_eye") | get("right_eye")
        brow = get("left_brow") | get("right_brow")
        above = np.zeros_like(eye)
        ys = np.nonzero(eye.any(axis=1))[0]
        if ys.size:
            h = max(2, int(ys[-1] - ys[0] + 1))
            for d in range(1, h + 1):  # a band one eye-height tall above each eye: where the upper lid lives
                above[:-d] |= eye[d:]
            above &= ~eye & ~brow
        inner = get("lips_inner")
        outer = get("lips_outer")
        parts = {"face": get("face_oval") | eye | brow, "eye": eye, "above_eye": above, "brow": brow,
                 "nose": get("nose") & ~eye, "lips": outer & ~inner, "mouth": inner}
        for name, m in parts.items():
            self.region[name] += np.bincount(flat[m.reshape(-1)], minlength=k)[:k]
        mouth_area = outer | inner
        if mouth_area.any():
            yy = np.nonzero(mouth_area.any(axis=1))[0]
            centre = (yy[0] + yy[-1]) / 2.0 if not inner.any() else float(np.nonzero(inner)[0].mean())
            rows = np.broadcast_to(np.arange(labels.shape[0])[:, None], labels.shape)
            sel = mouth_area.reshape(-1)
            self.rel_y += np.bincount(flat[sel], weights=(rows.reshape(-1)[sel] - centre), minlength=k)[:k]
            self.rel_n += np.bincount(flat[sel], minlength=k)[:k]


def propose_prior(
    label_maps: Sequence[np.ndarray],
    images: Sequence[np.ndarray],
    region_masks: Sequence[Mapping[str, np.ndarray]],
    num_codes: int,
    majority: float = 0.5,
) -> Prior:
    """Draft an artist prior from statistics over all frames.

    Each code goes to the tracked region holding most of its pixels (eyes, brows, nose, lips, mouth
    interior, the band above the eyes for eyelids, the rest of the face oval for skin, outside for
    background). Within the eyes and the mouth, appearance splits codes: the darkest eye code is the pupil,
    bright eye codes are eye whites, the rest irises; bright mouth codes are teeth (upper or lower by their
    side of the mouth centre), red ones tongue, the rest mouth interior. Lip codes split into upper and
    lower the same way. Statistics are summed over frames, so codes that only appear while eyes are open
    (or the mouth is) are still found. ``majority`` is the share of a code's pixels a region must hold.
    """
    if not (len(label_maps) == len(images) == len(region_masks)) or not label_maps:
        raise InputError("propose_prior: need the same non-zero number of label maps, images and region masks")
    stats = _CodeStats(int(num_codes))
    for i, (labels, image, regions) in enumerate(zip(label_maps, images, region_masks, strict=True)):
        labels = np.asarray(labels)
        image = np.asarray(image, dtype=np.float32)
        if image.shape[:2] != labels.shape:
            raise InputError(f"propose_prior: frame {i}: image {image.shape[:2]} and labels {labels.shape} differ in size")
        if labels.size and int(labels.max()) >= num_codes:
            raise InputError(f"propose_prior: frame {i}: label {int(labels.max())} >= num_codes {num_codes}")
        stats.add(labels, image[..., :3], regions)

    seen = np.nonzero(stats.count > 0)[0]
    n = np.maximum(stats.count, 1)
    mean_rgb = stats.rgb / n[:, None]
    luma = rec709_luma(mean_rgb)
    frac = {name: stats.region[name] / n for name in stats.region}
    rel_y = np.where(stats.rel_n > 0, stats.rel_y / np.maximum(stats.rel_n, 1), 0.0)

    groups: dict[str, list[int]] = {}
    for code in seen:
        order = ("eye", "mouth", "brow", "lips", "nose", "above_eye")
        best = max(order, key=lambda r: frac[r][code])
        if frac[best][code] >= majority:
            group = best
        elif frac["face"][code] >= majority:
            group = "skin"
        else:
            group = "background"
        groups.setdefault(group, []).append(int(code))

    segments: dict[str, list[int]] = {}

    def put(name: str, codes: Sequence[int]) -> None:
        if codes:
            segments.setdefault(name, []).extend(int(c) for c in codes)

    put("skin", groups.get("skin", []))
    put("brows", groups.get("brow", []))
    put("eyelids", groups.get("above_eye", []))
    eye = sorted(groups.get("eye", []), key=lambda c: luma[c])
    if eye:
        pupils, rest = eye[:1], eye[1:]
        if rest:
            lo, hi = float(luma[eye[0]]), float(max(luma[c] for c in rest))
            cut = lo + 0.6 * (hi - lo)
            whites = [c for c in rest if luma[c] >= cut]
            dark = [c for c in rest if c not in whites]
            if len(dark) >= 3:
                # a pupil often takes several codes (its rim, its catchlight-lit part): those nearer the
                # darkest code's brightness than the typical iris code's join it. On the synthetic shot the
                # rule picked 6 of the 11 codes the ground truth calls pupil and no iris code; the rest of
                # the pupil is as bright as the iris and stays there (gaze moves both anyway)
                typical = float(np.median([luma[c] for c in dark]))
                pupils = pupils + [c for c in dark if luma[c] - lo < 0.5 * (typical - lo)]
            put("irises", [c for c in dark if c not in pupils])
            put("eye_whites", whites)
        put("pupils", pupils)
    put("nose", groups.get("nose", []))
    lips = groups.get("lips", [])
    put("upper_lip", [c for c in lips if rel_y[c] < 0])
    put("lower_lip", [c for c in lips if rel_y[c] >= 0])
    mouth = sorted(groups.get("mouth", []), key=lambda c: -luma[c])
    if mouth:
        redness = mean_rgb[:, 0] - mean_rgb[:, 1]
        bright, dark = mouth[0], mouth[-1]
        # Two prototypes from the shot itself: the teeth are the brightest mouth code, the cavity the most
        # saturated red one (red for its brightness: a lit tongue is red but brighter). Where the cavity is
        # redder than the teeth by at least REDNESS_TRUST of their brightness contrast (0.24-0.30 on synthetic
        # shots), each code is placed on the line between them in (luma, redness), redness counting twice
        # (shading moves luma, not hue), and goes with the teeth past the middle: codes that straddle teeth and
        # cavity or sit in the lips' shadow land on the teeth side, so a teeth edit removes them (measured on
        # three synthetic shots, K 128 and 255, where fixed luma/redness cuts misfiled them). On real footage
        # the darkest codes are barely red (0.07 of the brightness contrast on lp_d0, 0.11 on lp_d13) and that
        # rule let redness noise decide: bright teeth codes went to tongue and interior, dark corners to teeth,
        # and `teeth 0` left the teeth. There, teeth are the bright codes whose chromaticity is nearer the
        # brightest code's than the mouth's typical (lit tongue and gums are pink).
        cavity = max(mouth, key=lambda c: redness[c] / max(float(luma[c]), 0.02))  # most saturated red: unlit
        d_luma = float(luma[bright] - luma[cavity])
        d_red = float(redness[cavity] - redness[bright])
        bright_enough = [c for c in mouth if luma[c] >= 0.5 * (luma[dark] + luma[bright])]
        if d_luma > 1e-6 and d_red >= REDNESS_TRUST * d_luma:
            toward = {c: ((luma[c] - luma[cavity]) / d_luma + 2.0 * (redness[cavity] - redness[c]) / d_red) / 3.0
                      for c in mouth}
            teeth = [c for c in mouth if toward[c] > 0.5]
        elif d_luma > 1e-6:
            chroma = redness / np.maximum(mean_rgb.sum(1), 1e-6)
            cut = chroma[bright] + 0.5 * (float(np.median(chroma[mouth])) - chroma[bright])
            teeth = [c for c in bright_enough if chroma[c] <= cut]
        else:  # no contrast to go by: brightness alone
            teeth = bright_enough
        if not teeth:
            teeth = mouth[:1]
        others = [c for c in mouth if c not in teeth]
        # the tongue is red like the cavity but lit: brighter than the darkest mouth code, below the mouth centre
        red = [c for c in others if c != cavity and redness[c] > 0.12 and rel_y[c] >= 0 and luma[c] > luma[dark] + 0.05]
        # the cavity first (the teeth op fills with a segment's first code), then the rest darkest first
        interior = sorted((c for c in others if c not in red), key=lambda c: (c != cavity, luma[c]))
        if not interior:  # an open mouth always has an interior, a tongue only sometimes: one red code is the interior
            interior, red = red, []
        put("upper_teeth", [c for c in teeth if rel_y[c] < 0])
        put("lower_teeth", [c for c in teeth if rel_y[c] >= 0])
        put("tongue", red)
        put("mouth_interior", interior)
    put("background", groups.get("background", []))
    order = {name: i for i, name in enumerate(STANDARD_SEGMENTS)}
    ordered = {k: segments[k] for k in sorted(segments, key=lambda s: order.get(s, len(order)))}
    return validate_prior({"version": PRIOR_VERSION, "num_codes": int(num_codes), "segments": ordered})


def rasterize_regions(
    contours: Mapping[str, Any],
    transform: Any,
    crop_size: int,
    label_size: int,
) -> dict[str, np.ndarray]:
    """Tracking contours (closed polygons, plate pixels) → boolean masks at label-map size.

    Points go plate → crop through ``transform.to_crop`` (a :class:`vq_models.shot.CropTransform`), then
    crop → label with the pixel-centre convention ``u_label = (u_crop + 0.5) * L / S - 0.5``.
    """
    return {name: rasterize_polygon(points, (label_size, label_size))
            for name, points in label_outlines(contours, transform, crop_size, label_size).items()}


def label_outlines(contours: Mapping[str, Any], transform: Any, crop_size: int, label_size: int,
                   names: Sequence[str] = REGION_NAMES) -> dict[str, np.ndarray]:
    """Tracking contours (plate pixels) → the same polygons in label-map coordinates (N, 2), pixel centres at
    integers (``u_label = (u_crop + 0.5) * L / S - 0.5``), for the regions ``names`` (all of
    ``REGION_NAMES`` by default)."""
    scale = float(label_size) / float(crop_size)
    out: dict[str, np.ndarray] = {}
    for name in names:
        pts = contours.get(name) if contours else None
        if pts is None or len(pts) < 3:
            continue
        crop = transform.to_crop(np.asarray(pts, dtype=np.float64)[:, :2])
        out[name] = (crop + 0.5) * scale - 0.5
    return out
