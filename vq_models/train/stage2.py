"""Stage II trainer (paper Sec. 3.3): learn the shot's renderer c_s = G_s(x_seg) from Stage I label maps.

Inputs: SHOT/stage1/labels (codes at label size, K from stage1/meta.json), the aligned crops (targets,
resized to ``render_size``), the foreground and ROI masks; optionally an artist prior (prior.json) that
groups codes into named segments, in which case the generator is conditioned on groups instead of codes.
The conditioning is the one-hot window t-1, t, t+1 (edge frames repeat) — the paper's temporal
stability measure.

Loss (paper): BCE adversarial (λ_adv) + R1 gradient penalty on D (λ_gp, see losses.py for why R1) +
smooth L1 (λ_l1) + ROI / non-ROI perceptual (λ_roi, λ_nonroi). The renderer renders the whole crop;
``bg_weight`` < 1 lowers the L1 weight outside the face mask, because only the face is pasted back into
the plate (the paper preset keeps 1.0, i.e. unweighted); ``roi_l1_weight`` > 0 adds L1 weight inside the
ROI mask (eyes, lips, mouth): those regions are a few percent of the crop but are what edits re-render,
and without the perceptual ROI term (off on CPU) nothing else tells the renderer they matter.

Outputs in SHOT/stage2/: config.yaml, model.safetensors, meta.json, checkpoints/, tensorboard/,
val_preview.png (target | render per held-out frame).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vq_models.config import config_to_dict, load_config, save_config
from vq_models.errors import InputError
from vq_models.io.atomic import atomic_write_json
from vq_models.shot import Shot

log = logging.getLogger("vqedit.train.stage2")

META_VERSION = 1


@dataclass(frozen=True)
class Stage2Config:
    """Stage II knobs under the paper's names (λ's, lr's) plus the CPU-scale architecture sizes."""

    render_size: int = 1024
    const_size: int = 4
    ch_max: int = 512
    ch_min: int = 32
    spade_hidden: int = 128
    spade_shared: bool = False  # one label embedding per block instead of per norm (NVlabs layout = False)
    spade_upsample_params: bool = False  # γ/β at label resolution, bilinearly upsampled above it
    spatial_bias_from: int = 0  # learned crop-space maps on block outputs at >= this resolution (0 = off)
    label_embed: int = 0  # learned per-code embedding width in front of the SPADE blocks (0 = one-hot in, NVlabs)
    spectral_norm: bool = False
    temporal_window: bool = True
    d_channels: int = 64
    d_layers: int = 3
    num_d: int = 2
    d_conditional: bool = True
    d_spectral_norm: bool = True
    batch_size: int = 2
    iterations: int = 60000
    lr_g: float = 5e-4
    lr_d: float = 5e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_l1: float = 0.5
    lambda_adv: float = 0.01
    lambda_gp: float = 10.0
    gp_every: int = 4
    lambda_lpips_roi: float = 1.0
    lambda_lpips_nonroi: float = 0.2
    perceptual: str = "alex"
    perceptual_backbone: str = ""
    bg_weight: float = 1.0
    roi_l1_weight: float = 0.0
    # random per-sample translation of labels and target together, up to this many label pixels (0 = off).
    # Why: the learned constant and crop-space maps can memorise "teeth live here"; shifted batches make the
    # renderer read the parts from the labels, which is what an edit that moves or removes a part relies on
    shift_augment: int = 0
    # painted-region augmentation (train/paint_augment.py): this fraction of each batch gets an ellipse of one
    # nearby code (semi-axes up to paint_radius label px) painted into its ROI; L1 skips a paint_margin band
    # around it and inside pulls the render's mean colour to the code's mean colour, with lambda_paint x an ROI
    # pixel's weight (0 = off). Why: edits paint codes where the shot never had them, and the renderer must
    # draw the code, not what usually sits there
    paint_prob: float = 0.0
    paint_radius: int = 8
    paint_margin: int = 2
    lambda_paint: float = 1.0
    val_every: int = 10
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    log_every: int = 10
    image_every: int = 1000
    eval_every: int = 0  # held-out SSIM / PSNR every N steps into tensorboard and meta.json (0 = only at the end)
    grad_clip: float = 0.0  # max global norm of G's gradient per step (0 = off): caps a spike's Adam step
    lr_decay_from: float = 1.0  # fraction of the run after which both lr's fall linearly to 0 (1.0 = constant)
    # loss-spike rollback (train/spike_guard.py): a step whose G loss exceeds spike_factor x its running mean
    # restores G, D and both optimisers from a snapshot (taken every spike_snapshot_every steps) and multiplies
    # both lr's by spike_lr_backoff from then on (0 = off)
    spike_factor: float = 0.0
    spike_snapshot_every: int = 100
    spike_lr_backoff: float = 0.5
    spike_warmup: int = 100  # steps before spikes are looked for (early losses fall fast and are noisy)
    spike_decay: float = 0.95  # of the running mean a spike is measured against
    seed: int = 0
    num_threads: int = 0


