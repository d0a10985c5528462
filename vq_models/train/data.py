"""Shot frame data for training: label maps, temporal windows, one-hot conditioning, targets and masks,
and the train / held-out split.

Why everything is preloaded: Stage II shots at CPU sizes are a few MB; holding frames in memory keeps
the training loop free of PNG decoding. Held-out (validation) frames are split off by *position* in the
shot before any target is read for training, and the training set records the indices it holds so tests
can assert they never include a held-out frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from vq_models.edits.prior import load_prior
from vq_models.errors import InputError
from vq_models.io.images import read_label_map
from vq_models.shot import Shot

UNASSIGNED = "unassigned"


def load_label_maps(shot: Shot, num_codes: int) -> dict[int, np.ndarray]:
    """All Stage I label maps of the shot, checked for size and code range."""
    maps: dict[int, np.ndarray] = {}
    size = None
    for frame in shot.frames:
        path = shot.label_path(frame)
        if not path.is_file():
            raise InputError(f"{path}: label map missing (run `vqedit train SHOT --stage 1` first)")
        lab = read_label_map(path)
        if lab.ndim != 2 or lab.shape[0] != lab.shape[1]:
            raise InputError(f"{path}: label map must be square, got {lab.shape}")
        if size is None:
            size = lab.shape
        elif lab.shape != size:
            raise InputError(f"{path}: label map is {lab.shape}, other frames are {size}")
        if int(lab.max()) >= num_codes:
            raise InputError(f"{path}: code {int(lab.max())} >= num_codes {num_codes} from stage1/meta.json")
        maps[frame] = lab
    return maps


@dataclass(frozen=True)
class ChannelMapping:
    """Which one-hot channel each code goes to: identity for raw codes, groups for an artist prior."""

    lut: np.ndarray  # (256,) int64
    names: list[str]
    prior: dict[str, list[int]] | None = None

    @property
    def num_channels(self) -> int:
        return len(self.names)

    @staticmethod
    def raw(num_codes: int) -> ChannelMapping:
        lut = np.zeros(256, np.int64)
        lut[:num_codes] = np.arange(num_codes)
        return ChannelMapping(lut, [f"code_{k}" for k in range(num_codes)])

    @staticmethod
    def from_prior(segments: dict[str, list[int]], num_codes: int, where: str = "prior.json") -> ChannelMapping:
        """Group codes by the prior's segments; codes in no segment share an extra ``unassigned`` group."""
        lut = np.full(256, -1, np.int64)
        names = list(segments)
        for gi, (name, codes) in enumerate(segments.items()):
            for c in codes:
                if not isinstance(c, int) or not 0 <= c < num_codes:
                    raise InputError(f"{where}: segments[{name!r}]: code {c!r} is not in 0..{num_codes - 1}")
                if lut[c] >= 0:
                    raise InputError(f"{where}: segments[{name!r}]: code {c} is already in segment {names[lut[c]]!r}")
                lut[c] = gi
        if (lut[:num_codes] < 0).any():
            lut[:num_codes][lut[:num_codes] < 0] = len(names)
            names.append(UNASSIGNED)
        lut[lut < 0] = 0
        return ChannelMapping(lut, names, {k: list(v) for k, v in segments.items()})


def read_prior(path: str | Path, num_codes: int) -> ChannelMapping:
    """The artist prior at ``path`` (parsed and checked by edits.prior, its one parser) as Stage II's
    channel mapping for a shot with ``num_codes`` codes."""
    prior = load_prior(path, num_codes)
    return ChannelMapping.from_prior(prior.segments, num_codes, str(path))


def window_indices(position: int, count: int) -> tuple[int, int, int]:
    """Positions of t-1, t, t+1 in a shot of ``count`` frames; the first/last frame repeat at the edges."""
    return max(position - 1, 0), position, min(position + 1, count - 1)


def label_window(frames: list[int], labels: dict[int, np.ndarray], position: int) -> np.ndarray:
    """uint8 (3, L, L) codes for the frames around ``frames[position]``."""
    return np.stack([labels[frames[i]] for i in window_indices(position, len(frames))])


