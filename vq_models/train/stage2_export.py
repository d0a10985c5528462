"""The end of a Stage II run: held-out evaluation, the preview, the weights and meta.json.

Why apart from the loop: the held-out SSIM/PSNR are also logged during training (``eval_every``), and the
outputs are a contract read by the renderer (``stage2_model.py``), edits (``code_colours``) and the demo.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from vq_models.config import config_to_dict
from vq_models.io.atomic import atomic_write_json
from vq_models.io.images import write_image
from vq_models.metrics import psnr, ssim
from vq_models.stage2_model import generator_input
from vq_models.train.checkpoint import save_weights
from vq_models.train.data import ChannelMapping, FrameSet
from vq_models.train.logging import TrainLogger
from vq_models.train.paint_augment import CodePalette
from vq_models.train.stage2_config import Stage2Config
from vq_models.train.stage2_step import Stage2Nets

log = logging.getLogger("vqedit.train.stage2")

META_VERSION = 1


def diverged(curve: Sequence[dict], final_ssim: float | None, drop: float = 0.1) -> bool:
    """True when the final held-out SSIM fell more than ``drop`` below the best seen during training: the
    renderer blew up late (e.g. its tanh output saturated and stopped learning) and an earlier checkpoint in
    SHOT/stage2/checkpoints is the better model."""
    best = max((c["ssim"] for c in curve if c.get("ssim") is not None), default=None)
    return best is not None and final_ssim is not None and final_ssim < best - drop


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@torch.no_grad()
def render_set(G: nn.Module, windows: Tensor, lut: Tensor, nch: int, temporal: bool, device: torch.device,
               batch: int = 4) -> np.ndarray:
    """Render (N, 3, L, L) window codes in batches → float32 (N, R, R, 3) sRGB."""
    out = []
    for i in range(0, len(windows), batch):
        seg = generator_input(G, windows[i : i + batch].to(device), lut, nch, temporal)
        out.append(G(seg).permute(0, 2, 3, 1).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1, 1, 3), np.float32)


def evaluate(renders: np.ndarray, targets: np.ndarray, masks: np.ndarray) -> dict:
    """SSIM / PSNR per held-out frame inside the face mask, and their means."""
    ssims = [float(ssim(r, t, mask=m)) for r, t, m in zip(renders, targets, masks, strict=True)]
    psnrs = [psnr(r, t, m > 0.5) for r, t, m in zip(renders, targets, masks, strict=True)]
    finite = [p for p in psnrs if math.isfinite(p)]
    return {
        "ssim": float(np.nanmean(ssims)) if ssims else None,
        "psnr": float(np.mean(finite)) if finite else None,
        "ssim_per_frame": ssims,
        "psnr_per_frame": psnrs,
        "region": "fg_mask > 0.5",
        "ssim_impl": "vq_models.metrics.ssim",
    }


def preview_rows(targets: np.ndarray, renders: np.ndarray) -> np.ndarray:
    """Rows of target | render, uint8, for a person to look at."""
    rows = [np.concatenate([t, r], axis=1) for t, r in zip(targets, renders, strict=True)]
    return _to_uint8(np.concatenate(rows, axis=0))




@dataclass
class RunRecord:
    """What the run itself knows and meta.json records besides the networks: the labels it read (K, label
    size, the artist prior's channel mapping), its held-out curve, timings and where it ran."""

    num_codes: int
    label_size: int
    mapping: ChannelMapping
    prior_path: str | Path | None
    code_colours: CodePalette
    perceptual_backend: str
    curve: list[dict]
    steps: int
    train_seconds: float
    loop_seconds: float
    steps_run: int
    world_size: int
    device: torch.device


def write_outputs(out_dir: Path, config: Stage2Config, nets: Stage2Nets, train_set: FrameSet, val_set: FrameSet,
                  run: RunRecord, logger: TrainLogger) -> dict:
    """Held-out evaluation, val_preview.png, model.safetensors and meta.json (last); returns meta.json's
    ``val`` entry. Rank 0 only; ``nets.G`` in eval mode."""
    dev, step, curve = run.device, run.steps, run.curve
    meta_val: dict = {"ssim": None, "psnr": None, "frames": []}
    render_ms = None
    tr = time.monotonic()
    renders = render_set(nets.G, val_set.windows, nets.lut, nets.num_channels, config.temporal_window, dev)
    if len(val_set):
        render_ms = 1000.0 * (time.monotonic() - tr) / len(val_set)
        targets = val_set.targets.permute(0, 2, 3, 1).numpy()
        metrics = evaluate(renders, targets, val_set.fg[:, 0].numpy())
        meta_val = {**metrics, "frames": val_set.frames, "curve": curve,
                    "diverged": diverged(curve, metrics["ssim"])}
        if meta_val["diverged"]:
            log.warning("Stage II held-out SSIM fell from %.3f to %.3f at the end of training: the run "
                        "diverged; an earlier checkpoint in %s is better (or retrain with a lower lr_g)",
                        max(c["ssim"] for c in curve), metrics["ssim"], out_dir / "checkpoints")
        logger.log(step, {k: v for k, v in (("val/ssim", metrics["ssim"]), ("val/psnr", metrics["psnr"]))
                          if v is not None})
    pv = val_set if len(val_set) else train_set
    show = min(len(pv), 4)
    pr = renders[:show] if len(val_set) else render_set(nets.G, pv.windows[:show], nets.lut, nets.num_channels,
                                                        config.temporal_window, dev)
    preview = preview_rows(pv.targets[:show].permute(0, 2, 3, 1).numpy(), pr)
    write_image(out_dir / "val_preview.png", preview.astype(np.float32) / 255.0, dtype="uint8")
    logger.image(step, "val/final_target_render", preview)

    save_weights(out_dir / "model.safetensors", {"G": nets.G, "code_to_channel": nets.lut.clone()})
    colours = run.code_colours
    meta = {
        "version": META_VERSION,
        "num_codes": run.num_codes,
        "num_channels": nets.num_channels,
        "channel_names": run.mapping.names,
        "prior": {"path": str(run.prior_path), "segments": run.mapping.prior} if run.prior_path else None,
        "render_size": config.render_size,
        "label_size": run.label_size,
        "temporal_window": config.temporal_window,
        "steps": step,
        "train_frames": train_set.frames,
        "val": meta_val,
        "spike_rollbacks": [r.to_json() for r in nets.guard.rollbacks],
        # each code's mean display colour over the training frames (null: never seen); edits read
        # it to choose codes by appearance (teeth 0 fills the upper row with the darkest cavity code)
        "code_colours": [[round(float(v), 4) for v in c] if n > 0 else None
                         for c, n in zip(colours.colours, colours.pixels, strict=True)],
        "perceptual_backend": run.perceptual_backend,
        "gradient_penalty": "R1 on real images (lazy, every gp_every steps)",
        "world_size": run.world_size,
        "device": str(dev),
        "timings": {
            "train_seconds": run.train_seconds,
            "seconds_per_iter": run.loop_seconds / run.steps_run if run.steps_run else None,
            "render_ms_per_frame": render_ms,
        },
        "config": config_to_dict(config),
    }
    atomic_write_json(out_dir / "meta.json", meta)
    return meta_val
