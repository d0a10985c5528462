"""Stage I trainer: invert the shot into StyleGAN2 and learn the VQ segmentation prior passively.

Paper Section 3.2. Every step: ĉ (overlaid, foreground-masked) → encoder → W+ → generator → r, with the
inversion loss λ_l2·L2 + λ_roi·LPIPS(ROI) + λ_nonroi·LPIPS(non-ROI) + λ_sim·identity + λ_dreg·delta-reg +
λ_adv·latent adversarial against the masked target c; meanwhile the generator's 64²/128²/256² feature
maps (configurable) feed the passive quantizer, which updates its codebook by Eq. 2 and never sends a
gradient back.

Two priors, one pipeline:

* **paper mode** (``stylegan=PATH`` [+ ``e4e=PATH``]): the pretrained generator is frozen; the encoder
  (pretrained e4e if given, else a light encoder from scratch) is fine-tuned on the shot.
* **embedded default** (no weights): a small StyleGAN2-architecture generator and a light encoder are
  trained together on the shot as an autoencoder (same masked loss). The mapping network gets no
  reconstruction gradient (the encoder outputs W+ directly), so it is frozen and only supplies the
  "real" W samples of the latent discriminator.

After the inversion steps an optional quantizer-only phase (``vq_refine_epochs`` passes over every frame
in order, networks frozen) lets the codebook settle on the final features: the codebook otherwise last
saw features from a still-moving encoder. It is on in the tiny/cpu presets and off in ``paper`` (the
paper does not mention it). Then every frame is labelled and everything is written to ``SHOT/stage1``.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vq_models.config import config_to_dict, save_config
from vq_models.errors import InputError
from vq_models.io.atomic import atomic_write_json
from vq_models.quantizer import CONTEXT_SIGMA, VectorQuantizer, rgb_multiplier, scale_multipliers
from vq_models.shot import Shot
from vq_models.stage1_model import (
    CODEBOOK_FILE,
    LABEL_DIR,
    LABEL_NAME,
    META_FILE,
    MODEL_FILE,
    InversionNet,
    build_encoder,
)

log = logging.getLogger("vqedit.stage1")

__all__ = ["Stage1Config", "STAGE1_PRESETS", "train_stage1", "ShotFrames", "features_in_order", "foreground_features",
           "fit_codebook"]


@dataclass(frozen=True)
class Stage1Config:
    """Stage I knobs, named after the paper (Sections 3.2 and 3.4)."""

    # networks
    image_size: int = 64  # generator output size in default mode (paper mode: the checkpoint's size)
    input_size: int = 64  # encoder input and loss resolution (e4e: 256)
    generator_max_channels: int = 64  # default-mode generator width (small_generator_config)
    encoder_channels: int = 32  # from-scratch encoder width
    encoder_kind: str = "light"  # from-scratch encoder: "light" (pooled) or "spatial" (keeps the layout)
    encoder_noise_maps: bool = False  # spatial encoder also predicts the generator's noise maps (sharper parts)
    # vector quantizer
    num_codes: int = 32  # K (paper 128)
    vq_decay: float = 0.9  # gamma of Eq. 2 (paper 1e-3; 0.9 keeps every code alive at cpu scale)
    kmeans_iters: int = 100
    dead_code_threshold: float = 2.0
    vq_resolutions: tuple[int, ...] = (16, 32, 64)  # tapped layers (paper 64, 128, 256)
    # per-tap share of the cosine distance after instance norm (() = the paper's plain concatenation,
    # where a scale's say grows with its channel count); see quantizer.scale_multipliers
    vq_scale_weights: tuple[float, ...] = ()
    # the generator's RGB output as one more tap, with this share of the cosine distance in the units of
    # vq_scale_weights (0 = features only, the paper); see quantizer.build_vq_input for why
    vq_rgb_weight: float = 0.0
    # the colour *around* each pixel (the RGB output blurred over the foreground, Gaussian sigma
    # vq_context_sigma × label width) as one more tap with this share (0 = off, the paper); see
    # quantizer.build_vq_input. Tells a catchlight on a pupil from a highlight on skin.
    vq_context_weight: float = 0.0
    vq_context_sigma: float = CONTEXT_SIGMA
    label_size: int = 64  # label map resolution (paper 256)
    vq_refine_epochs: int = 1  # quantizer-only EMA passes over all frames after inversion (0 = off)
    vq_refine_lloyd: int = 0  # then Lloyd passes over every frame's final features at once (0 = off)
    vq_refine_max_points: int = 2_000_000  # foreground feature vectors kept for the Lloyd passes
    # weight of ROI pixels (eyes, mouth) against the rest of the face in the Lloyd passes (1 = every pixel
    # counts the same); > 1 keeps skin from taking most of the K codes away from the small parts artists edit
    vq_refine_roi_weight: float = 1.0
    # the final Lloyd passes start from a fresh k-means of the final features (fit_codebook) instead of the
    # online EMA codes (False = refine the EMA codebook, closest to the paper's online quantizer)
    vq_refine_reinit: bool = False
    # loss weights (paper 3.4)
    lambda_l2: float = 5.0
    lambda_l2_roi: float = 0.0  # extra L2 inside the ROI (eyes, mouth): sharp parts, not only right colours
    lambda_lpips_roi: float = 5.0
    lambda_lpips_nonroi: float = 1.0
    lambda_sim: float = 0.1
    lambda_dreg: float = 2e-4
    lambda_adv: float = 0.1
    r1_gamma: float = 10.0  # R1 on real W for the latent discriminator (e4e's default)
    perceptual_net: str = "alex"
    perceptual_weights: str = ""  # ImageNet backbone file ("" = the built-in fallback backend)
    identity_weights: str = ""  # ArcFace IR-SE50 file ("" = identity term off, recorded in meta.json)
    # optimisation
    lr_encoder: float = 1e-3  # paper 5e-6 (fine-tuning a pretrained e4e)
    lr_discriminator: float = 1e-4  # paper 1e-6
    lr_generator: float = 1e-3  # default mode only (paper mode keeps G frozen)
    batch_size: int = 4
    iters: int = 2000
    checkpoint_every: int = 500
    log_every: int = 10
    label_batch_size: int = 8
    seed: int = 0


STAGE1_PRESETS: dict[str, Stage1Config] = {
    "tiny": Stage1Config(
        image_size=32, input_size=32, generator_max_channels=16, encoder_kind="spatial", encoder_channels=8, num_codes=8,
        vq_decay=0.9, kmeans_iters=20, dead_code_threshold=1.0, vq_resolutions=(16, 32), label_size=32,
        vq_scale_weights=(1.0, 1.0), vq_refine_epochs=1, vq_refine_lloyd=3, lambda_l2_roi=5.0, lr_encoder=2e-3, lr_discriminator=2e-4, lr_generator=2e-3, batch_size=2,
        iters=6, checkpoint_every=3, log_every=1, label_batch_size=4,
    ),
    # measured on a synthetic 120-frame shot (benchmarks/stage1_acceptance.py): a 128² generator tapped at
    # 32/64/128 with the finest tap given most say (pupil vs iris lives there), K=128, the layout-keeping encoder
    # that also predicts the generator's noise maps (ROI L2 after 400 steps 0.045 -> 0.013; mean IoU of the
    # required parts 0.41 -> 0.50-0.54, benchmarks/stage1_sweep.py), ROI L2 instead of the (fallback, slow)
    # non-ROI perceptual term, and a whole-shot Lloyd refinement of the codebook at the end. The generator's RGB
    # output joins X_VQ with weight 12 (vq_rgb_weight): on the same trained network, re-clustered with 3 seeds,
    # mean IoU of the required parts 0.53 -> 0.64-0.67, upper teeth 0.34 -> 0.78, mouth interior 0.47 -> 0.57;
    # a full 2500-step run: 0.54 -> 0.63 (upper teeth 0.44 -> 0.72); weights 2-60 tried, 12 is the best mean.
    # K=255 with a fresh final k-means weighting eye/mouth pixels 4x (vqedit recluster on that run, 3 seeds):
    # mouth interior 0.50 -> 0.61-0.63 and every required part but the pupils >= 0.67; K=200 gave 0.57-0.62.
    # The context colour tap (weight 3, sigma 1.5 label px): a fifth of the pupil's pixels sit under the
    # catchlight and had joined skin/hair highlight codes. On the 2500-step network, re-clustered with 3 seeds,
    # pupils 0.47-0.56 -> 0.75-0.76 and every required part >= 0.61; weights 2-6 and sigma 1-2.5 px tried
    # (benchmarks/stage1_sweep.py; 4000-step network: pupils 0.34-0.37 -> 0.74-0.75)
    "cpu": Stage1Config(
        image_size=128, input_size=128, generator_max_channels=32, encoder_kind="spatial", encoder_channels=16,
        encoder_noise_maps=True, vq_rgb_weight=12.0, vq_context_weight=3.0, vq_context_sigma=CONTEXT_SIGMA,
        vq_refine_reinit=True, vq_refine_roi_weight=4.0,
        num_codes=255, vq_decay=0.9, kmeans_iters=30, dead_code_threshold=2.0, vq_resolutions=(32, 64, 128),
        vq_scale_weights=(0.5, 1.0, 4.0), label_size=128, vq_refine_epochs=0, vq_refine_lloyd=15,
        lambda_l2_roi=5.0, lambda_lpips_nonroi=0.0, lr_encoder=1e-3, lr_generator=5e-3, iters=2500,
        checkpoint_every=500, log_every=50,
    ),
    "paper": Stage1Config(
        image_size=1024, input_size=256, num_codes=128, vq_decay=1e-3, kmeans_iters=100,
        dead_code_threshold=2.0, vq_resolutions=(64, 128, 256), label_size=256, vq_refine_epochs=0,
        lr_encoder=5e-6, lr_discriminator=1e-6, lr_generator=0.0, batch_size=8, iters=20000,
        checkpoint_every=1000, log_every=50,
    ),
}


# --------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------


class ShotFrames(torch.utils.data.Dataset):
    """All frames of a shot in memory at ``size``² as uint8: overlay ĉ, aligned c, fg and ROI masks.

    uint8 keeps a paper-size shot (1000 frames at 256²) around half a gigabyte; PNGs are 8-bit anyway.
    """

    def __init__(self, shot: Shot, size: int):
        import cv2

        self.frames = shot.frames
        n = len(self.frames)
        self.data = torch.empty(n, 8, size, size, dtype=torch.uint8)
        for i, f in enumerate(self.frames):
            planes = [shot.overlay(f), shot.aligned(f), shot.fg_mask(f)[..., None], shot.roi_mask(f)[..., None]]
            if planes[0].shape[0] != size:
                interp = cv2.INTER_AREA if planes[0].shape[0] > size else cv2.INTER_LINEAR
                planes = [cv2.resize(p, (size, size), interpolation=interp).reshape(size, size, -1) for p in planes]
            stacked = np.concatenate(planes, axis=2)
            self.data[i] = torch.from_numpy(np.clip(stacked * 255.0 + 0.5, 0, 255).astype(np.uint8)).permute(2, 0, 1)

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
        from torch.utils.data.distributed import DistributedSampler

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


# --------------------------------------------------------------------------------------------------
# networks
# --------------------------------------------------------------------------------------------------


@dataclass
class Prior:
    """Which StyleGAN prior Stage I runs on, and how to rebuild it at inference."""

    mode: str  # "embedded" | "pretrained"
    description: str
    generator: nn.Module
    encoder: nn.Module
    latent_avg: Tensor
    generator_config: dict[str, Any]
    encoder_config: dict[str, Any]
    train_generator: bool
    sources: dict[str, str]


def _generator_config(gen: nn.Module) -> dict[str, Any]:
    return {
        "size": int(gen.size), "style_dim": int(gen.style_dim), "n_mlp": int(gen.n_mlp),
        "channel_multiplier": int(gen.channel_multiplier),
        "channels": {str(k): int(v) for k, v in gen.channels.items()},
    }


def _encoder_kind(config: Stage1Config) -> str:
    if config.encoder_kind not in ("light", "spatial"):
        raise InputError(f"config.encoder_kind: {config.encoder_kind!r} unknown (expected 'light' or 'spatial')")
    return config.encoder_kind


def _from_scratch_encoder_config(config: Stage1Config, gen: nn.Module) -> dict[str, Any]:
    kind = _encoder_kind(config)
    if config.encoder_noise_maps and kind != "spatial":
        raise InputError("config.encoder_noise_maps needs encoder_kind 'spatial'")
    cfg = {"kind": kind, "size": config.input_size, "n_latent": gen.n_latent, "style_dim": gen.style_dim,
           "channels": config.encoder_channels}
    if config.encoder_noise_maps:
        cfg["noise_maps"] = True
    return cfg


def build_prior(config: Stage1Config, stylegan: str | Path | None, e4e: str | Path | None) -> Prior:
    """The generator/encoder pair: pretrained (paper mode) or the embedded per-shot autoencoder."""
    from vq_models.nets.stylegan2 import Generator, small_generator_config

    if stylegan is None and e4e is None:
        gen_kwargs = small_generator_config(config.image_size, config.generator_max_channels)
        gen = Generator(**gen_kwargs)
        with torch.no_grad():
            latent_avg = gen.mean_latent(4096)
        enc_cfg = _from_scratch_encoder_config(config, gen)
        return Prior("embedded", "embedded per-shot StyleGAN2 autoencoder (no pretrained weights)", gen,
                     build_encoder(enc_cfg), latent_avg, _generator_config(gen), enc_cfg, True, {})

    from vq_models.nets.checkpoints import (
        e4e_decoder_state,
        generator_from_state_dict,
        load_e4e,
        load_stylegan2,
    )

    sources: dict[str, str] = {}
    latent_avg = None
    if stylegan is not None:
        gen, latent_avg = load_stylegan2(stylegan)
        sources["stylegan"] = str(stylegan)
    else:
        gen = generator_from_state_dict(e4e_decoder_state(e4e), f"{e4e}: decoder")
    if e4e is not None:
        enc, e4e_avg, _ = load_e4e(e4e)
        sources["e4e"] = str(e4e)
        if e4e_avg is not None:
            latent_avg = e4e_avg
        if enc.style_count != gen.n_latent:
            raise InputError(f"{e4e}: encoder predicts {enc.style_count} W+ codes, generator needs {gen.n_latent}")
        enc_cfg = {"kind": "e4e", "size": int(gen.size), "input_size": int(enc.input_size)}
        desc = "pretrained StyleGAN2 (frozen) + fine-tuned e4e encoder"
    else:
        enc_cfg = _from_scratch_encoder_config(config, gen)
        enc = build_encoder(enc_cfg)
        desc = "pretrained StyleGAN2 (frozen) + light encoder trained on the shot"
    if latent_avg is None:
        with torch.no_grad():
            latent_avg = gen.mean_latent(4096)
    return Prior("pretrained", desc, gen, enc, latent_avg, _generator_config(gen), enc_cfg, False, sources)


def _check_resolutions(config: Stage1Config, gen: nn.Module) -> None:
    bad = [r for r in config.vq_resolutions if int(r) not in gen.channels]
    if bad:
        raise InputError(f"config.vq_resolutions: {bad} are not generator layers (generator has "
                         f"{sorted(gen.channels)}); pick resolutions up to {gen.size}")
    if config.num_codes < 2 or config.num_codes > 255:
        raise InputError(f"config.num_codes: {config.num_codes} must be 2..255 (labels are uint8)")
    weights = config.vq_scale_weights
    if weights and (len(weights) != len(config.vq_resolutions) or any(float(w) < 0 for w in weights)
                    or not any(float(w) > 0 for w in weights)):
        raise InputError(f"config.vq_scale_weights: {list(weights)} needs one weight >= 0 per vq_resolutions "
                         f"entry {list(config.vq_resolutions)}, at least one > 0 (or [] for plain concatenation)")
    for name in COLOUR_TAP_RULES:
        check_colour_tap(name, getattr(config, name), f"config.{name}:")


# The colour taps' valid ranges, one definition for training's config check and recluster's flags.
COLOUR_TAP_RULES: dict[str, tuple[Any, str]] = {
    "vq_rgb_weight": (lambda v: v >= 0, "must be >= 0 (0 = no RGB tap)"),
    "vq_context_weight": (lambda v: v >= 0, "must be >= 0 (0 = no context tap)"),
    "vq_context_sigma": (lambda v: 0 < v <= 0.25, "must be in (0, 0.25] (a fraction of the label width)"),
}


def check_colour_tap(name: str, value: float, label: str) -> None:
    """Raise an InputError starting with ``label`` (a config path or a command-line flag) when ``value`` is
    outside the range of colour-tap setting ``name``."""
    valid, rule = COLOUR_TAP_RULES[name]
    if not valid(value):
        raise InputError(f"{label} {value} {rule}")


# --------------------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------------------


def delta_regularizer(w: Tensor) -> Tensor:
    """e4e's L_d-reg: sum over layers i ≥ 1 of ||w_i - w_0||_2, averaged over the batch."""
    return (w[:, 1:] - w[:, :1]).norm(dim=2).sum(dim=1).mean()