def codes_to_onehot(codes: Tensor, lut: Tensor, num_channels: int) -> Tensor:
    """(B, T, L, L) integer codes → (B, T*C, L, L) float one-hot (frame-major channel order), on the codes'
    device. Scattered straight into float32: ``F.one_hot`` builds an int64 (B, T, L, L, C) tensor first,
    which at K=128 and 128² labels is 200 MB a batch and, built on the CPU, was most of a GPU step."""
    ch = lut.to(codes.device).long()[codes.long()]  # (B, T, L, L)
    b, t, h, w = ch.shape
    onehot = torch.zeros(b, t, num_channels, h, w, device=codes.device)
    onehot.scatter_(2, ch.unsqueeze(2), 1.0)
    return onehot.reshape(b, t * num_channels, h, w)


def split_frames(count: int, val_every: int) -> tuple[list[int], list[int]]:
    """(train positions, held-out positions): every ``val_every``-th frame is held out (positions
    val_every-1, 2*val_every-1, ...). Shots shorter than ``val_every`` but with 3+ frames hold out the
    middle frame so quality is always measured on something unseen. ``val_every`` <= 0 holds out nothing."""
    if val_every <= 0 or count < 2:
        return list(range(count)), []
    held = [i for i in range(count) if (i + 1) % val_every == 0]
    if not held and count >= 3:
        held = [count // 2]
    held_set = set(held)
    return [i for i in range(count) if i not in held_set], held


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    if img.shape[0] == size and img.shape[1] == size:
        return img.astype(np.float32)
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(img.astype(np.float32), (size, size), interpolation=interp)


@dataclass
class FrameSet:
    """Preloaded tensors for a list of shot positions."""

    positions: list[int]
    frames: list[int]
    windows: Tensor  # (N, 3, L, L) uint8 codes
    targets: Tensor  # (N, 3, R, R) float [0, 1]
    fg: Tensor  # (N, 1, R, R)
    roi: Tensor  # (N, 1, R, R)
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.positions)


def load_frame_set(
    shot: Shot, labels: dict[int, np.ndarray], positions: list[int], render_size: int
) -> FrameSet:
    """Windows, resized targets and masks for the shot frames at ``positions`` (only those are read)."""
    frames_all = shot.frames
    windows, targets, fgs, rois = [], [], [], []
    for pos in positions:
        frame = frames_all[pos]
        windows.append(label_window(frames_all, labels, pos))
        targets.append(_resize(shot.aligned(frame), render_size))
        fgs.append(_resize(shot.fg_mask(frame), render_size))
        rois.append(_resize(shot.roi_mask(frame), render_size))
    r = render_size
    lsize = next(iter(labels.values())).shape[0] if labels else 0
    return FrameSet(
        positions=list(positions),
        frames=[frames_all[p] for p in positions],
        windows=torch.from_numpy(np.stack(windows)) if windows else torch.zeros(0, 3, lsize, lsize, dtype=torch.uint8),
        targets=torch.from_numpy(np.stack(targets)).permute(0, 3, 1, 2).contiguous() if targets else torch.zeros(0, 3, r, r),
        fg=torch.from_numpy(np.stack(fgs))[:, None].clamp(0, 1) if fgs else torch.zeros(0, 1, r, r),
        roi=torch.from_numpy(np.stack(rois))[:, None].clamp(0, 1) if rois else torch.zeros(0, 1, r, r),
    )


def random_shifts(count: int, max_shift: int, seed: int, step: int, rank: int = 0) -> Tensor:
    """(count, 2) integer (dy, dx) in [-max_shift, max_shift] for step ``step``: a pure function of
    (seed, step, rank) like the batch draw, so a resumed run shifts exactly as a straight one."""
    gen = torch.Generator().manual_seed(((seed * 1_000_003 + step) * 64 + rank) * 2 + 1)
    return torch.randint(-max_shift, max_shift + 1, (count, 2), generator=gen)


def shift_images(x: Tensor, shifts: Tensor, scale: float = 1.0) -> Tensor:
    """Translate each (C, H, W) image of ``x`` by its ``shifts`` row (dy, dx) × ``scale`` pixels (rounded),
    repeating the edge row/column into the vacated border. Index-based, so it works for uint8 codes and
    float images alike and codes never blend."""
    out = torch.empty_like(x)
    h, w = x.shape[-2:]
    for i in range(x.shape[0]):
        dy, dx = (int(round(float(v) * scale)) for v in shifts[i])
        ys = (torch.arange(h, device=x.device) - dy).clamp(0, h - 1)
        xs = (torch.arange(w, device=x.device) - dx).clamp(0, w - 1)
        out[i] = x[i].index_select(-2, ys).index_select(-1, xs)
    return out
