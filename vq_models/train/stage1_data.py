"""Stage I's training data: every frame of the shot in memory, and the deterministic batch order.

Why apart from the loop: ``vqedit recluster`` and the Stage I sweep benchmark read the same frames to
re-run the codebook on a trained network, without training anything.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data.distributed import DistributedSampler

from vq_models.shot import Shot
from vq_models.stage1_model import resize_to_input, stored_8bit

__all__ = ["ShotFrames", "BatchOrder"]


class ShotFrames(torch.utils.data.Dataset):
    """All frames of a shot in memory at ``size``² as uint8: overlay ĉ, aligned c, fg and ROI masks.

    uint8 keeps a paper-size shot (1000 frames at 256²) around half a gigabyte; PNGs are 8-bit anyway.
    """

    def __init__(self, shot: Shot, size: int):
        self.frames = shot.frames
        n = len(self.frames)
        self.data = torch.empty(n, 8, size, size, dtype=torch.uint8)
        for i, f in enumerate(self.frames):
            planes = [shot.overlay(f), shot.aligned(f), shot.fg_mask(f)[..., None], shot.roi_mask(f)[..., None]]
            planes = [resize_to_input(p, size).reshape(size, size, -1) for p in planes]
            stacked = np.concatenate(planes, axis=2)
            self.data[i] = torch.from_numpy(stored_8bit(stacked)).permute(2, 0, 1)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> Tensor:
        return self.data[i]

    def batch(self, indices: list[int], device: torch.device) -> dict[str, Tensor]:
        """Network tensors: ĉ and c foreground-masked in [-1, 1], fg and roi in [0, 1] (B, 1, S, S)."""
        raw = self.data[indices].to(device).float() / 255.0
        fg, roi = raw[:, 6:7], raw[:, 7:8]
        return {
            "input": (raw[:, 0:3] * fg) * 2 - 1,
            "target": (raw[:, 3:6] * fg) * 2 - 1,
            "fg": fg,
            "roi": roi,
        }


class BatchOrder:
    """Deterministic batches: step s always gets the same frames, so a resumed run sees what a straight
    run would. Each epoch's order comes from a DistributedSampler (seeded, ``set_epoch``), which also
    gives each torchrun rank its own disjoint share."""

    def __init__(self, dataset: ShotFrames, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        self.batch_size = batch_size
        self._epochs: dict[int, list[int]] = {}

    def _epoch(self, e: int) -> list[int]:
        if e not in self._epochs:
            self.sampler.set_epoch(e)
            self._epochs = {e: list(iter(self.sampler))}
        return self._epochs[e]

    def indices(self, step: int) -> list[int]:
        per_epoch = len(self._epoch(0))
        out = []
        for j in range(self.batch_size):
            p = step * self.batch_size + j
            out.append(self._epoch(p // per_epoch)[p % per_epoch])
        return out