def _to_loss_size(img: Tensor, size: int) -> Tensor:
    """Generator output → loss resolution (area pooling, as e4e's face_pool)."""
    if img.shape[-1] == size:
        return img
    if img.shape[-1] > size:
        return F.adaptive_avg_pool2d(img, (size, size))
    return F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------------


def train_stage1(
    shot_dir: str | Path,
    config: Stage1Config,
    *,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
    stylegan: str | Path | None = None,
    e4e: str | Path | None = None,
) -> Path:
    """Run Stage I on a prepared shot and write ``SHOT/stage1``; returns that folder.

    Flush-to-zero is on while training (CPU speed) and always turned off again afterwards: MediaPipe's
    XNNPack graphs, built later in the same process (prep in the demo), fail to prepare under it.
    """
    try:
        return _train_stage1(shot_dir, config, device=device, resume=resume, progress=progress, stylegan=stylegan, e4e=e4e)
    finally:
        torch.set_flush_denormal(False)


def _train_stage1(
    shot_dir: str | Path,
    config: Stage1Config,
    *,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
    stylegan: str | Path | None = None,
    e4e: str | Path | None = None,
) -> Path:
    """Run Stage I on a prepared shot and write ``SHOT/stage1``; returns that folder."""
    from vq_models.nets.checkpoints import LatentDiscriminator
    from vq_models.nets.identity import IdentityLoss
    from vq_models.nets.lpips import PerceptualLoss
    from vq_models.train.checkpoint import CheckpointManager
    from vq_models.train.distributed import barrier, cleanup, init_distributed, unwrap, wrap_ddp
    from vq_models.train.logging import TrainLogger

    shot = Shot.open(shot_dir)
    out = shot.stage1_dir
    info = init_distributed(device)
    dev = info.device
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    if dev.type == "cpu":
        torch.set_flush_denormal(True)  # tiny late-training activations otherwise slow CPU convs several-fold

    prior = build_prior(config, stylegan, e4e)
    gen, enc = prior.generator, prior.encoder
    _check_resolutions(config, gen)
    resolutions = tuple(int(r) for r in config.vq_resolutions)
    multipliers = scale_multipliers([gen.channels[r] for r in resolutions], config.vq_scale_weights)
    net = InversionNet(enc, gen, prior.latent_avg, resolutions, multipliers, rgb_multiplier(config.vq_rgb_weight),
                       rgb_multiplier(config.vq_context_weight), config.vq_context_sigma).to(dev)
    code_dim = net.vq_dim
    gen.style.requires_grad_(False)  # W+ comes from the encoder: the mapping only samples "real" W for D
    if not prior.train_generator:
        gen.requires_grad_(False)
    gen.eval()  # no dropout/BN in StyleGAN2; eval just documents that noise is const
    disc = LatentDiscriminator(gen.style_dim).to(dev)
    vq = VectorQuantizer(num_codes=config.num_codes, dim=code_dim, decay=config.vq_decay,
                         kmeans_iters=config.kmeans_iters, dead_code_threshold=config.dead_code_threshold).to(dev)
    perceptual = PerceptualLoss(net=config.perceptual_net, backbone_path=config.perceptual_weights or None).to(dev)
    perceptual.requires_grad_(False)
    identity = IdentityLoss.from_path(config.identity_weights or None) if config.lambda_sim > 0 else None
    if identity is not None:
        identity = identity.to(dev).eval()
        identity.requires_grad_(False)

    trainable = [p for p in enc.parameters()]
    groups = [{"params": trainable, "lr": config.lr_encoder}]
    if prior.train_generator:
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
        log.info("resumed Stage I at step %d from %s", step, ckpt.latest())
    elif info.is_main and (out / "checkpoints").exists():
        shutil.rmtree(out / "checkpoints")  # a fresh run must never resume from a stale, longer run
    barrier(info)
    timings = dict(state.get("timings", {}))
    timings.setdefault("train_seconds", 0.0)

    logger = TrainLogger(out / "tensorboard", config.iters, "stage1", start_step=step, enabled=info.is_main, progress=progress)
    net.train()
    t0 = time.monotonic()
    try:
        while step < config.iters:
            batch = data.batch(order.indices(step), dev)
            scalars = _train_step(ddp_net, ddp_disc, net, disc, vq, perceptual, identity, batch, config, opt_g,
                                  opt_d, resolutions)
            step += 1
            if info.is_main and (step % config.log_every == 0 or step == config.iters):
                logger.log(step, scalars)
            if step % config.checkpoint_every == 0 or step == config.iters:
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
        _finish(shot, out, config, prior, unwrap(ddp_net), vq, data, perceptual, identity, step, timings, dev)
    return out


