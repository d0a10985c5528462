"""Stage I trainer: invert the shot into StyleGAN2 and learn the VQ segmentation codebook passively.

Paper Section 3.2. The run: build the StyleGAN backbone (``backbone.py``: pretrained and frozen, or the
embedded per-shot autoencoder), then ``iterations`` steps of ``stage1_step.train_step`` over the deterministic
batch order (``stage1_data.py``), checkpointing as it goes; then, on rank 0, the quantizer-only phase and
the labelling of every frame (``codebook.py``, shared with ``vqedit recluster``) and everything written
to ``SHOT/stage1``, meta.json last. Knobs and presets: ``stage1_config.py``.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from vq_models.config import config_to_dict, save_config
from vq_models.errors import InputError
from vq_models.exemplar import colourise
from vq_models.io.atomic import atomic_write_json
from vq_models.io.images import write_image
from vq_models.nets.checkpoints import LatentDiscriminator
from vq_models.nets.identity import IdentityLoss
from vq_models.nets.lpips import PerceptualLoss
from vq_models.quantizer import VectorQuantizer
from vq_models.shot import Shot
from vq_models.stage1_model import CODEBOOK_FILE, MODEL_FILE, InversionNet
from vq_models.train.backbone import StyleGANBackbone, build_backbone
from vq_models.train.checkpoint import CheckpointManager, save_weights
from vq_models.train.codebook import colour_tap_meta, settle_codebook, usage_meta, write_labels
from vq_models.train.denormals import turns_flush_to_zero_off_after
from vq_models.train.distributed import barrier, cleanup, init_distributed, unwrap, wrap_ddp
from vq_models.train.logging import TrainLogger
from vq_models.train.stage1_config import STAGE1_PRESETS, Stage1Config, check_generator_fit
from vq_models.train.stage1_data import BatchOrder, ShotFrames
from vq_models.train.stage1_step import to_loss_size, train_step
from vq_models.vq_input import region_tap_multiplier, rgb_multiplier, scale_multipliers

log = logging.getLogger("vqedit.stage1")

# STAGE1_PRESETS and Stage1Config are re-exported: this module is Stage I training's entry point
__all__ = ["Stage1Config", "STAGE1_PRESETS", "train_stage1"]


def apply_learning_rates(opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, config: Stage1Config) -> None:
    """Set the optimisers' learning rates from ``config`` (encoder group, then the generator's when it
    trains; the discriminator's). Why: ``Adam.load_state_dict`` restores the checkpoint's, so without this a
    ``--set lr_encoder=...`` given on resume would be silently ignored (Stage I has no lr schedule)."""
    for group, lr in zip(opt_g.param_groups, (config.lr_encoder, config.lr_generator), strict=False):
        group["lr"] = lr
    for group in opt_d.param_groups:
        group["lr"] = config.lr_discriminator


@turns_flush_to_zero_off_after
def train_stage1(shot_dir: str | Path, config: Stage1Config, *, device: str = "cpu", resume: bool = False,
                 progress: bool = True, stylegan: str | Path | None = None, e4e: str | Path | None = None) -> Path:
    """Run Stage I on a prepared shot and write ``SHOT/stage1``; returns that folder. Flush-to-zero is on
    while training on the CPU and off again afterwards (``denormals.py``)."""
    shot = Shot.open(shot_dir)
    if (stale := shot.stale_alignment()) is not None:  # before the hours of training it would cost
        log.warning(stale)
    out = shot.stage1_dir
    info = init_distributed(device)
    dev = info.device
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    if dev.type == "cpu":
        torch.set_flush_denormal(True)  # tiny late-training activations otherwise slow CPU convs several-fold

    backbone = build_backbone(config, stylegan, e4e)
    gen, enc = backbone.generator, backbone.encoder
    check_generator_fit(config, gen)
    resolutions = tuple(int(r) for r in config.vq_resolutions)
    multipliers = scale_multipliers([gen.channels[r] for r in resolutions], config.vq_scale_weights)
    net = InversionNet(enc, gen, backbone.latent_avg, resolutions, multipliers, rgb_multiplier(config.vq_rgb_weight),
                       rgb_multiplier(config.vq_context_weight), config.vq_context_sigma,
                       region_tap_multiplier(config.vq_region_weight)).to(dev)
    code_dim = net.vq_dim
    gen.style.requires_grad_(False)  # W+ comes from the encoder: the mapping only samples "real" W for D
    if not backbone.train_generator:
        gen.requires_grad_(False)
    gen.eval()  # no dropout/BN in StyleGAN2; eval just documents that noise is const
    disc = LatentDiscriminator(gen.style_dim).to(dev)
    vq = VectorQuantizer(num_codes=config.num_codes, dim=code_dim, decay=config.vq_decay,
                         kmeans_iters=config.kmeans_iters, dead_code_threshold=config.dead_code_threshold).to(dev)
    perceptual = PerceptualLoss(net=config.perceptual, backbone_path=config.perceptual_backbone or None).to(dev)
    perceptual.requires_grad_(False)
    identity = IdentityLoss.from_path(config.identity_weights or None) if config.lambda_sim > 0 else None
    if identity is not None:
        identity = identity.to(dev).eval()
        identity.requires_grad_(False)

    trainable = [p for p in enc.parameters()]
    groups = [{"params": trainable, "lr": config.lr_encoder}]
    if backbone.train_generator:
        groups.append({"params": [p for p in gen.parameters() if p.requires_grad], "lr": config.lr_generator})
    opt_g = torch.optim.Adam(groups, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.lr_discriminator, betas=(0.9, 0.999))
    ddp_net = wrap_ddp(net, info)
    ddp_disc = wrap_ddp(disc, info)

    data = ShotFrames(shot, config.input_size)
    if len(data) == 0:
        raise InputError(f"{shot.root}: shot has no frames")
    order = BatchOrder(data, config.batch_size, config.seed, info.rank, info.world_size)

    ckpt = CheckpointManager(out / "checkpoints", keep=2)
    modules = {"net": net, "discriminator": disc, "quantizer": vq}
    optimizers = {"opt_g": opt_g, "opt_d": opt_d}
    step, state = 0, {}
    if resume and ckpt.latest() is not None:
        step, state = ckpt.load(ckpt.latest(), modules, optimizers)
        apply_learning_rates(opt_g, opt_d, config)
        log.info("resumed Stage I at step %d from %s", step, ckpt.latest())
    elif info.is_main and (out / "checkpoints").exists():
        shutil.rmtree(out / "checkpoints")  # a fresh run must never resume from a stale, longer run
    barrier(info)
    timings = dict(state.get("timings", {}))
    timings.setdefault("train_seconds", 0.0)

    logger = TrainLogger(out / "tensorboard", config.iterations, "stage1", start_step=step, enabled=info.is_main, progress=progress)
    net.train()
    t0 = time.monotonic()
    try:
        while step < config.iterations:
            batch = data.batch(order.indices(step), dev)
            scalars = train_step(ddp_net, ddp_disc, net, disc, vq, perceptual, identity, batch, config, opt_g, opt_d)
            step += 1
            if info.is_main and (step % config.log_every == 0 or step == config.iterations):
                logger.log(step, scalars)
            if step % config.checkpoint_every == 0 or step == config.iterations:
                elapsed = timings["train_seconds"] + time.monotonic() - t0
                if info.is_main:
                    ckpt.save(step, modules, optimizers, {"timings": {**timings, "train_seconds": elapsed}})
                barrier(info)
        timings["train_seconds"] += time.monotonic() - t0
    finally:
        logger.close()

    # the export runs on rank 0 alone: leave the process group first so the quantizer's refinement
    # does not wait on all-reduces from ranks that have already finished
    barrier(info)
    cleanup(info)
    if info.is_main:
        _finish(shot, out, config, backbone, unwrap(ddp_net), vq, data, perceptual, identity, step, timings, dev)
    return out


def _finish(shot: Shot, out: Path, config: Stage1Config, backbone: StyleGANBackbone, net: InversionNet,
            vq: VectorQuantizer, data: ShotFrames, perceptual: nn.Module, identity: nn.Module | None, step: int,
            timings: dict[str, float], dev: torch.device) -> None:
    """Optional quantizer-only refinement, then labels, weights, codebook, config, meta and a preview PNG."""
    net.eval()
    t = time.monotonic()
    lloyd_passes = settle_codebook(net, vq, data, config, dev)
    timings["vq_refine_seconds"] = time.monotonic() - t

    t = time.monotonic()
    preview_rows: list[np.ndarray] = []

    def keep_preview(idx: list[int], codes: Tensor, batch: dict[str, Tensor], img: Tensor) -> None:
        for k in range(len(idx)):
            if len(preview_rows) < 4:
                preview_rows.append(_preview_row(batch, img, codes, k, config))

    usage = write_labels(net, vq, data, config, dev, shot.label_dir, on_batch=keep_preview)
    timings["label_seconds"] = time.monotonic() - t

    save_weights(out / MODEL_FILE, {"generator": net.generator, "encoder": net.encoder, "latent_avg": net.latent_avg})
    save_weights(out / CODEBOOK_FILE, {k: v for k, v in vq.state_dict().items()})
    save_config(config, out / "config.yaml")
    meta = {
        "version": 1,
        "stage": 1,
        "backbone": backbone.mode,
        "backbone_description": backbone.description,
        "backbone_sources": backbone.sources,
        "generator_trained": backbone.train_generator,
        "perceptual_backend": getattr(perceptual, "backend", type(perceptual).__name__),
        "identity_loss": identity is not None,
        "identity_note": "on" if identity is not None else "off (no ArcFace weights given or lambda_sim = 0)",
        "num_codes": config.num_codes,
        "code_dim": int(vq.dim),
        "label_size": config.label_size,
        "input_size": config.input_size,
        "resolutions": list(net.feature_resolutions),
        "steps": step,
        "vq_refine_epochs": config.vq_refine_epochs,
        "vq_refine_lloyd_passes": lloyd_passes,
        "vq_scale_weights": list(config.vq_scale_weights),
        "vq_scale_multipliers": net.vq_multipliers,
        **colour_tap_meta(config, net),
        "vq_restarts_total": int(vq.restarts_total),
        **usage_meta(usage),
        "frames": data.frames,
        "timings": {k: round(float(v), 3) for k, v in timings.items()},
        "generator": backbone.generator_config,
        "encoder": backbone.encoder_config,
        "config": config_to_dict(config),
    }
    if preview_rows:
        _write_preview(out / "preview.png", preview_rows)
    atomic_write_json(shot.stage1_meta_path, meta)  # last: its presence marks a complete Stage I model


def _preview_row(batch: dict[str, Tensor], img: Tensor, codes: Tensor, k: int, config: Stage1Config) -> np.ndarray:
    """input ĉ | target c | inversion r | labels, for a person to check the inversion and segments."""
    def rgb(t: Tensor) -> np.ndarray:
        a = ((t.detach().cpu().permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1)
        return cv2.resize(a, (config.label_size, config.label_size), interpolation=cv2.INTER_AREA).astype(np.float32)

    r = to_loss_size(img[k:k + 1], config.input_size)[0]
    lab = colourise(codes[k].numpy().astype(np.uint8), config.num_codes).astype(np.float32) / 255.0
    return np.concatenate([rgb(batch["input"][k]), rgb(batch["target"][k]), rgb(r), lab], axis=1)


def _write_preview(path: Path, rows: list[np.ndarray]) -> None:
    write_image(path, np.concatenate(rows, axis=0), dtype="uint8")
