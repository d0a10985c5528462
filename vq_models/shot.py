"""The shot directory: what `vqedit prep` writes and every later stage reads.

Layout (see docs/architecture.md)::

    SHOT/shot.json, tracking.json, transforms.json,
    aligned/, overlay/, masks/fg/, masks/roi/  (frame.%04d.png, crop space)
    stage1/ (meta.json, labels/frame.%04d.png, ...), stage2/ (meta.json, ...), prior.json

:class:`ShotLayout` names every path in it (usable before the shot exists, e.g. to ask whether a stage is
trained); :class:`Shot` reads a prepared shot; :class:`ShotWriter` writes one, frame by frame,
atomically. Keeping them in one module means the layout is defined once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vq_models.errors import InputError
from vq_models.face.topology import EYE_CENTRES
from vq_models.io.atomic import atomic_write_json
from vq_models.io.images import read_image, write_image
from vq_models.io.jsonfile import read_json

SHOT_VERSION = 1
FRAME_NAME = "frame.{:04d}.png"
IMAGE_DIRS = {"aligned": "aligned", "overlay": "overlay", "fg": "masks/fg", "roi": "masks/roi"}
STAGE1_DIR = "stage1"
STAGE2_DIR = "stage2"
META_FILE = "meta.json"  # in stage1/ and stage2/: written last, so its presence marks a complete model
LABEL_DIR = "labels"  # in stage1/: one uint8 code map per frame, FRAME_NAME
PRIOR_FILE = "prior.json"
SHOT_FILE = "shot.json"  # the shot's frames, crop size and plate source
TRANSFORMS_FILE = "transforms.json"  # each frame's plate <-> crop transform
TRACKING_FILE = "tracking.json"  # each frame's tracked landmarks, contours and mesh in plate pixels


@dataclass(frozen=True)
class CropTransform:
    """Similarity transform between plate pixels and crop pixels (2x3 affine matrices, pixel centres)."""

    plate_to_crop: np.ndarray  # (2, 3) float64
    crop_to_plate: np.ndarray  # (2, 3) float64

    @staticmethod
    def from_plate_to_crop(matrix: np.ndarray) -> CropTransform:
        m = np.asarray(matrix, dtype=np.float64).reshape(2, 3)
        full = np.vstack([m, [0.0, 0.0, 1.0]])
        inv = np.linalg.inv(full)[:2]
        return CropTransform(m, inv)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return p @ self.plate_to_crop[:, :2].T + self.plate_to_crop[:, 2]

    def windowed(self, x: float, y: float) -> CropTransform:
        """The transform for a window of the plate whose top-left pixel is plate pixel (``x``, ``y``): work
        on a face's box of a 4K plate indexes that box's pixels from 0."""
        shift = np.array([[1.0, 0.0, float(x)], [0.0, 1.0, float(y)], [0.0, 0.0, 1.0]])
        return CropTransform.from_plate_to_crop(np.asarray(self.plate_to_crop, np.float64) @ shift)

    def to_plate(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return p @ self.crop_to_plate[:, :2].T + self.crop_to_plate[:, 2]

    def plate_vector(self, crop_vector: tuple[float, float] | np.ndarray) -> np.ndarray:
        """A displacement (dx, dy) in crop pixels as a displacement in plate pixels (the linear part only):
        how far and which way a part moved in the crop moves on the plate."""
        return np.asarray(self.crop_to_plate, np.float64)[:, :2] @ np.asarray(crop_vector, np.float64)

    def plate_box(self, corners: np.ndarray, size: tuple[int, int], margin: int) -> tuple[int, int, int, int]:
        """The plate box (x0, y0, x1, y1) holding crop-space ``corners`` (N, 2) plus ``margin`` pixels, clipped to
        the plate (w, h) = ``size`` and never empty: where work on part of a crop needs plate pixels."""
        pts = self.to_plate(corners)
        w, h = int(size[0]), int(size[1])
        x0 = int(np.clip(np.floor(pts[:, 0].min()) - margin, 0, w))
        y0 = int(np.clip(np.floor(pts[:, 1].min()) - margin, 0, h))
        x1 = int(np.clip(np.ceil(pts[:, 0].max()) + margin + 1, x0 + 1, w))
        y1 = int(np.clip(np.ceil(pts[:, 1].max()) + margin + 1, y0 + 1, h))
        return min(x0, x1 - 1), min(y0, y1 - 1), x1, y1

    def to_json(self) -> dict[str, Any]:
        return {"plate_to_crop": self.plate_to_crop.tolist(), "crop_to_plate": self.crop_to_plate.tolist()}


def _read_png(path: Path, channels: int) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"{path}: missing from the shot directory (run `vqedit prep` again?)")
    px = read_image(path, allow_mono=channels == 1).pixels
    if channels == 1:
        return np.ascontiguousarray(px[..., 0], dtype=np.float32)
    return np.ascontiguousarray(px[..., :3], dtype=np.float32)


@dataclass
class ShotLayout:
    """Where everything of a shot lives, relative to its root: one definition for every reader and writer."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)  # callers may hold the shot folder as a string

    @property
    def stage1_dir(self) -> Path:
        return self.root / STAGE1_DIR

    @property
    def stage2_dir(self) -> Path:
        return self.root / STAGE2_DIR

    @property
    def stage1_meta_path(self) -> Path:
        return self.stage1_dir / META_FILE

    @property
    def stage2_meta_path(self) -> Path:
        return self.stage2_dir / META_FILE

    @property
    def label_dir(self) -> Path:
        return self.stage1_dir / LABEL_DIR

    def label_path(self, frame: int) -> Path:
        """Stage I's label map of ``frame`` (uint8 codes, crop space)."""
        return self.label_dir / FRAME_NAME.format(int(frame))

    @property
    def prior_path(self) -> Path:
        return self.root / PRIOR_FILE

    @property
    def meta_path(self) -> Path:
        """shot.json: written last by prep, so a folder holding it is a complete shot."""
        return self.root / SHOT_FILE

    @property
    def transforms_path(self) -> Path:
        return self.root / TRANSFORMS_FILE

    @property
    def tracking_path(self) -> Path:
        return self.root / TRACKING_FILE

    def image_path(self, kind: str, frame: int) -> Path:
        return self.root / IMAGE_DIRS[kind] / FRAME_NAME.format(frame)

    def stage1_num_codes(self) -> int:
        """K from stage1/meta.json (an InputError when Stage I is not trained or K is unreadable)."""
        path = self.stage1_meta_path
        meta = read_json(path, "missing (run `vqedit train SHOT --stage 1` first)")
        k = meta.get("num_codes")
        if not isinstance(k, int) or not 1 <= k <= 256:
            raise InputError(f"{path}: num_codes: expected an integer in 1..256, got {k!r}")
        return k