def _item(t: Tensor) -> float:
    return float(t.detach())


def _train_step(ddp_net, ddp_disc, net: InversionNet, disc: nn.Module, vq: VectorQuantizer, perceptual, identity,
                batch: dict[str, Tensor], config: Stage1Config, opt_g, opt_d,
                resolutions: tuple[int, ...]) -> dict[str, float]:
    """One inversion step (encoder [+ generator]), one discriminator step, one passive VQ update."""
    gen = net.generator
    img, feats, w = ddp_net(batch["input"])
    r = _to_loss_size(img, config.input_size)
    c, roi = batch["target"], batch["roi"]
    loss_l2 = F.mse_loss(r, c)
    # ROI L2 normalised by the ROI area, so its weight does not shrink with how small the eyes are
    loss_l2_roi = ((r - c) ** 2 * roi).sum() / (roi.sum() * r.shape[1]).clamp_min(1.0)
    zero = r.new_zeros(())
    loss_roi = perceptual(r * roi, c * roi) if config.lambda_lpips_roi > 0 else zero
    loss_non = perceptual(r * (1 - roi), c * (1 - roi)) if config.lambda_lpips_nonroi > 0 else zero
    loss_dreg = delta_regularizer(w)
    flat_w = w.reshape(-1, w.shape[-1])
    disc.requires_grad_(False)  # the encoder's adversarial term must not train D (plain module: no DDP hooks)
    loss_adv = F.softplus(-disc(flat_w)).mean()
    disc.requires_grad_(True)
    total = (config.lambda_l2 * loss_l2 + config.lambda_l2_roi * loss_l2_roi + config.lambda_lpips_roi * loss_roi
             + config.lambda_lpips_nonroi * loss_non + config.lambda_dreg * loss_dreg
             + config.lambda_adv * loss_adv)
    scalars = {"loss/total": 0.0, "loss/l2": _item(loss_l2), "loss/l2_roi": _item(loss_l2_roi), "loss/lpips_roi": _item(loss_roi),
               "loss/lpips_nonroi": _item(loss_non), "loss/dreg": _item(loss_dreg), "loss/adv": _item(loss_adv)}
    if identity is not None and config.lambda_sim > 0:
        loss_sim = identity(r, c)
        total = total + config.lambda_sim * loss_sim
        scalars["loss/identity"] = _item(loss_sim)
    scalars["loss/total"] = _item(total)
    opt_g.zero_grad(set_to_none=True)
    opt_d.zero_grad(set_to_none=True)
    total.backward()
    opt_g.step()

    # latent discriminator: mapping-network W are real, encoder W+ rows are fake (+ R1 on the real ones)
    with torch.no_grad():
        real = gen.get_latent(torch.randn(flat_w.shape[0], gen.style_dim, device=flat_w.device))
    real.requires_grad_(config.r1_gamma > 0)
    pred = ddp_disc(torch.cat([real, flat_w.detach()]))  # one forward: DDP wants one per backward
    real_pred, fake_pred = pred[: real.shape[0]], pred[real.shape[0]:]
    loss_d = F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()
    if config.r1_gamma > 0:
        (grad,) = torch.autograd.grad(real_pred.sum(), real, create_graph=True)
        loss_d = loss_d + config.r1_gamma / 2 * grad.pow(2).sum(dim=1).mean()
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    scalars["loss/discriminator"] = _item(loss_d)

    # passive VQ: detached features, no grad, output never used by the networks
    x_vq = net.vq_input(feats, config.label_size, batch["fg"], img)
    _, stats = vq(x_vq, fg_mask=batch["fg"], update=True)
    scalars.update(stats.as_scalars())
    scalars["vq/restarts_total"] = float(vq.restarts_total)
    return scalars