STAGE2_PRESETS: dict[str, Stage2Config] = {
    # seconds on a laptop core: for tests and smoke runs
    "tiny": Stage2Config(
        render_size=32, const_size=4, ch_max=32, ch_min=16, spade_hidden=16, d_channels=16, d_layers=2,
        num_d=1, batch_size=2, iterations=60, lr_g=2e-3, lr_d=2e-3, lambda_l1=1.0, lambda_lpips_roi=0.0,
        lambda_lpips_nonroi=0.0, perceptual="none", checkpoint_every=50, log_every=5, image_every=50,
        gp_every=4, bg_weight=0.5,
    ),
    # 128^2 on 2 CPU cores within ~20 minutes. Narrow generator (one person, one light), constant at 8^2,
    # one shared label embedding per block and γ/β predicted at the 64^2 label resolution then upsampled
    # (G step 2.2 s -> 1.4 s per batch of 4 on a loaded core, benchmarks/stage2_speed.py). The perceptual
    # term is off: on CPU it cost ~10x the generator step. The L1 weight is lowered on the background (not
    # pasted back) and raised in the ROI (eyes/mouth: what edits re-render). The adversarial term is off:
    # on the 120-frame synthetic shot D's BCE stayed at 2 ln 2 = 1.386 (chance) for all 300 steps of a run
    # with λ_adv 0.01, so it cost ~35% of every step for no signal at this budget. lr_g 3e-3: held-out SSIM
    # 0.889 at step 400 vs 0.871 with 1e-3 (same Stage I shot, benchmarks/stage2_acceptance.py). 1800 steps
    # measured 0.4-0.6 s each single-threaded on a shared 2-core box (≤ 18 min). Learned crop-space maps
    # from 32² up (spatial_bias_from): SSIM 0.815 / 0.857 at steps 100 / 200 vs 0.758 / 0.834 without.
    # lr decay over the last 40%: held-out SSIM 0.943 at the end (0.9375 at step 1600 at constant lr, and that
    # run's tanh output saturated after step 1770). lr_g 3e-3 is at the edge: a run with maps only at 128²
    # saturated by step 1080, so lr_g is 2e-3 and G's gradient norm is clipped at 0.5 (late steps: 0.04-0.09).
    # That preset measured: held-out SSIM 0.9425 / PSNR 32.9 dB, 11.8 min single-threaded (load 1-2.5).
    # On Stage I's K=128 codes at 128² labels the SPADE label convolutions read 3K = 384 channels and took most
    # of the step (G fwd+bwd 0.59 s on 2 threads); a learned 32-wide code embedding in front (label_embed)
    # brings that to 0.27 s. On Stage I's noise-map labels held-out SSIM passed 0.95 by step 200 (0.970 at 800,
    # 0.9725 after 2600 steps that took 22.8 min on 2 threads), so the preset stopped at 1000 steps. Labels and
    # target shifted together by up to 4 label px (shift_augment) stop the renderer memorising where the teeth
    # are: teeth 0 vs the no-teeth what-if 23.9 -> 25.8 dB, eye_open 0 32.8 -> 34.3 dB; the shifted run needs
    # more steps for the same SSIM (1000: 0.953, 2000: 0.961), and with the one-hot built in float32 a step
    # costs 0.30 s, so 2000 steps take 10 min on 2 threads. On Stage I's context-tap labels the run's L1 jumped
    # 0.004 -> 0.22 at step 1230 and held-out SSIM ended at 0.944 (0.952 at step 1000); with the spike guard
    # (spike_factor 8) the same run rolled back from step 1213 to 1100 at half the lr and ended at 0.959.
    # That renderer drew a cavity code painted over the upper teeth at (0.38, 0.15, 0.135) display RGB, brighter
    # than the code's own mean (0.32, 0.105, 0.112): teeth 0 vs the what-if 26.0 dB. Half of each batch with
    # a nearby code painted into the ROI (paint_prob, train/paint_augment.py) brought the render to the code's
    # mean: 27.7 dB with the same fill, 29.3 with the darkest cavity code above (the teeth op's default now),
    # held-out SSIM 0.958, 10.1 min. A separate mean-colour loss instead of L1 targets had cost SSIM 0.05.
    "cpu": Stage2Config(
        render_size=128, const_size=8, ch_max=128, ch_min=32, spade_hidden=32, spade_shared=True,
        spade_upsample_params=True, spatial_bias_from=32, d_channels=32, d_layers=3, num_d=1, batch_size=4,
        label_embed=32, shift_augment=4, iterations=2000, lr_g=2e-3, grad_clip=0.5, lr_d=5e-4, lambda_l1=2.0, lambda_adv=0.0, lambda_lpips_roi=0.0,
        lambda_lpips_nonroi=0.0, perceptual="none", checkpoint_every=500, log_every=10, image_every=500,
        eval_every=200, lr_decay_from=0.6, gp_every=8, bg_weight=0.2, roi_l1_weight=2.0, num_threads=2,
        spike_factor=8.0, paint_prob=0.5,
    ),
    # the published settings (Sec. 3.4 / 4): 1024^2, Adam 5e-4, λ_l1 0.5, λ_adv 0.01, λ_gp 10,
    # λ_roi 1.0, λ_nonroi 0.2, 60k iterations, batch 2
    "paper": Stage2Config(),
}


