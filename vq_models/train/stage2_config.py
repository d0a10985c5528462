"""Stage II's knobs: the config dataclass, its presets and the check of its values.

Why a module of its own: the trainer, the renderer (which rebuilds its generator from config.yaml) and the
demo's fingerprint all read it. The experiments behind each preset's values are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vq_models.config import load_config
from vq_models.errors import InputError
from vq_models.nets.spade import generator_channels
from vq_models.train.spike_guard import SETTING_RULES

__all__ = ["Stage2Config", "STAGE2_PRESETS", "load_stage2_config", "check_stage2_config", "SPIKE_FIELDS"]


@dataclass(frozen=True)
class Stage2Config:
    """Stage II knobs under the paper's names (λ's, lr's) plus the CPU-scale architecture sizes; a knob both
    trainers have (iterations, lambda_gp, perceptual, perceptual_backbone, ...) has one name in both."""

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
    adam_eps: float = 1e-8  # Adam's epsilon (torch's default): the floor under each weight's step denominator
    lambda_l1: float = 0.5
    l1_beta: float = 0.1  # smooth L1's switch from quadratic to linear (image values in [0, 1])
    lambda_ssim: float = 0.0  # weight of 1 - SSIM on the frame-target pixels (0 = off, the paper's loss)
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
    # 128² on 2 CPU cores in under 20 minutes: a narrow, label-embedded SPADE without the perceptual and
    # adversarial terms (too slow for their signal at this budget), L1 weighted toward the ROI plus 1 - SSIM
    # for the skin texture L1 leaves flat, lr decay, the spike guard, and shifted and painted batches so the
    # renderer draws what the labels say, where they say it.
    # Each value's measurement: benchmarks/RESULTS.md
    "cpu": Stage2Config(
        render_size=128, const_size=8, ch_max=128, ch_min=32, spade_hidden=32, spade_shared=True,
        spade_upsample_params=True, spatial_bias_from=32, d_channels=32, d_layers=3, num_d=1, batch_size=4,
        label_embed=32, shift_augment=4, iterations=2000, lr_g=2e-3, grad_clip=0.5, lr_d=5e-4, lambda_l1=2.0, lambda_adv=0.0, lambda_lpips_roi=0.0,
        lambda_lpips_nonroi=0.0, perceptual="none", checkpoint_every=500, log_every=10, image_every=500,
        eval_every=200, lr_decay_from=0.6, gp_every=8, bg_weight=0.2, roi_l1_weight=2.0, num_threads=2,
        spike_factor=8.0, paint_prob=0.5, lambda_ssim=1.0,
    ),
    # the published settings (Sec. 3.4 / 4): 1024^2, Adam 5e-4, λ_l1 0.5, λ_adv 0.01, λ_gp 10,
    # λ_roi 1.0, λ_nonroi 0.2, 60k iterations, batch 2
    "paper": Stage2Config(),
}


def load_stage2_config(preset: str = "cpu", path: str | Path | None = None, overrides: Sequence[str] = ()) -> Stage2Config:
    """Preset → YAML/TOML file → KEY=VALUE overrides; unknown keys are an InputError."""
    config = load_config(STAGE2_PRESETS, preset, path, overrides)
    check_stage2_config(config)
    return config


def _at_least(low: float) -> tuple[Callable[[float], bool], str]:
    return (lambda v: v >= low), f"must be >= {low:g}"


def _fraction() -> tuple[Callable[[float], bool], str]:
    return (lambda v: 0.0 <= v <= 1.0), "must be in [0, 1]"


# Valid ranges of the plain numeric knobs, checked in this order (the spike guard's come from its own table)
RANGE_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "grad_clip": _at_least(0),
    "lr_decay_from": _fraction(),
    "eval_every": _at_least(0),
    **{name: _at_least(1) for name in ("batch_size", "iterations", "checkpoint_every", "log_every", "gp_every")},
    "bg_weight": _fraction(),
    "shift_augment": _at_least(0),
    "paint_prob": _fraction(),
    "paint_radius": ((lambda v: v >= 2), "must be >= 2 label pixels"),
    "paint_margin": _at_least(0),
    "lambda_paint": _at_least(0),
    "roi_l1_weight": _at_least(0),
    "adam_eps": ((lambda v: v > 0), "must be > 0"),
    "l1_beta": ((lambda v: v > 0), "must be > 0"),
    "lambda_ssim": _at_least(0),
}
PERCEPTUAL_NETS = ("alex", "vgg", "squeeze", "none")


def check_stage2_config(c: Stage2Config) -> None:
    """Raise an InputError naming the first field whose value cannot train (sizes, ranges, spike guard)."""
    try:
        generator_channels(c.render_size, c.const_size, c.ch_max, c.ch_min)
    except ValueError as exc:
        raise InputError(f"stage2 config: {exc}") from None
    if c.perceptual not in PERCEPTUAL_NETS:
        raise InputError(f"stage2 config: perceptual: expected alex, vgg, squeeze or none, got {c.perceptual!r}")
    rules = {**RANGE_RULES, **{name: SETTING_RULES[setting] for setting, name in SPIKE_FIELDS.items()}}
    for name, (valid, rule) in rules.items():
        if not valid(getattr(c, name)):
            raise InputError(f"stage2 config: {name} {rule}, got {getattr(c, name)}")


# Stage II config field of each spike-guard setting
SPIKE_FIELDS = {"factor": "spike_factor", "every": "spike_snapshot_every", "backoff": "spike_lr_backoff",
                "warmup": "spike_warmup", "decay": "spike_decay"}
