"""Demo presets: shot size, frame count and the trainer overrides that make the demo fit its time budget.

The Stage I / Stage II ``cpu`` presets are tuned for quality (tens of minutes); the demo must finish in
≤ 10 minutes on 2 cores (``cpu``) or ≤ 2 minutes (``tiny``, what ``--quick`` and the test use). So the
demo names a trainer preset and passes ``KEY=VALUE`` overrides through the trainers' own config API
(:func:`vq_models.config.load_config`) instead of editing their presets.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from vq_models.config import config_to_dict


@dataclass(frozen=True)
class DemoConfig:
    """What the demo generates and how hard it trains."""

    frames: int = 48  # synthetic shot length
    size: int = 192  # synthetic plate size (square)
    seed: int = 0
    start: int = 1001  # first frame number
    supersample: int = 2
    crop_size: int = 128  # prep's aligned crop size
    prep_preset: str = "cpu"
    stage1_preset: str = "cpu"
    stage1_overrides: tuple[str, ...] = ("iters=600", "checkpoint_every=200", "log_every=20", "kmeans_iters=30")
    stage2_preset: str = "cpu"
    # the cpu preset at the crop's 128² with half its width and 1400 steps: the renders paste back at the
    # plate's own detail. Against a 64² render with 700 steps the edits score several dB higher for a little
    # held-out SSIM and twice the time (benchmarks/RESULTS.md)
    stage2_overrides: tuple[str, ...] = (
        "const_size=8", "ch_max=64", "batch_size=2", "iterations=1400", "checkpoint_every=700",
        "image_every=700", "log_every=20", "val_every=8",
    )
    feather: float = 4.0  # paste-back feather, plate pixels
    chunk: int = 8  # frames in flight per request window
    fps: float = 12.0  # before/after movie
    measure_frames: int = 12  # at most this many frames per what-if measurement
    contact_frames: int = 4  # rows in the contact sheet
    min_ssim: float = 0.5  # bounds the held-out reconstruction must meet (demo sizes, not the paper's)
    min_psnr: float = 18.0


DEMO_PRESETS: dict[str, DemoConfig] = {
    # --quick and the test: seconds per stage on a loaded 2-core machine
    "tiny": DemoConfig(
        frames=12, size=96, crop_size=64, supersample=1, prep_preset="tiny", stage1_preset="tiny",
        stage1_overrides=("iterations=4", "checkpoint_every=4"), stage2_preset="tiny",
        stage2_overrides=("iterations=40", "checkpoint_every=40", "image_every=40", "val_every=6"),
        feather=2.0, chunk=6, fps=8.0, measure_frames=6, contact_frames=3, min_ssim=0.3, min_psnr=14.0,
    ),
    # the README's first command: ≤ 10 minutes on 2 cores
    "cpu": DemoConfig(),
    # closer to the paper's sizes; for a machine with a GPU (`--device cuda`), not a 2-core laptop
    "paper": DemoConfig(
        frames=120, size=512, crop_size=256, stage1_overrides=("iterations=2000",),
        stage2_overrides=("render_size=256", "iterations=20000"), min_ssim=0.8, min_psnr=25.0,
    ),
}

# Fields that change what gets trained: a different value means the saved models cannot be reused.
_TRAINING_FIELDS = ("frames", "size", "seed", "start", "supersample", "crop_size", "prep_preset", "stage1_preset",
                    "stage1_overrides", "stage2_preset", "stage2_overrides")


def fingerprint(config: DemoConfig) -> str:
    """A short hash of the training-relevant fields and of the trainer configs they resolve to (stored
    beside the models to decide on reuse): a changed trainer preset must retrain, not reuse stale models."""
    from vq_models.config import load_config
    from vq_models.train.stage1 import STAGE1_PRESETS
    from vq_models.train.stage2 import load_stage2_config

    data: dict[str, Any] = {k: v for k, v in config_to_dict(config).items() if k in _TRAINING_FIELDS}
    data["stage1_resolved"] = config_to_dict(load_config(STAGE1_PRESETS, config.stage1_preset,
                                                         overrides=config.stage1_overrides))
    data["stage2_resolved"] = config_to_dict(load_stage2_config(config.stage2_preset,
                                                                overrides=config.stage2_overrides))
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def describe(config: DemoConfig) -> dict[str, Any]:
    """Plain dict of the config (for metrics.json)."""
    return dataclasses.asdict(config)