def load_stage2_config(preset: str = "cpu", path: str | Path | None = None, overrides: Sequence[str] = ()) -> Stage2Config:
    """Preset → YAML/TOML file → KEY=VALUE overrides; unknown keys are an InputError."""
    config = load_config(STAGE2_PRESETS, preset, path, overrides)
    _validate(config)
    return config


def _validate(c: Stage2Config) -> None:
    from vq_models.nets.spade import generator_channels

    try:
        generator_channels(c.render_size, c.const_size, c.ch_max, c.ch_min)
    except ValueError as exc:
        raise InputError(f"stage2 config: {exc}") from None
    if c.grad_clip < 0:
        raise InputError(f"stage2 config: grad_clip must be >= 0, got {c.grad_clip}")
    if not 0.0 <= c.lr_decay_from <= 1.0:
        raise InputError(f"stage2 config: lr_decay_from must be in [0, 1], got {c.lr_decay_from}")
    if c.eval_every < 0:
        raise InputError(f"stage2 config: eval_every must be >= 0, got {c.eval_every}")
    for name in ("batch_size", "iterations", "checkpoint_every", "log_every", "gp_every"):
        if getattr(c, name) < 1:
            raise InputError(f"stage2 config: {name} must be >= 1, got {getattr(c, name)}")
    if c.perceptual not in ("alex", "vgg", "squeeze", "none"):
        raise InputError(f"stage2 config: perceptual: expected alex, vgg, squeeze or none, got {c.perceptual!r}")
    if not 0.0 <= c.bg_weight <= 1.0:
        raise InputError(f"stage2 config: bg_weight must be in [0, 1], got {c.bg_weight}")
    if c.shift_augment < 0:
        raise InputError(f"stage2 config: shift_augment must be >= 0, got {c.shift_augment}")
    if not 0.0 <= c.paint_prob <= 1.0:
        raise InputError(f"stage2 config: paint_prob must be in [0, 1], got {c.paint_prob}")
    if c.paint_radius < 2:
        raise InputError(f"stage2 config: paint_radius must be >= 2 label pixels, got {c.paint_radius}")
    if c.paint_margin < 0 or c.lambda_paint < 0:
        raise InputError(f"stage2 config: paint_margin and lambda_paint must be >= 0, got {c.paint_margin}, {c.lambda_paint}")
    if c.roi_l1_weight < 0:
        raise InputError(f"stage2 config: roi_l1_weight must be >= 0, got {c.roi_l1_weight}")
    from vq_models.train.spike_guard import SETTING_RULES

    for setting, field_name in SPIKE_FIELDS.items():
        valid, rule = SETTING_RULES[setting]
        if not valid(getattr(c, field_name)):
            raise InputError(f"stage2 config: {field_name} {rule}, got {getattr(c, field_name)}")


