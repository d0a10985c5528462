"""Stage II trainer (paper Sec. 3.3): learn the shot's renderer c_s = G_s(x_seg) from Stage I label maps.

Inputs: SHOT/stage1/labels (codes at label size, K from stage1/meta.json), the aligned crops (targets,
resized to ``render_size``), the foreground and ROI masks; optionally an artist prior (prior.json) that
groups codes into named segments, in which case the generator is conditioned on groups instead of codes.
The conditioning is the one-hot window t-1, t, t+1 (edge frames repeat) — the paper's temporal
stability measure.

The run: load the frames (``train/data.py``), build G and D, resume if asked, then ``iterations`` steps of
``stage2_step.train_step`` with logging, held-out evaluation every ``eval_every`` and checkpoints; then
``stage2_export.write_outputs`` on rank 0. Knobs and presets: ``stage2_config.py``.

Outputs in SHOT/stage2/: config.yaml, model.safetensors, meta.json, checkpoints/, tensorboard/,
val_preview.png (target | render per held-out frame).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vq_models.config import save_config
from vq_models.errors import InputError
from vq_models.nets.spade import MultiscaleDiscriminator
from vq_models.shot import Shot
from vq_models.stage2_model import build_generator
from vq_models.train import data as D
from vq_models.train.checkpoint import CheckpointManager
from vq_models.train.denormals import turns_flush_to_zero_off_after
from vq_models.train.distributed import DistInfo, broadcast_module, cleanup, init_distributed
from vq_models.train.logging import TrainLogger
from vq_models.train.losses import RoiPerceptualLoss, make_perceptual, perceptual_backend
from vq_models.train.paint_augment import CodePalette, code_palette
from vq_models.train.spike_guard import SpikeGuard
from vq_models.train.stage2_config import (
    SPIKE_FIELDS,
    STAGE2_PRESETS,
    Stage2Config,
    check_stage2_config,
    load_stage2_config,
)
from vq_models.train.stage2_export import RunRecord, evaluate, preview_rows, render_set, write_outputs
from vq_models.train.stage2_step import Stage2Nets, train_step

log = logging.getLogger("vqedit.train.stage2")

# the config names are re-exported: this module is Stage II training's entry point
__all__ = ["Stage2Config", "STAGE2_PRESETS", "load_stage2_config", "train_stage2", "Stage2Data", "load_stage2_data",
           "build_stage2_nets", "apply_optimiser_settings"]


@dataclass
class Stage2Data:
    """What a Stage II run trains on: the shot's label maps turned into training and held-out frame sets,
    the code -> channel mapping (raw codes or a prior's segments) and the colour palettes."""

    num_codes: int
    label_size: int
    mapping: D.ChannelMapping
    lut: torch.Tensor
    train_set: D.FrameSet
    val_set: D.FrameSet
    palette: CodePalette | None  # per-channel colours for painted batches (None: paint_prob 0)
    code_colours: CodePalette  # per-code colours, written to meta.json


def load_stage2_data(shot: Shot, config: Stage2Config, prior_path: str | Path | None = None) -> Stage2Data:
    """Load the shot's Stage I labels, crops and masks for Stage II (held-out frames every ``val_every``)."""
    num_codes = shot.stage1_num_codes()
    labels = D.load_label_maps(shot, num_codes)
    label_size = next(iter(labels.values())).shape[0]
    mapping = D.read_prior(prior_path, num_codes) if prior_path else D.ChannelMapping.raw(num_codes)
    lut = torch.from_numpy(mapping.lut)
    train_pos, val_pos = D.split_frames(len(shot.frames), config.val_every)
    if not train_pos:
        raise InputError(f"{shot.root}: no frames left for training after holding out validation frames")
    train_set = D.load_frame_set(shot, labels, train_pos, config.render_size)
    val_set = D.load_frame_set(shot, labels, val_pos, config.render_size)
    nch = mapping.num_channels
    palette = code_palette(train_set.windows, train_set.targets, lut, nch) if config.paint_prob > 0 else None
    code_colours = code_palette(train_set.windows, train_set.targets, torch.arange(num_codes), num_codes)
    return Stage2Data(num_codes, label_size, mapping, lut, train_set, val_set, palette, code_colours)


def build_stage2_nets(config: Stage2Config, data: Stage2Data, info: DistInfo) -> tuple[Stage2Nets, str]:
    """Seed, build G and D (same weights on every rank), their Adam optimisers, the perceptual term and the
    spike guard; returns the nets and the perceptual backend's name (for meta.json)."""
    dev = info.device
    nch = data.mapping.num_channels
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    G = build_generator(config, nch).to(dev)
    Dnet = MultiscaleDiscriminator(
        nch if config.d_conditional else 0, config.d_channels, config.d_layers, config.num_d, config.d_spectral_norm
    ).to(dev)
    broadcast_module(G, info)
    broadcast_module(Dnet, info)
    betas, eps = (config.beta1, config.beta2), config.adam_eps
    opt_g = torch.optim.Adam(G.parameters(), lr=config.lr_g, betas=betas, eps=eps)
    opt_d = torch.optim.Adam(Dnet.parameters(), lr=config.lr_d, betas=betas, eps=eps)
    perceptual = make_perceptual(config.perceptual, config.perceptual_backbone or None)
    use_perc = perceptual is not None and (config.lambda_lpips_roi > 0 or config.lambda_lpips_nonroi > 0)
    roi_perc = RoiPerceptualLoss(perceptual, config.lambda_lpips_roi, config.lambda_lpips_nonroi).to(dev) if use_perc else None
    guard = SpikeGuard(**{setting: getattr(config, name) for setting, name in SPIKE_FIELDS.items()})
    nets = Stage2Nets(G, Dnet, opt_g, opt_d, data.lut, nch, roi_perc, data.palette, guard, config.lambda_adv > 0)
    return nets, perceptual_backend(perceptual)


def apply_optimiser_settings(nets: Stage2Nets, config: Stage2Config) -> None:
    """Set both optimisers' betas and eps from ``config``. Why: ``Adam.load_state_dict`` restores the
    checkpoint's, so without this a ``--set beta2=...`` given on resume would be silently ignored (the
    learning rates need no such step: ``train_step`` sets them every step)."""
    for opt in nets.optimizers.values():
        for group in opt.param_groups:
            group["betas"], group["eps"] = (config.beta1, config.beta2), config.adam_eps


@turns_flush_to_zero_off_after
def train_stage2(shot_dir: str | Path, config: Stage2Config, *, device: str = "cpu", resume: bool = False,
                 progress: bool = True, prior_path: str | Path | None = None) -> Path:
    """Train the shot's Stage II renderer; returns SHOT/stage2. Works under ``torchrun`` too (gradients
    averaged over ranks, rank 0 writes). ``resume`` continues from the newest checkpoint at its step.
    Flush-to-zero is on while training and off again afterwards (``denormals.py``)."""
    check_stage2_config(config)
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    # trained SPADE weights push activations into denormals, which slow CPU convolutions (benchmarks/RESULTS.md)
    torch.set_flush_denormal(True)
    shot = Shot.open(shot_dir)
    out_dir = shot.stage2_dir
    data = load_stage2_data(shot, config, prior_path)
    num_codes, label_size, mapping = data.num_codes, data.label_size, data.mapping
    nch, lut, train_set, val_set = mapping.num_channels, data.lut, data.train_set, data.val_set

    info = init_distributed(device)
    dev = info.device
    nets, backend = build_stage2_nets(config, data, info)
    G = nets.G
    guard = nets.guard
    ckpts = CheckpointManager(out_dir / "checkpoints", keep=config.keep_checkpoints)
    modules, optims = nets.modules, nets.optimizers
    start = 0
    prev_seconds = 0.0
    if resume and ckpts.latest() is not None:
        start, state = ckpts.load(ckpts.latest(), modules, optims)
        apply_optimiser_settings(nets, config)
        prev_seconds = float(state.get("train_seconds", 0.0))
        guard.lr_factor = float(state.get("spike_lr_factor", 1.0))  # a rollback's lower lr outlives a resume
        if state.get("num_channels") not in (None, nch):
            raise InputError(f"{ckpts.latest()}: checkpoint was trained with {state['num_channels']} label channels, "
                             f"this run has {nch} (different prior?)")
        log.info("resuming Stage II at step %d", start)
    elif info.is_main and (out_dir / "checkpoints").exists():
        shutil.rmtree(out_dir / "checkpoints")  # a fresh run must not resume later from a stale one
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, out_dir / "config.yaml")

    preview_set = val_set if len(val_set) else train_set
    logger = TrainLogger(out_dir / "tensorboard", config.iterations, f"stage2 {shot.name}", start, enabled=info.is_main, progress=progress)
    t0 = time.monotonic()
    step = start
    curve: list[dict] = []  # held-out quality during training (eval_every)
    try:
        for step in range(start + 1, config.iterations + 1):
            scalars = train_step(step, config, nets, train_set, info, dev)

            if step % config.log_every == 0 or step == config.iterations:
                logger.log(step, scalars)
            if info.is_main and (step % config.image_every == 0):
                r = render_set(G, preview_set.windows[:1], lut, nch, config.temporal_window, dev)
                logger.image(step, "val/target_render", preview_rows(preview_set.targets[:1].permute(0, 2, 3, 1).numpy(), r))
            if info.is_main and config.eval_every > 0 and step % config.eval_every == 0 and step < config.iterations \
                    and len(val_set):
                G.eval()
                m = evaluate(render_set(G, val_set.windows, lut, nch, config.temporal_window, dev),
                             val_set.targets.permute(0, 2, 3, 1).numpy(), val_set.fg[:, 0].numpy())
                G.train()
                curve.append({"step": step, "ssim": m["ssim"], "psnr": m["psnr"],
                              "seconds": round(prev_seconds + time.monotonic() - t0, 1)})
                logger.log(step, {"val/ssim": m["ssim"], "val/psnr": m["psnr"]})
            if info.is_main and (step % config.checkpoint_every == 0 or step == config.iterations):
                ckpts.save(step, modules, optims, {
                    "train_seconds": prev_seconds + time.monotonic() - t0, "num_channels": nch,
                    "spike_lr_factor": guard.lr_factor,
                })
        loop_seconds = time.monotonic() - t0
        train_seconds = prev_seconds + loop_seconds
        steps_run = max(step - start, 0)

        G.eval()
        meta_val: dict = {"ssim": None, "psnr": None, "frames": []}
        if info.is_main:
            run = RunRecord(num_codes, label_size, mapping, prior_path, data.code_colours, backend, curve, step,
                            train_seconds, loop_seconds, steps_run, info.world_size, dev)
            meta_val = write_outputs(out_dir, config, nets, train_set, val_set, run, logger)
    finally:
        logger.close()
        cleanup(info, together=False)  # also runs on errors, when a peer may never reach a barrier
    if info.is_main and meta_val.get("ssim") is not None:
        log.info("Stage II held-out: SSIM %.4f, PSNR %.2f dB on %d frames", meta_val["ssim"], meta_val["psnr"] or 0.0,
                 len(val_set))
    return out_dir