@dataclass
class Shot(ShotLayout):
    """Read access to a prepared shot."""

    meta: dict[str, Any] = field(default_factory=dict)
    _transforms: dict[int, CropTransform] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: str | Path) -> Shot:
        root = Path(path)
        meta_path = ShotLayout(root).meta_path
        if not meta_path.is_file():
            raise InputError(f"{root}: not a shot directory (no shot.json; run `vqedit prep` first)")
        meta = read_json(meta_path)
        if not isinstance(meta, dict):
            raise InputError(f"{meta_path}: expected a JSON object")
        for key in ("version", "frames", "crop_size"):
            if key not in meta:
                raise InputError(f"{meta_path}: missing key {key!r}")
        return cls(root=root, meta=meta)

    # --- description -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.root.name)

    @property
    def frames(self) -> list[int]:
        return [int(f) for f in self.meta["frames"]]

    @property
    def crop_size(self) -> int:
        return int(self.meta["crop_size"])

    @property
    def plate(self) -> dict[str, Any]:
        return dict(self.meta.get("plate", {}))

    @property
    def plate_size(self) -> tuple[int, int]:
        """(width, height) of the plate's display window, from shot.json's plate description."""
        plate = self.plate
        if plate.get("display_window"):
            dw = plate["display_window"]
            return int(dw[2]), int(dw[3])
        if plate.get("width") and plate.get("height"):
            return int(plate["width"]), int(plate["height"])
        raise InputError(f"{self.root}/shot.json: plate has no display_window or width/height")

    def stale_alignment(self) -> str | None:
        """Why this shot's crops should be prepped again, or None. A shot MediaPipe tracked before prep
        recorded its eye-centre convention was aligned on the iris centres, so its crop moves with every
        glance and blink (``benchmarks/crop_stability.py``) and what the edits borrow across frames carries
        that shift. The shot still works; re-prepping and retraining it is what mends it."""
        prep = self.meta.get("prep") or {}
        if not str(prep.get("tool", "")).startswith("mediapipe") or prep.get("eye_centres") == EYE_CENTRES:
            return None
        return (f"{self.root}: prepped with the crop aligned on the iris centres, which move with glances and "
                f"blinks (now: the eye corners); run `vqedit prep` and both training stages again to mend it")

    def _check_frame(self, frame: int) -> None:
        if frame not in set(self.frames):
            raise InputError(f"{self.root}: frame {frame} is not in the shot ({self.frames[0]}-{self.frames[-1]})")

    # --- per-frame data (crop space) ------------------------------------------------------------
    def aligned(self, frame: int) -> np.ndarray:
        """Ground-truth crop c: float32 (S, S, 3) display sRGB in [0, 1]."""
        self._check_frame(frame)
        return _read_png(self.image_path("aligned", frame), 3)

    def overlay(self, frame: int) -> np.ndarray:
        """Overlaid input ĉ (local face overlay over c): float32 (S, S, 3)."""
        self._check_frame(frame)
        return _read_png(self.image_path("overlay", frame), 3)

    def fg_mask(self, frame: int) -> np.ndarray:
        """Foreground (face) mask, float32 (S, S) in [0, 1]."""
        self._check_frame(frame)
        return _read_png(self.image_path("fg", frame), 1)

    def roi_mask(self, frame: int) -> np.ndarray:
        """ROI (eyes, lips, mouth) mask, float32 (S, S) in [0, 1]."""
        self._check_frame(frame)
        return _read_png(self.image_path("roi", frame), 1)

    def transform(self, frame: int) -> CropTransform:
        if not self._transforms:
            path = self.transforms_path
            data = read_json(path, "missing from the shot directory")
            for key, entry in data.get("frames", {}).items():
                self._transforms[int(key)] = CropTransform(
                    np.asarray(entry["plate_to_crop"], dtype=np.float64),
                    np.asarray(entry["crop_to_plate"], dtype=np.float64),
                )
        if frame not in self._transforms:
            raise InputError(f"{self.transforms_path}: no transform for frame {frame}")
        return self._transforms[frame]