# Stage II config field of each spike-guard setting
SPIKE_FIELDS = {"factor": "spike_factor", "every": "spike_snapshot_every", "backoff": "spike_lr_backoff",
                "warmup": "spike_warmup", "decay": "spike_decay"}


def build_generator(config: Stage2Config, num_channels: int):
    """The SPADE generator for ``num_channels`` classes (codes or prior groups) per window frame."""
    from vq_models.nets.spade import SPADEGenerator

    frames = 3 if config.temporal_window else 1
    return SPADEGenerator(
        label_nc=frames * num_channels, render_size=config.render_size, const_size=config.const_size,
        ch_max=config.ch_max, ch_min=config.ch_min, hidden=config.spade_hidden, spectral=config.spectral_norm,
        shared_embed=config.spade_shared, upsample_params=config.spade_upsample_params,
        spatial_bias_from=config.spatial_bias_from, label_embed=config.label_embed,
    )


def generator_input(G, codes: Tensor, lut: Tensor, num_channels: int, temporal_window: bool) -> Tensor:
    """What ``G`` reads for (B, 3, L, L) window codes: channel indices (B, T, L, L) when it has a learned label
    embedding (a gather, no one-hot), else the one-hot window (:func:`window_onehot`)."""
    if getattr(G, "label_embed", None) is None:
        return window_onehot(codes, lut, num_channels, temporal_window)
    if not temporal_window:
        codes = codes[:, 1:2]
    return lut.to(codes.device).long()[codes.long()]


def window_onehot(codes: Tensor, lut: Tensor, num_channels: int, temporal_window: bool) -> Tensor:
    """(B, 3, L, L) window codes → generator input (B, 3C or C, L, L)."""
    from vq_models.train.data import codes_to_onehot

    if not temporal_window:
        codes = codes[:, 1:2]
    return codes_to_onehot(codes, lut, num_channels)


def lr_scale(step: int, iterations: int, decay_from: float) -> float:
    """Learning-rate factor at ``step`` (1-based): 1 until ``decay_from`` × iterations, then linear to 0 at the
    end. Why: a constant Adam step keeps the renderer jittering around the fit; annealing it over the
    last stretch settles fine texture (a pure function of the step, so resumed runs match)."""
    start = decay_from * iterations
    if decay_from >= 1.0 or step <= start:
        return 1.0
    return max(0.0, (iterations - step + 1) / max(iterations - start, 1.0))


def diverged(curve: Sequence[dict], final_ssim: float | None, drop: float = 0.1) -> bool:
    """True when the final held-out SSIM fell more than ``drop`` below the best seen during training: the
    renderer blew up late (e.g. its tanh output saturated and stopped learning) and an earlier checkpoint in
    SHOT/stage2/checkpoints is the better model."""
    best = max((c["ssim"] for c in curve if c.get("ssim") is not None), default=None)
    return best is not None and final_ssim is not None and final_ssim < best - drop


def _batch_indices(n: int, batch: int, seed: int, step: int, rank: int) -> Tensor:
    """Which training samples step ``step`` uses: a pure function of (seed, step, rank), so a resumed
    run draws exactly the batches the uninterrupted run would have."""
    gen = torch.Generator().manual_seed((seed * 1_000_003 + step) * 64 + rank)
    return torch.randint(n, (batch,), generator=gen)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@torch.no_grad()
def _render_set(G, windows: Tensor, lut: Tensor, nch: int, temporal: bool, device, batch: int = 4) -> np.ndarray:
    out = []
    for i in range(0, len(windows), batch):
        seg = generator_input(G, windows[i : i + batch].to(device), lut, nch, temporal)
        out.append(G(seg).permute(0, 2, 3, 1).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1, 1, 3), np.float32)


def _ssim_fn():
    """The metrics module's SSIM when present (the product's reference), else the local helper."""
    try:
        from vq_models.metrics import ssim as shared_ssim  # type: ignore[attr-defined]

        return shared_ssim, "vq_models.metrics.ssim"
    except ImportError:
        from vq_models.train.losses import ssim

        return ssim, "vq_models.train.losses.ssim"