@torch.no_grad()
def features_in_order(net: InversionNet, data: ShotFrames, config: Stage1Config, dev: torch.device):
    """Yield (frame indices, X_VQ, fg, reconstruction) over every frame in shot order."""
    n = len(data)
    for s in range(0, n, config.label_batch_size):
        idx = list(range(s, min(n, s + config.label_batch_size)))
        batch = data.batch(idx, dev)
        img, feats, _ = net(batch["input"])
        x = net.vq_input(feats, config.label_size, batch["fg"], img)
        yield idx, x, batch, img


@torch.no_grad()
def foreground_features(net: InversionNet, data: ShotFrames, config: Stage1Config, dev: torch.device) -> Tensor:
    """Every frame's foreground X_VQ vectors (N, d) as float16, evenly subsampled to at most
    ``vq_refine_max_points`` (a paper-size shot would not fit otherwise).

    With ``vq_refine_roi_weight`` w > 1, pixels outside the ROI are kept with probability 1/w, so in the
    Lloyd passes an ROI pixel weighs w times a skin pixel (weighting by sampling keeps Eq. 2's plain means)."""
    per_frame = max(1, config.vq_refine_max_points // max(1, len(data)))
    gen = torch.Generator().manual_seed(config.seed)
    keep_outside = 1.0 / max(1.0, float(config.vq_refine_roi_weight))
    chunks = []
    for _, x, batch, _ in features_in_order(net, data, config, dev):
        fg = F.interpolate(batch["fg"], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0] >= 0.5
        if keep_outside < 1.0:
            roi = F.interpolate(batch["roi"], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0] >= 0.5
            coin = torch.rand(fg.shape, generator=gen).to(fg.device) < keep_outside
            fg = fg & (roi | coin)
        for k in range(x.shape[0]):
            v = x[k].permute(1, 2, 0)[fg[k]]
            if len(v) > per_frame:
                v = v[torch.randperm(len(v), generator=gen)[:per_frame].to(v.device)]
            chunks.append(v.half())
    return torch.cat(chunks) if chunks else torch.zeros(0, net.vq_dim, dtype=torch.float16, device=dev)


def colour_tap_meta(config: Stage1Config, net: InversionNet) -> dict[str, float]:
    """The RGB and context-colour taps as meta.json records them (what Stage1Model.load rebuilds X_VQ from);
    one definition for training and ``vqedit recluster``."""
    return {
        "vq_rgb_weight": config.vq_rgb_weight,
        "vq_rgb_multiplier": net.vq_rgb_multiplier,
        "vq_context_weight": config.vq_context_weight,
        "vq_context_multiplier": net.vq_context_multiplier,
        "vq_context_sigma": net.vq_context_sigma,
    }


def fit_codebook(points: Tensor, config: Stage1Config, dim: int, dev: torch.device) -> tuple[VectorQuantizer, int]:
    """A fresh codebook for the final features: cosine k-means warm start on a sample drawn from every frame,
    then ``vq_refine_lloyd`` Lloyd passes (Eq. 2 over the whole shot). Seeded by ``config.seed``.

    Why a fresh start instead of refining the online EMA codes: those codes followed a network that kept
    changing for thousands of steps, and some end parked where early features were. On the synthetic shot
    (same trained network, 3 seeds) a fresh start scored a mean IoU of the required parts 0.65 against 0.63.
    Also what ``vqedit recluster`` runs."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    points = points[torch.randperm(len(points), generator=gen).to(points.device)]  # the warm start sees every frame
    vq = VectorQuantizer(num_codes=config.num_codes, dim=dim, decay=config.vq_decay, kmeans_iters=config.kmeans_iters,
                         dead_code_threshold=config.dead_code_threshold).to(dev)
    passes = vq.refine(points, max(1, config.vq_refine_lloyd), generator=gen)
    return vq, passes


def _finish(shot: Shot, out: Path, config: Stage1Config, prior: Prior, net: InversionNet, vq: VectorQuantizer,
            data: ShotFrames, perceptual, identity, step: int, timings: dict[str, float], dev: torch.device) -> None:
    """Optional quantizer-only refinement, then labels, weights, codebook, config, meta and a preview PNG."""
    from vq_models.io.images import write_label_map
    from vq_models.train.checkpoint import save_weights

    net.eval()
    t = time.monotonic()
    for _ in range(config.vq_refine_epochs):
        for _, x, batch, _ in features_in_order(net, data, config, dev):
            vq(x, fg_mask=batch["fg"], update=True)
    lloyd_passes = 0
    if config.vq_refine_lloyd > 0:
        points = foreground_features(net, data, config, dev)
        if config.vq_refine_reinit:
            fresh, lloyd_passes = fit_codebook(points, config, vq.dim, dev)
            vq.load_state_dict(fresh.state_dict())
        else:
            lloyd_passes = vq.refine(points, config.vq_refine_lloyd,
                                     generator=torch.Generator().manual_seed(config.seed))
        del points
    timings["vq_refine_seconds"] = time.monotonic() - t

    t = time.monotonic()
    usage = torch.zeros(config.num_codes, dtype=torch.long)
    preview_rows = []
    for idx, x, batch, img in features_in_order(net, data, config, dev):
        codes = vq.assign(x).cpu()
        fg = (F.interpolate(batch["fg"], size=codes.shape[-2:], mode="bilinear", align_corners=False)[:, 0] >= 0.5).cpu()
        usage += torch.bincount(codes[fg].flatten(), minlength=config.num_codes)
        for k, i in enumerate(idx):
            write_label_map(out / LABEL_DIR / LABEL_NAME.format(data.frames[i]), codes[k].numpy().astype(np.uint8))
            if len(preview_rows) < 4:
                preview_rows.append(_preview_row(batch, img, codes, k, config))
    timings["label_seconds"] = time.monotonic() - t

    save_weights(out / MODEL_FILE, {"generator": net.generator, "encoder": net.encoder, "latent_avg": net.latent_avg})
    save_weights(out / CODEBOOK_FILE, {k: v for k, v in vq.state_dict().items()})
    save_config(config, out / "config.yaml")
    p = usage.float() / usage.sum().clamp_min(1)
    perplexity = float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum())) if usage.sum() > 0 else 0.0
    meta = {
        "version": 1,
        "stage": 1,
        "prior": prior.mode,
        "prior_description": prior.description,
        "prior_sources": prior.sources,
        "generator_trained": prior.train_generator,
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
        "codes_used": int((usage > 0).sum()),
        "label_perplexity": perplexity,
        "code_usage": usage.tolist(),
        "frames": data.frames,
        "timings": {k: round(float(v), 3) for k, v in timings.items()},
        "generator": prior.generator_config,
        "encoder": prior.encoder_config,
        "config": config_to_dict(config),
    }
    if preview_rows:
        _write_preview(out / "preview.png", preview_rows)
    atomic_write_json(out / META_FILE, meta)  # last: its presence marks a complete Stage I model


def _preview_row(batch: dict[str, Tensor], img: Tensor, codes: Tensor, k: int, config: Stage1Config) -> np.ndarray:
    """input ĉ | target c | inversion r | labels, for a person to check the inversion and segments."""
    import cv2

    from vq_models.exemplar import colourise

    def rgb(t: Tensor) -> np.ndarray:
        a = ((t.detach().cpu().permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1)
        return cv2.resize(a, (config.label_size, config.label_size), interpolation=cv2.INTER_AREA).astype(np.float32)

    r = _to_loss_size(img[k:k + 1], config.input_size)[0]
    lab = colourise(codes[k].numpy().astype(np.uint8), config.num_codes).astype(np.float32) / 255.0
    return np.concatenate([rgb(batch["input"][k]), rgb(batch["target"][k]), rgb(r), lab], axis=1)


def _write_preview(path: Path, rows: list[np.ndarray]) -> None:
    from vq_models.io.images import write_image

    write_image(path, np.concatenate(rows, axis=0), dtype="uint8")