class ShotWriter:
    """Writes a shot directory (``write_frame`` is thread-safe). Frames first (`write_frame`), then `finish` writes shot.json last, so a
    directory with a shot.json is always complete."""

    def __init__(self, root: str | Path, crop_size: int, plate: dict[str, Any], name: str | None = None):
        self.root = Path(root)
        self.crop_size = int(crop_size)
        self.plate = plate
        self.name = name or self.root.name
        self.frames: list[int] = []
        self.transforms: dict[int, CropTransform] = {}
        self._lock = threading.Lock()  # write_frame may be called from several encoder threads
        for sub in IMAGE_DIRS.values():
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def write_frame(
        self,
        frame: int,
        aligned: np.ndarray,
        overlay: np.ndarray,
        fg_mask: np.ndarray,
        roi_mask: np.ndarray,
        transform: CropTransform,
    ) -> None:
        s = self.crop_size
        for what, img, chans in (("aligned", aligned, 3), ("overlay", overlay, 3), ("fg", fg_mask, 1), ("roi", roi_mask, 1)):
            arr = np.asarray(img, dtype=np.float32)
            if arr.ndim == 2:
                arr = arr[..., None]
            if arr.shape[:2] != (s, s) or arr.shape[2] != chans:
                raise ValueError(f"{what} for frame {frame}: shape {arr.shape}, expected ({s}, {s}, {chans})")
            write_image(self.root / IMAGE_DIRS[what] / FRAME_NAME.format(frame), np.clip(arr, 0.0, 1.0), dtype="uint8")
        with self._lock:
            self.frames.append(int(frame))
            self.transforms[int(frame)] = transform

    def finish(self, extra: dict[str, Any] | None = None) -> Shot:
        frames = sorted(self.frames)
        layout = ShotLayout(self.root)
        atomic_write_json(
            layout.transforms_path,
            {"version": SHOT_VERSION, "frames": {str(f): self.transforms[f].to_json() for f in frames}},
        )
        meta = {
            "version": SHOT_VERSION,
            "name": self.name,
            "crop_size": self.crop_size,
            "frames": frames,
            "plate": self.plate,
        }
        meta.update(extra or {})
        atomic_write_json(layout.meta_path, meta)
        return Shot.open(self.root)