def evaluate(renders: np.ndarray, targets: np.ndarray, masks: np.ndarray) -> dict:
    """SSIM / PSNR per held-out frame inside the face mask, and their means."""
    from vq_models.train.losses import psnr

    ssim_fn, ssim_impl = _ssim_fn()
    ssims = [float(ssim_fn(r, t, mask=m)) for r, t, m in zip(renders, targets, masks, strict=True)]
    psnrs = [psnr(r, t, m) for r, t, m in zip(renders, targets, masks, strict=True)]
    finite = [p for p in psnrs if math.isfinite(p)]
    return {
        "ssim": float(np.nanmean(ssims)) if ssims else None,
        "psnr": float(np.mean(finite)) if finite else None,
        "ssim_per_frame": ssims,
        "psnr_per_frame": psnrs,
        "region": "fg_mask > 0.5",
        "ssim_impl": ssim_impl,
    }


def _preview(targets: np.ndarray, renders: np.ndarray) -> np.ndarray:
    """Rows of target | render, uint8, for a person to look at."""
    rows = [np.concatenate([t, r], axis=1) for t, r in zip(targets, renders, strict=True)]
    return _to_uint8(np.concatenate(rows, axis=0))


def train_stage2(
    shot_dir: str | Path,
    config: Stage2Config,
    *,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
    prior_path: str | Path | None = None,
) -> Path:
    """Train the shot's Stage II renderer; returns SHOT/stage2. Works under ``torchrun`` too (gradients
    averaged over ranks, rank 0 writes). ``resume`` continues from the newest checkpoint at its step.

    Flush-to-zero is on while training (CPU speed) and turned off again afterwards: MediaPipe's XNNPack
    graphs, built later in the same process, fail to prepare under it."""
    try:
        return _train_stage2(shot_dir, config, device=device, resume=resume, progress=progress, prior_path=prior_path)
    finally:
        torch.set_flush_denormal(False)


