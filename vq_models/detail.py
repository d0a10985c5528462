"""Plate-density detail: renders as sharp as the plate where the compositor looks.

Stage II renders a crop of R² pixels (128 on the CPU preset, 1024 in the paper). Pasted over a face that
spans 200 to 1,500 plate pixels, that render is softer than the plate around it, and a 4K face would be soft
even at the paper's 1024². So the render and the plate are split by frequency at the render's own pixel
size: the render supplies the band it can resolve, the plate the band above it,

    out = G(render) + (1 - w) * H(plate) + w * H(donor),    H(x) = x - G(x),

with G a Gaussian of ``sigma`` render pixels measured in plate pixels. Where the edit left the labels alone
(w = 0) this is ``plate + G(render - plate)``: the plate's own detail and grain continue across the render
unchanged. Where an edit changed the labels (w = 1, feathered), the plate's band would ghost what was there
(an iris through a closed lid), so the band comes from a *donor*: the frame of the same shot whose labels
there look most like the edited ones (a real blink for a closed eye), warped through both frames' crop
transforms so head motion is taken out. Without a donor good enough, the changed region keeps the render's
band alone (soft, never a ghost). The plate's band never shows on the changed pixels themselves, nor carries
their old content's halo around them (:func:`band_without`).

Everything happens in the plate's pixel grid inside the crop's footprint, so the current plate is never
resampled; only the render and the donor are.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vq_models.composite import RENDER_REACH_PX, alpha_bounds, paste_to_plate
from vq_models.edits.geometry import disk, polygon_coverage
from vq_models.edits.pulls import ColumnPull, JawPull
from vq_models.edits.spec import (
    DetailMove,
    DonorRule,
    EditRule,
    FilledRegion,
    PlateRemnants,
)
from vq_models.errors import InputError
from vq_models.face.align import transform_scale
from vq_models.grain import measure_grain, synthesize_grain
from vq_models.io.image_data import ImageData
from vq_models.shot import CropTransform, Shot

DETAIL_MODES = ("plate", "none")


@dataclass(frozen=True)
class DetailSettings:
    """Knobs of the frequency split.

    ``sigma``: the Gaussian's sigma in render pixels (1: the render keeps what it resolves at its own
    pixel size, the plate supplies everything finer). ``donor_sigma``: the same split where an edit changed the
    labels and a donor lends its band (larger: more of the donor's own image, less of the render's).
    ``feather``: how far (render pixels) the changed
    region's donor band fades into the plate's own. ``min_donor_match``: the least share of changed label
    pixels a donor must agree on (by the prior's segments) to lend its band; below it the changed region
    keeps the render's own band (a transferred mouth then renders as a blur); much lower, a removed part's
    look comes back from a donor that still has it (``teeth 0`` at 0.3; benchmarks/RESULTS.md).
    ``donor_margin``: label pixels around each changed region that count in the match (the surroundings
    must agree too, or the donor's detail sits in another context).
    ``donor_edge``: render pixels inside the donor's own face silhouette where its band stops (the rest of
    the changed region keeps the render's band): where the two frames' faces differ in outline (a smile widens
    the cheeks) the donor's silhouette against the background would draw a bright line across this face.
    """

    sigma: float = 1.0
    donor_sigma: float = 1.0
    feather: float = 1.0
    min_donor_match: float = 0.5
    donor_margin: int = 2
    donor_edge: float = 2.0

    def __post_init__(self) -> None:
        if not self.sigma > 0 or not self.donor_sigma > 0:
            raise InputError(f"detail sigma {self.sigma} / donor_sigma {self.donor_sigma}: must be > 0 render pixels")
        if self.donor_edge < 0:
            raise InputError(f"detail donor_edge {self.donor_edge}: must be >= 0 render pixels")
        if self.feather < 0:
            raise InputError(f"detail feather {self.feather}: must be >= 0 render pixels")
        if not 0.0 <= self.min_donor_match <= 1.0:
            raise InputError(f"detail min_donor_match {self.min_donor_match}: must be in [0, 1]")


def plate_px_per_render_px(transform: CropTransform, crop_size: int, render_size: int) -> float:
    """How many plate pixels one render pixel covers (the crop's scale times crop/render size)."""
    return float(crop_size) / float(render_size) / transform_scale(transform)


#: from this sigma (plate pixels) on, :func:`gaussian` blurs a shrunk copy: a 1,500-pixel face on a 4K plate has
#: a 13-pixel sigma, whose full-size kernel cost more than the render itself
PYRAMID_FROM_SIGMA = 8.0


def gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (reflecting borders) of an (H, W[, C]) float32 image.

    From :data:`PYRAMID_FROM_SIGMA` on, the image is box-shrunk by k = sigma // 3, blurred there and enlarged
    bilinearly, with the small sigma chosen so box, blur and enlargement add up to ``sigma``: the low band
    it returns differs from the full-size blur by about 1e-4 on average, at a fraction of the cost."""
    if sigma <= 0:
        return image
    k = int(sigma // 3) if sigma >= PYRAMID_FROM_SIGMA else 1
    if k < 2:
        return cv2.GaussianBlur(image, (0, 0), sigmaX=float(sigma), sigmaY=float(sigma), borderType=cv2.BORDER_REFLECT)
    h, w = image.shape[:2]
    hs, ws = -(-h // k), -(-w // k)
    padded = cv2.copyMakeBorder(image, 0, hs * k - h, 0, ws * k - w, cv2.BORDER_REFLECT)
    small = cv2.resize(padded, (ws, hs), interpolation=cv2.INTER_AREA)
    # the box of k pixels and the bilinear enlargement each widen the blur by about k / 2 in quadrature
    small_sigma = float(np.sqrt(max(sigma * sigma - k * k / 4.0, 1e-6)) / k)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=small_sigma, sigmaY=small_sigma, borderType=cv2.BORDER_REFLECT)
    big = cv2.resize(small, (ws * k, hs * k), interpolation=cv2.INTER_LINEAR)
    return big[:h, :w]  # a view: callers only compute with it, and a copy of a 4K face's window is not free


@dataclass
class DonorBand:
    """A donor frame's detail band (its pixels less their blur at the donor sigma) over ``box`` = (rows,
    columns) of the render window: a changed eye needs the donor only around itself, not over a 4K face."""

    box: tuple[slice, slice]
    band: np.ndarray  # (rows, columns, 3)

    @classmethod
    def of(cls, donor: np.ndarray, sigma: float, origin: tuple[int, int] = (0, 0)) -> DonorBand:
        """The band of ``donor``, an image over the window's rows and columns from ``origin`` = (x, y)."""
        h, w = donor.shape[:2]
        x, y = int(origin[0]), int(origin[1])
        return cls((slice(y, y + h), slice(x, x + w)), donor - gaussian(donor, sigma))

    def covers(self, box: tuple[slice, slice]) -> bool:
        return all(mine.start <= want.start and want.stop <= mine.stop for mine, want in zip(self.box, box, strict=True))

    def over(self, box: tuple[slice, slice]) -> np.ndarray:
        """The band over ``box`` (window coordinates), which it must cover."""
        if not self.covers(box):
            raise ValueError(f"donor band over {self.box} does not cover {box}")
        (ys, xs), (my, mx) = box, self.box
        return self.band[ys.start - my.start:ys.stop - my.start, xs.start - mx.start:xs.stop - mx.start]


def split_bands(render: np.ndarray, plate: np.ndarray, sigma: float,
                replacements: Sequence[tuple[np.ndarray, DonorBand | None]] = (),
                donor_sigma: float | None = None, removed: np.ndarray | None = None) -> np.ndarray:
    """``G(render) + (1 - sum w) H(plate) + sum w H(donor)`` (see the module docstring).

    Images are (H, W, 3) float32 in one colour encoding. ``replacements`` lists, per changed region, its
    weight (H, W) in [0, 1] and the donor band lending its detail there (:class:`DonorBand`, at
    ``donor_sigma``, covering the weight's box), or None where no donor is good enough: that region keeps the
    render's own band (soft, never a ghost of the plate). ``donor_sigma`` (default ``sigma``) splits the
    render there.

    ``removed`` (H, W) in [0, 1]: plate pixels whose content the edit replaced. Their own band never shows
    (the share the feathered weights leave of it goes to the regions' bands there, or to the render's where
    no region reaches), and around them the plate's band is taken against a blur of the plate without them
    (:func:`band_without`): a plain blur spreads what was removed a few sigmas out, and the band there carries
    its outline beyond the changed region (a crisp ring where a gazing iris was)."""
    low = gaussian(render, sigma)
    out = plate - gaussian(plate, sigma)  # the plate's band; the sum is built in place in it
    if removed is not None:
        band_without(out, plate, removed, sigma)
    regions = [(w, d, alpha_bounds(w)) for w, d in replacements]
    regions = [(w, d, _box_slices(b)) for w, d, b in regions if b is not None]
    gone = alpha_bounds(removed) if removed is not None else None
    boxes = [b for _, _, b in regions] + ([_box_slices(gone)] if gone else [])
    if boxes:
        # every region's arithmetic inside the boxes of the weights: an eye is a small part of a 4K face's window
        y0, x0 = min(b[0].start for b in boxes), min(b[1].start for b in boxes)
        y1, x1 = max(b[0].stop for b in boxes), max(b[1].stop for b in boxes)
        union = (slice(y0, y1), slice(x0, x1))
        total = np.zeros((y1 - y0, x1 - x0), np.float32)
        for weight, _, (ys, xs) in regions:
            total[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0] += weight[ys, xs]
        scale = np.where(total > 1.0, 1.0 / np.maximum(total, 1e-6), 1.0).astype(np.float32)
        keep = 1.0 - total * scale  # the plate band's share
        spill = None
        if removed is not None:
            # a removed part's own pixels never show their band, however the feathered weights add up there
            # (a narrow crescent an iris left peaks below 1): that share goes to the regions' own bands there,
            # in proportion, and to the render's band where no region reaches
            spill = keep * removed[union]
            keep -= spill
            shared = total * scale
            reached = shared > 1e-6
            scale = scale * np.where(reached, 1.0 + spill / np.maximum(shared, 1e-6), 1.0).astype(np.float32)
            spill = np.where(reached, 0.0, spill).astype(np.float32)
        out[union] *= keep[..., None]
        if spill is not None:
            out[union] += spill[..., None] * (render[union] - low[union])
        ds = sigma if donor_sigma is None else donor_sigma
        low_d = low if ds == sigma else gaussian(render, ds)
        for weight, donor, box in regions:
            part = render[box] if donor is None else low_d[box] + donor.over(box)
            ys, xs = box
            local = scale[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
            out[box] += (weight[box] * local)[..., None] * (part - low[box])
    out += low
    return out


#: how far (in donor sigmas) around a changed region its donor is read and split: the Gaussian's weight
#: beyond four sigmas is below 1e-4
DONOR_REACH = 4.0
#: how far (in ``DONOR_REACH`` multiples of the split's sigma) around the render's band the plate's grain is
#: measured: enough kept pixels of each brightness, still the same part of the face
GRAIN_REACH = 2.0


def band_without(band: np.ndarray, plate: np.ndarray, removed: np.ndarray, sigma: float) -> None:
    """Set ``band`` (= ``plate - G(plate)``) to ``plate - G_kept(plate)`` wherever the blur reaches ``removed``
    pixels, in place. ``G_kept`` is the normalised blur of the pixels kept, ``G(plate (1 - r)) / G(1 - r)``, so
    the band around a removed part shows the plate's texture there, not the part's halo. Where nearly every
    pixel the blur sees was removed (the changed region's core, which its own band replaces), the plain band
    stays."""
    size = (removed.shape[1], removed.shape[0])
    if alpha_bounds(removed) is None:
        return
    inner = _reach_box([removed], sigma, size)  # pixels whose blur sees removed content
    ox0, oy0, ox1, oy1 = _grown_box(inner, sigma, size)  # and what their blur over ``inner`` sees in turn
    kept = 1.0 - np.clip(removed[oy0:oy1, ox0:ox1], 0.0, 1.0)
    num = gaussian(plate[oy0:oy1, ox0:ox1] * kept[..., None], sigma)
    den = gaussian(np.ascontiguousarray(kept), sigma)
    ys, xs = _box_slices((inner[0] - ox0, inner[1] - oy0, inner[2] - ox0, inner[3] - oy0))
    num, den = num[ys, xs], den[ys, xs]
    box = _box_slices(inner)
    band[box] = np.where((den > 1e-3)[..., None], plate[box] - num / np.maximum(den, 1e-3)[..., None], band[box])


#: plate rows kept in memory for the detail pass (linear float32 colour), all shots of a process together (a
#: render server holding several shots): a render needs its own frame and a few donors; twelve 1080p frames or
#: three 4K ones. ``vqedit serve --plate-cache-mb`` sets it for a server.
CACHE_MIB = 320.0

#: a cache entry: (first display-window row, rows (H, W, 3) float32, colour space)
RowEntry = tuple[int, np.ndarray, str]


class PlateRowCache:
    """Plate rows read for the detail pass, least recently used first out, under one budget for the whole
    process. Why one: a server keeps several shots loaded, and a budget per shot multiplied by the shots
    is memory nobody asked for; an evicted or unloaded shot's rows leave with it.

    The two most recent entries always stay, so a render and its donor never read twice however small the
    budget. An entry dropped while a render still uses it stays alive with that render."""

    def __init__(self, budget_mib: float = CACHE_MIB):
        self._entries: OrderedDict[tuple[int, int], RowEntry] = OrderedDict()
        self._lock = threading.Lock()
        self._owners = itertools.count()
        self.budget_mib = budget_mib

    @property
    def budget_mib(self) -> float:
        return self._budget_mib

    @budget_mib.setter
    def budget_mib(self, value: float) -> None:
        value = float(value)
        if not np.isfinite(value) or value < 0:
            raise InputError(f"plate cache budget {value} MiB: expected a number >= 0")
        with self._lock:
            self._budget_mib = value
            self._trim()

    def new_owner(self, holder: object) -> int:
        """A key for ``holder``'s entries, which are dropped when ``holder`` is garbage-collected."""
        owner = next(self._owners)
        weakref.finalize(holder, self.forget, owner)
        return owner

    def get(self, owner: int, frame: int) -> RowEntry | None:
        with self._lock:
            entry = self._entries.get((owner, frame))
            if entry is not None:
                self._entries.move_to_end((owner, frame))
            return entry

    def put(self, owner: int, frame: int, entry: RowEntry) -> None:
        with self._lock:
            self._entries[(owner, frame)] = entry
            self._entries.move_to_end((owner, frame))
            self._trim()

    def forget(self, owner: int) -> None:
        """Drop every entry of ``owner``."""
        with self._lock:
            for key in [k for k in self._entries if k[0] == owner]:
                del self._entries[key]

    def nbytes(self) -> int:
        with self._lock:
            return sum(e[1].nbytes for e in self._entries.values())

    def _trim(self) -> None:  # caller holds the lock
        budget = self._budget_mib * 2**20
        total = sum(e[1].nbytes for e in self._entries.values())
        while len(self._entries) > 2 and total > budget:
            _, dropped = self._entries.popitem(last=False)
            total -= dropped[1].nbytes


#: the process's plate row cache (every :class:`PlateFrames` uses it unless given another)
PLATE_CACHE = PlateRowCache()


class PlateFrames:
    """Display-sRGB plate pixels of a shot's frames, read from the plate source recorded in shot.json,
    through the process's :class:`PlateRowCache` (a render needs its own frame and at most a few donors)."""

    def __init__(self, shot: Shot, cache: PlateRowCache | None = None):
        self.shot = shot
        self.cache = PLATE_CACHE if cache is None else cache
        self._owner = self.cache.new_owner(self)
        self._source: Any = None
        self._lock = threading.Lock()

    def source_path(self) -> Path | None:
        """The plate source as prep recorded it: absolute, or relative to the shot, its parent or the working
        directory (older shots recorded the path as typed); None when shot.json names none that exists."""
        text = str(self.shot.plate.get("source") or "")
        if not text:
            return None
        path = Path(text)
        roots = [Path("/")] if path.is_absolute() else [self.shot.root, self.shot.root.parent, Path.cwd()]
        for root in roots:
            cand = root / path
            if cand.is_file() or ("%" in cand.name and cand.parent.is_dir()):
                return cand
        return None

    def available(self) -> bool:
        try:
            return self._open() is not None
        except Exception:  # an unreadable source is reported by read(), not here
            return False

    def _open(self) -> Any:
        if self._source is None:
            from vq_models.io.sources import open_source

            path = self.source_path()
            if path is None:
                return None
            source = open_source(str(path), colorspace=self.shot.plate.get("colorspace") or None)
            w, h = self.shot.plate_size
            if (source.width, source.height) != (w, h):
                source.close()
                raise InputError(f"{path}: the plate is {source.width}x{source.height} but shot.json's plate is "
                                 f"{w}x{h} (moved or replaced? plate detail needs the shot's own plate)")
            self._source = source
        return self._source

    def _readable(self) -> Any:
        """The open plate source; an unreadable one raises, naming it (call with the lock held)."""
        source = self._open()
        if source is None:
            raise InputError(f"{self.shot.root}: the plate source {self.shot.plate.get('source')!r} is not "
                             "readable (plate detail needs it; render with detail 'none')")
        return source

    def image(self, frame: int) -> Any:
        """The plate frame as the source gives it (an ImageData in the plate's colour space)."""
        with self._lock:
            return self._readable().read(int(frame))

    def read(self, frame: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """(H, W, 3) display sRGB over the plate's display window, or over its ``box`` = (x0, y0, x1, y1).

        Only the box is read from the file (its rows, where the source can) and converted to display sRGB: on a
        4K plate the face's footprint is a third of the frame, and decoding and converting the whole frame cost
        more than the render. Linear rows read are cached (:class:`PlateRowCache`)."""
        from vq_models.io.colour import to_network

        w, h = self.shot.plate_size
        x0, y0, x1, y1 = (0, 0, w, h) if box is None else (int(v) for v in box)
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise InputError(f"plate box {box}: outside the {w}x{h} plate")
        top, linear, space = self._linear(int(frame), y0, y1)
        return to_network(linear[y0 - top:y1 - top, x0:x1], space)

    def _linear(self, frame: int, y0: int, y1: int) -> RowEntry:
        """(first row, rows, colour space): the frame's colour channels in the plate's colour space over the
        display window's width, covering at least rows ``y0`` to ``y1`` (cached)."""
        entry = self.cache.get(self._owner, frame)
        if entry is not None and entry[0] <= y0 and y1 <= entry[0] + entry[1].shape[0]:
            return entry
        if entry is not None:  # widen to what is cached as well, so the entry keeps covering earlier asks
            y0, y1 = min(y0, entry[0]), max(y1, entry[0] + entry[1].shape[0])
        entry = self._read_rows(frame, y0, y1)
        self.cache.put(self._owner, frame, entry)
        return entry

    def offer(self, frame: int, image: ImageData, path: str | Path) -> bool:
        """Cache ``image``, frame ``frame`` as a caller read it from ``path``, when ``path`` is this shot's own
        plate source and the image covers its display window: a farm render reads the whole frame to composite
        over, and the detail pass then need not decode the face's rows of the file again. Whether it was taken."""
        from vq_models.io.colour import resolve_colorspace

        mine = self.source_path()
        if mine is None or Path(path).resolve() != mine.resolve() or not self.available():
            return False
        if tuple(image.data_window) != tuple(image.display_window) or tuple(image.display_window[2:]) != self.shot.plate_size:
            return False
        if resolve_colorspace(str(image.colorspace)) != resolve_colorspace(str(self._source.colorspace)):
            return False  # available() opened the source
        self.cache.put(self._owner, int(frame), (0, np.ascontiguousarray(image.rgb(), np.float32), str(image.colorspace)))
        return True

    def cached(self, frame: int) -> RowEntry | None:
        """The rows of ``frame`` in the cache, if any (first row, rows, colour space)."""
        return self.cache.get(self._owner, int(frame))

    def _read_rows(self, frame: int, y0: int, y1: int) -> RowEntry:
        """Rows ``y0`` to ``y1`` of the display window, read alone where the file's data window is the display
        window (the usual plate); otherwise the whole frame placed on the display window."""
        with self._lock:
            source = self._readable()
            if tuple(source.data_window) == tuple(source.display_window):
                image = source.read(int(frame), rows=(y0, y1))
                top = y0
            else:
                image = source.read(int(frame))
                image = ImageData(image.full_frame(), image.channels, display_window=image.display_window,
                                  data_window=image.display_window)
                top = 0
        return top, np.ascontiguousarray(image.rgb(), np.float32), str(image.colorspace)


class DonorIndex:
    """Finds, for each changed region of an edited label map, the shot frame whose labels there agree most
    with the edit, compared by the artist prior's segments (codes of one segment count as equal)."""

    def __init__(self, frames: list[int], label_map: Callable[[int], np.ndarray], code_groups: np.ndarray):
        self.frames = list(frames)
        self._label_map = label_map
        self._groups = np.asarray(code_groups)
        self._stack: np.ndarray | None = None
        self._lock = threading.Lock()

    def stack(self) -> np.ndarray:
        """(N, L, L) segment ids of every frame (built once)."""
        with self._lock:
            if self._stack is None:
                self._stack = np.stack([self._groups[self._label_map(f)] for f in self.frames])
            return self._stack

    def best(self, edited: np.ndarray, changed: np.ndarray, around: np.ndarray,
             exclude: set[int] | None = None, before: np.ndarray | None = None,
             removed_by: np.ndarray | None = None) -> tuple[int | None, float]:
        """(donor frame, match) for one changed region: the share of its ``changed`` pixels whose segment agrees
        with ``edited``, counted 4:1 against the ring ``around`` them (skin around an eye agrees in every
        frame, so the changed pixels must decide); (None, 0) if there is none.

        With ``before`` (the frame's own labels, as the stack sees them), a frame that shows a segment the edit
        removed (within ``removed_by``, the pixels of the ops that ask this), where its band would show (the
        region and its ring) and the edit does not ask for that segment, on more pixels than
        :data:`MAX_GHOST_SHARE` of those the edit removed it from, never lends: a donor agreeing on three
        quarters of an emptied mouth put back, crisp, the teeth of its last quarter and those it shows a row
        lower."""
        stack = self.stack()
        scores = np.zeros(len(self.frames))
        if before is not None:
            removed = changed & (self._groups[before] != self._groups[edited])
            if removed_by is not None:
                removed &= removed_by
            if removed.any():
                # anywhere its band would show (the region and its ring), the donor shows a removed segment
                # where the edit does not ask for it
                gone = np.unique(self._groups[before[removed]])
                ys, xs = np.nonzero(changed | around)
                shows = stack[:, ys, xs]
                ghost = np.isin(shows, gone) & (shows != self._groups[edited[ys, xs]][None])
                scores[ghost.sum(axis=1) > MAX_GHOST_SHARE * np.count_nonzero(removed)] = -np.inf
        for mask, weight in ((changed, 0.8), (around & ~changed, 0.2)):
            ys, xs = np.nonzero(mask)
            if not ys.size:
                if weight == 0.8:
                    return None, 0.0
                scores /= 0.8
                continue
            want = self._groups[edited[ys, xs]]
            scores += weight * (stack[:, ys, xs] == want[None]).mean(axis=1)
        if exclude:
            for i, f in enumerate(self.frames):
                if f in exclude:
                    scores[i] = -1.0
        i = int(np.argmax(scores))
        return (self.frames[i], float(scores[i])) if scores[i] >= 0 else (None, 0.0)


#: how many pixels showing a segment an edit removed a donor may have, over the pixels the edit removed it from
MAX_GHOST_SHARE = 0.05


def code_groups(num_codes: int, prior: Any | None) -> np.ndarray:
    """(K,) segment id per code: codes of one prior segment share an id; codes in no segment keep their own."""
    own = np.arange(num_codes, dtype=np.int32) + 1_000
    if prior is None:
        return own
    parts = prior.part_table()[:num_codes]
    return np.where(parts >= 0, parts, own).astype(np.int32)


def region_exclude(region: np.ndarray, exclude: set[int], rules: Sequence[EditRule]) -> set[int]:
    """The frames that must not lend to one changed ``region`` (L, L): ``exclude`` and those of every rule
    whose changed pixels meet the region (an op's rule binds what that op changed, not the whole edit)."""
    return set(exclude).union(*(r.exclude for r in rules
                                if isinstance(r, DonorRule) and np.any(np.asarray(r.changed, bool) & region)))


def changed_regions(changed: np.ndarray, margin: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Connected changed regions of a label-space mask: (the region's changed pixels, the region grown by
    ``margin`` for matching)."""
    mask = np.asarray(changed, np.uint8)
    count, comp = cv2.connectedComponents(cv2.dilate(mask, np.ones((5, 5), np.uint8)))
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    out = []
    for i in range(1, count):
        own = (comp == i) & changed.astype(bool)
        if own.any():
            out.append((own, cv2.dilate(own.astype(np.uint8), kernel).astype(bool)))
    return out


def _sub_to_donor(donor_transform: CropTransform, sub_transform: CropTransform) -> np.ndarray:
    """(3, 3): a sub-window pixel → crop space (current frame) → the donor's plate pixel."""
    a = np.vstack([np.asarray(donor_transform.crop_to_plate, np.float64), [0.0, 0.0, 1.0]])
    b = np.vstack([np.asarray(sub_transform.plate_to_crop, np.float64), [0.0, 0.0, 1.0]])
    return a @ b


def donor_window(donor_transform: CropTransform, sub_transform: CropTransform, size: tuple[int, int],
                 plate_size: tuple[int, int], margin: int = 2) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1) of the donor's plate that the sub-window's pixels sample (bilinear, plus
    ``margin``), clipped to the plate: only that much of the donor needs reading and converting."""
    w, h = int(size[0]), int(size[1])
    corners = np.array([[-0.5, -0.5, 1.0], [w - 0.5, -0.5, 1.0], [-0.5, h - 0.5, 1.0], [w - 0.5, h - 0.5, 1.0]])
    pts = corners @ _sub_to_donor(donor_transform, sub_transform)[:2].T
    pw, ph = int(plate_size[0]), int(plate_size[1])
    x0 = int(np.clip(np.floor(pts[:, 0].min()) - margin, 0, pw - 1))
    y0 = int(np.clip(np.floor(pts[:, 1].min()) - margin, 0, ph - 1))
    x1 = int(np.clip(np.ceil(pts[:, 0].max()) + margin + 1, x0 + 1, pw))
    y1 = int(np.clip(np.ceil(pts[:, 1].max()) + margin + 1, y0 + 1, ph))
    return x0, y0, x1, y1


def warp_donor(donor_plate: np.ndarray, donor_transform: CropTransform, sub_transform: CropTransform,
               size: tuple[int, int], origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The donor frame's plate resampled onto the current frame's sub-window: each sub-window pixel goes to
    crop space with the current frame's transform and back to the donor's plate with the donor's.
    ``donor_plate`` may be a window of the donor's plate whose top-left pixel is ``origin`` (:func:`donor_window`)."""
    shift = np.array([[1.0, 0.0, -float(origin[0])], [0.0, 1.0, -float(origin[1])], [0.0, 0.0, 1.0]])
    m = (shift @ _sub_to_donor(donor_transform, sub_transform))[:2]
    return cv2.warpAffine(donor_plate, m, (int(size[0]), int(size[1])), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


def _reach_box(weights: Sequence[np.ndarray], sigma: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The window box (x0, y0, x1, y1) around the weights' boxes, :data:`DONOR_REACH` ``sigma`` out, clipped to
    the window (w, h) = ``size``: where a band is split so its blur sees what it would over the whole window."""
    bounds = [b for b in (alpha_bounds(w) for w in weights) if b is not None] or [(0, 0, 1, 1)]
    union = (min(b[0] for b in bounds), min(b[1] for b in bounds), max(b[2] for b in bounds), max(b[3] for b in bounds))
    return _grown_box(union, sigma, size)


def _grown_box(box: tuple[int, int, int, int], sigma: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box`` (x0, y0, x1, y1) grown by :data:`DONOR_REACH` ``sigma`` on each side, clipped to (w, h) = ``size``."""
    reach = int(np.ceil(DONOR_REACH * sigma)) + 1
    return (max(0, box[0] - reach), max(0, box[1] - reach), min(int(size[0]), box[2] + reach),
            min(int(size[1]), box[3] + reach))


def _box_slices(box: tuple[int, int, int, int]) -> tuple[slice, slice]:
    """(rows, columns) of a box (x0, y0, x1, y1)."""
    return slice(box[1], box[3]), slice(box[0], box[2])


def label_mask_to_sub(mask: np.ndarray, sub_transform: CropTransform, crop_size: int, size: tuple[int, int]) -> np.ndarray:
    """A label-space mask (L, L) in [0, 1] resampled onto the sub-window's plate pixels (bilinear). Only the
    plate box around the mask's own box is resampled: a changed eye is a small part of a 4K face's window."""
    mask = np.asarray(mask, np.float32)
    out = np.zeros((int(size[1]), int(size[0])), np.float32)
    ys, xs = np.nonzero(mask > 0)
    if not ys.size:
        return out
    k = crop_size / float(mask.shape[0])
    corners = np.array([[x, y] for x in (xs.min() - 2, xs.max() + 3) for y in (ys.min() - 2, ys.max() + 3)], np.float64)
    # label pixel edges, two pixels out, in crop pixels
    x0, y0, x1, y1 = sub_transform.plate_box(corners * k - 0.5, size, margin=1)
    warped, cover = paste_to_plate(mask, sub_transform.windowed(x0, y0), (x1 - x0, y1 - y0), crop_size=crop_size)
    out[y0:y1, x0:x1] = np.clip(warped * cover, 0.0, 1.0)
    return out


#: how far a plate pixel's darkest channel (display sRGB) must stand above the render's inside a
#: :class:`~vq_models.edits.spec.PlateRemnants` region to count as a remnant: from nothing at the first value to
#: wholly at the second (a row of teeth's rim stands well above the cavity rendered there, while the render of
#: what the labels do carry comes close to the plate; figures in benchmarks/RESULTS.md)
REMNANT_CONTRAST = (0.08, 0.16)
#: and how grey (HSV saturation) it must be: wholly at the first value, not at all from the second. Teeth are
#: near grey, a tongue or a lip pink, and a tongue lit brighter than the render stays the plate's
REMNANT_SATURATION = (0.30, 0.40)


def plate_remnants(render: np.ndarray, plate: np.ndarray, rules: Sequence[EditRule], sub_transform: CropTransform,
                   crop_size: int, size: tuple[int, int], render_px: float) -> np.ndarray | None:
    """(H, W) weight in [0, 1] on the window of what an op removed but the plate still shows finer than the
    label grid: inside the rules' :class:`~vq_models.edits.spec.PlateRemnants` regions, the plate pixels whose
    darkest channel stands above the ``render``'s by :data:`REMNANT_CONTRAST` and that are grey
    (:data:`REMNANT_SATURATION`), grown by a plate pixel and softened by half a render pixel (a tooth's edge
    goes with it). None where no rule asks or nothing is found.

    Why above the render: there the labels say lip or cavity, and the render draws them close to the plate;
    what stands well above it, grey, is what the labels could not carry (the rim of a row of teeth). The
    darkest channel, not the brightness: a lip is as bright as a shadowed tooth but redder. Both images
    display sRGB (H, W, 3)."""
    regions = [r.within for r in rules if isinstance(r, PlateRemnants)]
    if not regions:
        return None
    within = label_mask_to_sub(np.any(regions, axis=0).astype(np.float32), sub_transform, crop_size, size)
    bounds = alpha_bounds(within)
    if bounds is None:
        return None
    x0, y0, x1, y1 = bounds
    lo, hi = REMNANT_CONTRAST
    window = plate[y0:y1, x0:x1]
    brighter = window.min(axis=-1) - render[y0:y1, x0:x1].min(axis=-1)
    found = np.clip((brighter - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    top = window.max(axis=-1)
    saturation = (top - window.min(axis=-1)) / np.maximum(top, 1e-6)  # HSV's
    grey, pink = REMNANT_SATURATION
    found *= np.clip((pink - saturation) / (pink - grey), 0.0, 1.0)
    found = gaussian(cv2.dilate(found, np.ones((3, 3), np.uint8)), 0.5 * render_px)
    out = np.zeros(within.shape, np.float32)
    out[y0:y1, x0:x1] = np.clip(found * within[y0:y1, x0:x1], 0.0, 1.0)
    return out if out.max() > 0.0 else None


#: how far (plate pixels) past the contour of an opening an op emptied (:attr:`PlateRemnants.opening`) the
#: render still draws it: the plate's pixels on the contour mix lip and tooth, and kept they leave a bright rim
OPENING_GROW_PX = 1


def outside_openings(rules: Sequence[EditRule], sub_transform: CropTransform, crop_size: int,
                     size: tuple[int, int]) -> np.ndarray | None:
    """(H, W) weight on the window where the plate keeps its own lips around the openings ops emptied: near
    each :class:`~vq_models.edits.spec.PlateRemnants` region (within
    :data:`~vq_models.edits.spec.OPENING_CLEARANCE` label pixels), outside its ``opening`` contour grown by
    :data:`OPENING_GROW_PX`. None where no rule has an opening.

    Why: the label pixels an op changed around the opening straddle the lips, and the render's edge there
    follows the label grid (lp_d0's emptied mouth met his upper lip in label-pixel steps); the tracked
    contour lies on the lips' own edge at plate resolution."""
    weights = []
    for rule in rules:
        if not isinstance(rule, PlateRemnants) or rule.opening is None:
            continue
        scale = crop_size / float(rule.within.shape[0])
        contour = sub_transform.to_plate((np.asarray(rule.opening, np.float64) + 0.5) * scale - 0.5)
        inside = polygon_coverage(contour, (int(size[1]), int(size[0])))
        inside = cv2.dilate(inside, disk(OPENING_GROW_PX))
        weights.append(label_mask_to_sub(rule.near.astype(np.float32), sub_transform, crop_size, size) * (1.0 - inside))
    return np.clip(np.max(weights, axis=0), 0.0, 1.0) if weights else None


@dataclass
class DetailResult:
    """What the detail pass did on one frame (recorded with the render, so nothing happens silently)."""

    mode: str  # "plate" or "none"
    sigma_plate_px: float = 0.0
    donors: list[tuple[int | None, float]] | None = None  # per changed region: (frame, match share)
    moves: list[tuple[float, float]] | None = None  # parts moved within the frame: their shift in plate pixels
    grain: float | None = None  # mean sigma of the plate's grain added where the render's band stood in
    #: (H, W) weight on the render's window of the plate remnants the render replaced (:func:`plate_remnants`)
    remnants: np.ndarray | None = field(default=None, repr=False, compare=False)


class PlateDetail:
    """The detail pass of one shot: plate frames, the donor index, the settings."""

    def __init__(self, shot: Shot, label_map: Callable[[int], np.ndarray], num_codes: int, prior: Callable[[], Any],
                 render_size: int, settings: DetailSettings | None = None):
        self.shot = shot
        self.plates = PlateFrames(shot)
        self.render_size = int(render_size)
        self.settings = settings or DetailSettings()
        self._label_map = label_map
        self._num_codes = int(num_codes)
        self._prior = prior
        self._donors: DonorIndex | None = None

    def available(self) -> bool:
        return self.plates.available()

    def forget_donors(self) -> None:
        """Drop the donor index, built from the prior's segments: the next edit builds it from the new prior."""
        self._donors = None

    def donors(self) -> DonorIndex:
        if self._donors is None:
            self._donors = DonorIndex(self.shot.frames, self._label_map, code_groups(self._num_codes, self._prior()))
        return self._donors

    def donor_support(self, donor: int, sub_transform: CropTransform, size: tuple[int, int], label_px: float) -> np.ndarray:
        """(H, W) in [0, 1] on the sub-window: where ``donor``'s own face covers, ``donor_edge`` render pixels in
        from its silhouette (crop space is shared, so the donor's crop mask lands where its plate is warped)."""
        fg = np.asarray(self.shot.fg_mask(donor), np.float32)
        crop_px_per_render_px = self.shot.crop_size / self.render_size
        r = int(round(self.settings.donor_edge * crop_px_per_render_px))
        inside = (fg >= 0.5).astype(np.uint8)
        if r > 0:
            inside = cv2.erode(inside, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        support = label_mask_to_sub(inside.astype(np.float32), sub_transform, self.shot.crop_size, size)
        return np.clip(gaussian(support, self.settings.feather * label_px), 0.0, 1.0)

    def apply(self, frame: int, render_sub: np.ndarray, box: tuple[int, int, int, int], sub_transform: CropTransform,
              changed: np.ndarray, edited: np.ndarray, exclude: set[int] | None = None,
              rules: Sequence[EditRule] = ()) -> tuple[np.ndarray, DetailResult]:
        """Detail the render pasted onto the sub-window ``box`` = (x0, y0, x1, y1) of the display window.

        ``render_sub`` is display sRGB on that window; ``changed``/``edited`` are the label-space changed mask
        and edited labels at this frame. Donors are never ``frame`` itself nor any frame in ``exclude``, nor,
        for a changed region, a frame a :class:`~vq_models.edits.spec.DonorRule` meeting that region excludes,
        nor, where an op asks (:attr:`~vq_models.edits.spec.DonorRule.ghosts`), a frame still showing what it
        removed there (:meth:`DonorIndex.best`).
        Where an op moved a part within the frame (:class:`~vq_models.edits.spec.DetailMove`), the band there is
        this frame's plate moved the same way."""
        x0, y0, x1, y1 = box
        size = (x1 - x0, y1 - y0)
        plate = self.plates.read(frame, box)
        render_px = plate_px_per_render_px(self.shot.transform(frame), self.shot.crop_size, self.render_size)
        sigma = self.settings.sigma * render_px
        donor_sigma = self.settings.donor_sigma * render_px
        regions: list[tuple[np.ndarray, int | None]] = []  # (weight on the window, donor or None)
        donors: list[tuple[int | None, float]] = []
        changed = np.asarray(changed, bool)
        if changed.any():
            label_px = render_px * self.render_size / changed.shape[0]
            skip = {int(frame)} | set(exclude or ())
            ghost_rules = [r for r in rules if isinstance(r, DonorRule) and r.ghosts]
            # what the edits replaced, as the donors are compared: for the ops that ask donors not to show it
            before = self._label_map(frame) if ghost_rules and frame in self.shot.frames else None
            removed_by = np.any([np.asarray(r.changed, bool) for r in ghost_rules], axis=0) if ghost_rules else None
            for own, grown in changed_regions(changed, self.settings.donor_margin):
                ghosts = removed_by is not None and bool(np.any(removed_by & own))
                donor, score = self.donors().best(edited, own, grown, exclude=region_exclude(own, skip, rules),
                                                  before=before if ghosts else None, removed_by=removed_by)
                weight = self._region_weight(own, sub_transform, size, label_px)
                if donor is None or score < self.settings.min_donor_match:
                    donor = None
                regions.append((weight, donor))
                donors.append((donor, round(score, 4)))
        replacements: list[tuple[np.ndarray, DonorBand | None]] = []
        moved, shifts = self._moved_bands(plate, [r for r in rules if isinstance(r, DetailMove)], sub_transform, size,
                                          changed.shape[0], render_px, donor_sigma)
        if moved:  # a moved part's own band wins over a region's donor or render band
            keep = np.clip(1.0 - sum(w for w, _ in moved), 0.0, 1.0)
            regions = [(weight * keep, donor) for weight, donor in regions]
            replacements += moved
        # two regions often share a donor (both eyes of one blink): one band and one support for both
        bands: dict[int, tuple[DonorBand, np.ndarray]] = {}
        for weight, donor in regions:
            if donor is None:
                replacements.append((weight, None))
                continue
            if donor not in bands:
                bands[donor] = (self._donor_band(donor, [w for w, d in regions if d == donor], sub_transform, size,
                                                 donor_sigma),
                                self.donor_support(donor, sub_transform, size, label_px))
            band, inside = bands[donor]
            replacements += [(weight * inside, band), (weight * (1.0 - inside), None)]
        removed = None
        if changed.any():  # not grown: the unchanged rim around keeps its own band, as the what-ifs prefer
            removed = label_mask_to_sub(changed.astype(np.float32), sub_transform, self.shot.crop_size, size)
        render_sub = np.asarray(render_sub, np.float32)
        remnants = plate_remnants(render_sub, plate, rules, sub_transform, self.shot.crop_size, size, render_px)
        if remnants is not None:  # what the labels were too coarse to remove: the render, band and all
            removed = remnants if removed is None else np.maximum(removed, remnants)
        outside = outside_openings(rules, sub_transform, self.shot.crop_size, size)
        render_sub = self._plate_around_fills(render_sub, plate, changed, rules, sub_transform, size, render_px,
                                              remnants, outside)
        out = split_bands(render_sub, plate, sigma, replacements, donor_sigma, removed)
        weights = [w for w, band in replacements if band is None] + ([remnants] if remnants is not None else [])
        if outside is not None:  # the plate kept there has its own grain
            weights = [w * (1.0 - outside) for w in weights]
        grain = self._regrain(out, plate, weights, removed, frame, box, sigma)
        return out, DetailResult("plate", sigma, donors, shifts or None, grain, remnants)

    def _plate_around_fills(self, render: np.ndarray, plate: np.ndarray, changed: np.ndarray,
                            rules: Sequence[EditRule], sub_transform: CropTransform, size: tuple[int, int],
                            render_px: float, remnants: np.ndarray | None = None,
                            outside: np.ndarray | None = None) -> np.ndarray:
        """``render`` with the plate in place of it around each :class:`~vq_models.edits.spec.FilledRegion`,
        where no label changed: removing teeth re-lights neither the lips nor the tongue, and Stage II, shown a
        fill it never saw, redraws them too (lp_d13's tongue turned orange). Within the renderer's reach
        (:data:`~vq_models.composite.RENDER_REACH_PX`) of a fill; the changed pixels' own weight (grown and
        feathered like a changed region) keeps the render, except ``outside`` the openings emptied
        (:func:`outside_openings`), and so do the ``remnants`` (:func:`plate_remnants`)."""
        fills = [r.filled for r in rules if isinstance(r, FilledRegion)]
        if not fills or not changed.any():
            return render
        label_px = render_px * self.render_size / changed.shape[0]
        reach = 2 * (RENDER_REACH_PX + 2) + 1  # and the alpha's feather beyond it
        near = cv2.dilate(np.any(fills, axis=0).astype(np.uint8), np.ones((reach, reach), np.uint8))
        keep = (1.0 - self._region_weight(changed, sub_transform, size, label_px)) \
            * label_mask_to_sub(near.astype(np.float32), sub_transform, self.shot.crop_size, size)
        if outside is not None:
            keep = np.maximum(keep, outside)
        if remnants is not None:
            keep = keep * (1.0 - remnants)
        return render + np.clip(keep, 0.0, 1.0)[..., None] * (plate - render)

    def _regrain(self, out: np.ndarray, plate: np.ndarray, render_weights: Sequence[np.ndarray],
                 removed: np.ndarray | None, frame: int, box: tuple[int, int, int, int], sigma: float) -> float | None:
        """Add the plate's grain (:mod:`vq_models.grain`) where the render's own band replaced the plate's, in
        place; measured on the pixels the edit kept around them. Returns the grain's mean sigma (None: no render
        band, or a plate without grain)."""
        if not render_weights:
            return None
        share = np.clip(sum(render_weights), 0.0, 1.0)
        bounds = alpha_bounds(share)
        if bounds is None:
            return None
        h, w = share.shape
        x0, y0, x1, y1 = _reach_box([share], GRAIN_REACH * sigma, (w, h))
        kept = np.ones((y1 - y0, x1 - x0), bool) if removed is None else removed[y0:y1, x0:x1] <= 0.0
        profile = measure_grain(plate[y0:y1, x0:x1], kept)
        if profile.empty:
            return None
        bx0, by0, bx1, by1 = bounds
        region = out[by0:by1, bx0:bx1]
        noise = synthesize_grain(profile, region.mean(axis=2), frame, (box[0] + bx0, box[1] + by0))
        region += share[by0:by1, bx0:bx1, None] * noise
        return round(float(profile.sigma.mean()), 5)

    def _region_weight(self, mask: np.ndarray, sub_transform: CropTransform, size: tuple[int, int],
                       label_px: float) -> np.ndarray:
        """A changed (or moved-to) label region's weight on the window: grown by one label pixel, resampled and
        feathered by ``feather`` label pixels."""
        grown = cv2.dilate(np.asarray(mask, np.uint8), np.ones((3, 3), np.uint8))
        weight = label_mask_to_sub(grown, sub_transform, self.shot.crop_size, size)
        return np.clip(gaussian(weight, self.settings.feather * label_px), 0.0, 1.0)

    def _moved_bands(self, plate: np.ndarray, moves: Sequence[DetailMove], sub_transform: CropTransform,
                     size: tuple[int, int], label_size: int, render_px: float,
                     sigma: float) -> tuple[list[tuple[np.ndarray, DonorBand]], list[tuple[float, float]]]:
        """Per moved part: its weight on the window (landed pixels, grown and feathered like a changed region)
        and this frame's plate band from its shift back, over the weight's box (:data:`DONOR_REACH` sigmas
        out); with each shift in plate pixels."""
        label_px = render_px * self.render_size / label_size
        out, shifts = [], []
        for move in moves:
            weight = self._region_weight(move.landed, sub_transform, size, label_px)
            if alpha_bounds(weight) is None:
                continue
            x0, y0, x1, y1 = _reach_box([weight], sigma, size)
            if move.pull is not None:
                pixels, (dx, dy), shown = self._pulled(plate, move.pull, sub_transform, label_size, (x0, y0, x1, y1))
                weight[y0:y1, x0:x1] *= shown  # the box holds all of the weight (it reaches beyond it)
                if alpha_bounds(weight) is None:
                    continue
            else:
                crop_shift = np.asarray(move.shift, np.float64) * (self.shot.crop_size / label_size)
                dx, dy = sub_transform.plate_vector(crop_shift)
                # each pixel of the box takes the plate pixel the part came from: (x, y) - (dx, dy)
                m = np.array([[1.0, 0.0, x0 - dx], [0.0, 1.0, y0 - dy]])
                pixels = cv2.warpAffine(plate, m, (x1 - x0, y1 - y0),
                                        flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
            out.append((weight, DonorBand.of(pixels, sigma, origin=(x0, y0))))
            shifts.append((round(float(dx), 2), round(float(dy), 2)))
        return out, shifts

    def _pulled(self, plate: np.ndarray, pull: ColumnPull | JawPull, sub_transform: CropTransform, label_size: int,
                box: tuple[int, int, int, int]) -> tuple[np.ndarray, tuple[float, float], np.ndarray]:
        """The plate over ``box`` with each pixel taken from ``pull`` rows back along the crop's vertical (the
        frame's own lid pulled down, its own lip moved), the largest pull (by size, with its sign) in plate
        pixels, and how much of it shows at each pixel of the box (``pull.weight_at``)."""
        x0, y0, x1, y1 = box
        k = self.shot.crop_size / float(label_size)
        per_row = sub_transform.plate_vector((0.0, k))
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        crop = sub_transform.to_crop(np.stack([xs.ravel(), ys.ravel()], axis=1))
        u, v = (crop[:, 0] + 0.5) / k - 0.5, (crop[:, 1] + 0.5) / k - 0.5
        rows = pull.rows_at(u, v).reshape(xs.shape)
        shown = pull.weight_at(u, v).reshape(xs.shape)
        map_x = (xs - rows * per_row[0]).astype(np.float32)
        map_y = (ys - rows * per_row[1]).astype(np.float32)
        pixels = cv2.remap(plate, map_x, map_y, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)
        most = float(rows.flat[int(np.argmax(np.abs(rows)))]) if rows.size else 0.0  # signed: up or down
        return pixels, (float(most * per_row[0]), float(most * per_row[1])), shown

    def _donor_band(self, donor: int, weights: Sequence[np.ndarray], sub_transform: CropTransform,
                    size: tuple[int, int], sigma: float) -> DonorBand:
        """``donor``'s band at ``sigma`` around the boxes of ``weights`` (on the render window), read, warped
        and split only there: :data:`DONOR_REACH` sigmas of margin so the blur sees what it would over the
        whole window."""
        x0, y0, x1, y1 = _reach_box(weights, sigma, size)
        box_transform = sub_transform.windowed(x0, y0)
        donor_transform = self.shot.transform(donor)
        window = donor_window(donor_transform, box_transform, (x1 - x0, y1 - y0), self.shot.plate_size)
        pixels = warp_donor(self.plates.read(donor, window), donor_transform, box_transform, (x1 - x0, y1 - y0),
                            origin=window[:2])
        return DonorBand.of(pixels, sigma, origin=(x0, y0))