def _train_stage2(
    shot_dir: str | Path,
    config: Stage2Config,
    *,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
    prior_path: str | Path | None = None,
) -> Path:
    from vq_models.io.images import write_image
    from vq_models.nets.spade import MultiscaleDiscriminator
    from vq_models.train import data as D
    from vq_models.train.checkpoint import CheckpointManager, save_weights
    from vq_models.train.distributed import (
        all_reduce_mean,
        average_gradients,
        broadcast_module,
        cleanup,
        init_distributed,
    )
    from vq_models.train.logging import TrainLogger
    from vq_models.train.losses import (
        RoiPerceptualLoss,
        d_bce_loss,
        g_bce_loss,
        make_perceptual,
        perceptual_backend,
        r1_penalty,
        smooth_l1,
    )
    from vq_models.train.paint_augment import code_palette, paint_batch, painted_targets, palette_loss
    from vq_models.train.spike_guard import SpikeGuard

    _validate(config)
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    # trained SPADE weights push activations into denormals; flushing them halved CPU render time (measured)
    torch.set_flush_denormal(True)
    shot = Shot.open(shot_dir)
    out_dir = shot.stage2_dir
    num_codes = D.stage1_num_codes(shot)
    labels = D.load_label_maps(shot, num_codes)
    label_size = next(iter(labels.values())).shape[0]
    mapping = D.read_prior(prior_path, num_codes) if prior_path else D.ChannelMapping.raw(num_codes)
    nch = mapping.num_channels
    lut = torch.from_numpy(mapping.lut)

    train_pos, val_pos = D.split_frames(len(shot.frames), config.val_every)
    if not train_pos:
        raise InputError(f"{shot.root}: no frames left for training after holding out validation frames")
    train_set = D.load_frame_set(shot, labels, train_pos, config.render_size)
    val_set = D.load_frame_set(shot, labels, val_pos, config.render_size)

    palette = code_palette(train_set.windows, train_set.targets, lut, nch) if config.paint_prob > 0 else None
    code_colours = code_palette(train_set.windows, train_set.targets, torch.arange(num_codes), num_codes)

    info = init_distributed(device)
    dev = info.device
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    G = build_generator(config, nch).to(dev)
    use_adv = config.lambda_adv > 0
    Dnet = MultiscaleDiscriminator(
        nch if config.d_conditional else 0, config.d_channels, config.d_layers, config.num_d, config.d_spectral_norm
    ).to(dev)
    broadcast_module(G, info)
    broadcast_module(Dnet, info)
    opt_g = torch.optim.Adam(G.parameters(), lr=config.lr_g, betas=(config.beta1, config.beta2))
    opt_d = torch.optim.Adam(Dnet.parameters(), lr=config.lr_d, betas=(config.beta1, config.beta2))
    perceptual = make_perceptual(config.perceptual, config.perceptual_backbone or None)
    backend = perceptual_backend(perceptual)
    use_perc = perceptual is not None and (config.lambda_lpips_roi > 0 or config.lambda_lpips_nonroi > 0)
    roi_perc = RoiPerceptualLoss(perceptual, config.lambda_lpips_roi, config.lambda_lpips_nonroi).to(dev) if use_perc else None

    ckpts = CheckpointManager(out_dir / "checkpoints", keep=config.keep_checkpoints)
    modules = {"G": G, "D": Dnet}
    optims = {"G": opt_g, "D": opt_d}
    start = 0
    prev_seconds = 0.0
    guard = SpikeGuard(**{setting: getattr(config, name) for setting, name in SPIKE_FIELDS.items()})
    if resume and ckpts.latest() is not None:
        start, state = ckpts.load(ckpts.latest(), modules, optims)
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
            scale = lr_scale(step, config.iterations, config.lr_decay_from) * guard.lr_factor
            for opt, base in ((opt_g, config.lr_g), (opt_d, config.lr_d)):
                for group in opt.param_groups:
                    group["lr"] = base * scale
            idx = _batch_indices(len(train_set), config.batch_size, config.seed, step, info.rank)
            windows = train_set.windows[idx].to(dev)
            target = train_set.targets[idx].to(dev)
            fg = train_set.fg[idx].to(dev)
            roi = train_set.roi[idx].to(dev)
            if config.shift_augment > 0:
                shifts = D.random_shifts(len(idx), config.shift_augment, config.seed, step, info.rank)
                ratio = config.render_size / windows.shape[-1]
                windows = D.shift_images(windows, shifts)
                target, fg, roi = (D.shift_images(t, shifts, ratio) for t in (target, fg, roi))
            seg_real = window_onehot(windows, lut, nch, False) if use_adv else None  # D reads frame t's one-hot
            painted = None
            if palette is not None:
                gen = torch.Generator().manual_seed(((config.seed * 1_000_003 + step) * 64 + info.rank) * 2 + 2)
                painted = paint_batch(windows, roi, palette, lut, config.paint_prob, config.paint_radius, gen)
                windows = painted.windows
            seg = generator_input(G, windows, lut, nch, config.temporal_window)
            seg_c = window_onehot(windows, lut, nch, False) if use_adv else None  # the fake's own (painted) labels
            scalars: dict[str, float] = {}

            fake = G(seg)
            if use_adv:
                Dnet.requires_grad_(True)
                do_gp = config.lambda_gp > 0 and step % config.gp_every == 0
                real_in = target.detach().requires_grad_(do_gp)
                real_logits = Dnet(real_in, seg_real)
                d_loss = d_bce_loss(real_logits, Dnet(fake.detach(), seg_c))
                scalars["loss/d_bce"] = d_loss.item()
                if do_gp:
                    gp = r1_penalty(real_logits, real_in)
                    d_loss = d_loss + config.lambda_gp * config.gp_every * gp
                    scalars["loss/d_r1"] = gp.item()
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                average_gradients(Dnet, info)
                opt_d.step()
                Dnet.requires_grad_(False)

            weight = config.bg_weight + (1.0 - config.bg_weight) * fg + config.roi_l1_weight * roi
            g_target = target
            if painted is not None:  # under a painted ellipse the shot's frame is not the target
                g_target, weight = painted_targets(fake, target, weight, painted, config.paint_margin,
                                                   config.lambda_paint * (1.0 + config.roi_l1_weight))
                scalars["loss/paint"] = palette_loss(fake.detach(), painted.blob, painted.colours).item()
            l1 = smooth_l1(fake, g_target, weight)
            g_loss = config.lambda_l1 * l1
            scalars["loss/l1"] = l1.item()
            if roi_perc is not None:
                perc = roi_perc(fake, g_target, roi)
                g_loss = g_loss + perc
                scalars["loss/perceptual"] = perc.item()
            if use_adv:
                g_adv = g_bce_loss(Dnet(fake, seg_c))
                g_loss = g_loss + config.lambda_adv * g_adv
                scalars["loss/g_adv"] = g_adv.item()
            scalars["loss/g_total"] = g_loss.item()
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            average_gradients(G, info)
            if config.grad_clip > 0:
                scalars["grad/g_norm"] = float(torch.nn.utils.clip_grad_norm_(G.parameters(), config.grad_clip))
            opt_g.step()
            if guard.enabled:
                loss_all = float(all_reduce_mean(g_loss.detach(), info))  # every rank decides alike
                if guard.step(step, loss_all, modules, optims):
                    r = guard.rollbacks[-1]
                    log.warning("Stage II loss spiked at step %d (%.4g against a running %.4g): weights back to "
                                "step %d, learning rates x%.3g from now on", step, r.loss, r.reference,
                                r.restored_step, r.lr_factor)
                    scalars["train/rollbacks"] = float(len(guard.rollbacks))

            if step % config.log_every == 0 or step == config.iterations:
                logger.log(step, scalars)
            if info.is_main and (step % config.image_every == 0):
                r = _render_set(G, preview_set.windows[:1], lut, nch, config.temporal_window, dev)
                logger.image(step, "val/target_render", _preview(preview_set.targets[:1].permute(0, 2, 3, 1).numpy(), r))
            if info.is_main and config.eval_every > 0 and step % config.eval_every == 0 and step < config.iterations \
                    and len(val_set):
                G.eval()
                m = evaluate(_render_set(G, val_set.windows, lut, nch, config.temporal_window, dev),
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

        # --- held-out evaluation, outputs (rank 0) ------------------------------------------------
        G.eval()
        meta_val: dict = {"ssim": None, "psnr": None, "frames": []}
        render_ms = None
        if info.is_main:
            tr = time.monotonic()
            renders = _render_set(G, val_set.windows, lut, nch, config.temporal_window, dev)
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
            pv = preview_set if len(val_set) else train_set
            show = min(len(pv), 4)
            pr = renders[:show] if len(val_set) else _render_set(G, pv.windows[:show], lut, nch, config.temporal_window, dev)
            preview = _preview(pv.targets[:show].permute(0, 2, 3, 1).numpy(), pr)
            write_image(out_dir / "val_preview.png", preview.astype(np.float32) / 255.0, dtype="uint8")
            logger.image(step, "val/final_target_render", preview)

            save_weights(out_dir / "model.safetensors", {"G": G, "code_to_channel": lut.clone()})
            meta = {
                "version": META_VERSION,
                "num_codes": num_codes,
                "num_channels": nch,
                "channel_names": mapping.names,
                "prior": {"path": str(prior_path), "segments": mapping.prior} if prior_path else None,
                "render_size": config.render_size,
                "label_size": label_size,
                "temporal_window": config.temporal_window,
                "steps": step,
                "train_frames": train_set.frames,
                "val": meta_val,
                "spike_rollbacks": [r.to_json() for r in guard.rollbacks],
                # each code's mean display colour over the training frames (null: never seen); edits read
                # it to choose codes by appearance (teeth 0 fills the upper row with the darkest cavity code)
                "code_colours": [[round(float(v), 4) for v in c] if n > 0 else None
                                 for c, n in zip(code_colours.colours, code_colours.pixels, strict=True)],
                "perceptual_backend": backend,
                "gradient_penalty": "R1 on real images (lazy, every gp_every steps)",
                "world_size": info.world_size,
                "device": str(dev),
                "timings": {
                    "train_seconds": train_seconds,
                    "seconds_per_iter": loop_seconds / steps_run if steps_run else None,
                    "render_ms_per_frame": render_ms,
                },
                "config": config_to_dict(config),
            }
            atomic_write_json(out_dir / "meta.json", meta)
    finally:
        logger.close()
        cleanup(info, together=False)  # also runs on errors, when a peer may never reach a barrier
    if info.is_main and meta_val.get("ssim") is not None:
        log.info("Stage II held-out: SSIM %.4f, PSNR %.2f dB on %d frames", meta_val["ssim"], meta_val["psnr"] or 0.0,
                 len(val_set))
    return out_dir
