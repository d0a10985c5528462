"""Stage I's knobs: the config dataclass, its presets and the checks of its values.

Why a module of its own: the trainer, ``vqedit recluster`` (which rebuilds the config a model was trained
with) and the demo's fingerprint all read the config without needing the training loop. The experiments
behind each preset's values are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from vq_models.config import Renames
from vq_models.errors import InputError
from vq_models.vq_input import CONTEXT_SIGMA

__all__ = ["Stage1Config", "STAGE1_PRESETS", "COLOUR_TAP_RULES", "check_colour_tap", "check_encoder_kind",
           "check_generator_fit"]


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
    # where a scale's say grows with its channel count); see vq_input.scale_multipliers
    vq_scale_weights: tuple[float, ...] = ()
    # the generator's RGB output as one more tap, with this share of the cosine distance in the units of
    # vq_scale_weights (0 = features only, the paper); see vq_input.build_vq_input for why
    vq_rgb_weight: float = 0.0
    # the colour *around* each pixel (the RGB output blurred over the foreground, Gaussian sigma
    # vq_context_sigma × label width) as one more tap with this share (0 = off, the paper); see
    # vq_input.build_vq_input. Tells a catchlight on a pupil from a highlight on skin.
    vq_context_weight: float = 0.0
    vq_context_sigma: float = CONTEXT_SIGMA
    # the ROI mask split into its eye and mouth parts as two more taps with this share (0 = off, the paper);
    # see vq_input.build_vq_input. Keeps a pupil's codes apart from hair and an upper lip's from skin.
    vq_region_weight: float = 0.0
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
    # R1 on real W for the latent discriminator: weight of E‖∇D‖², as Stage II's lambda_gp (e4e's γ = 10 is γ/2 = 5)
    lambda_gp: float = 5.0
    perceptual: str = "alex"
    perceptual_backbone: str = ""  # ImageNet backbone file ("" = the built-in fallback backend)
    identity_weights: str = ""  # ArcFace IR-SE50 file ("" = identity term off, recorded in meta.json)
    # optimisation
    lr_encoder: float = 1e-3  # paper 5e-6 (fine-tuning a pretrained e4e)
    lr_discriminator: float = 1e-4  # paper 1e-6
    lr_generator: float = 1e-3  # default mode only (paper mode keeps G frozen)
    batch_size: int = 4
    iterations: int = 2000
    checkpoint_every: int = 500
    log_every: int = 10
    label_batch_size: int = 8
    seed: int = 0

    # Stage I's names before both trainers used one name per knob: still read (config files, a model's saved
    # config.yaml, --set) with a deprecation message. r1_gamma was γ of γ/2·E‖∇D‖²
    DEPRECATED_NAMES: ClassVar[Renames] = {
        "iters": ("iterations", lambda v: v),
        "r1_gamma": ("lambda_gp", lambda v: float(v) / 2),
        "perceptual_net": ("perceptual", lambda v: v),
        "perceptual_weights": ("perceptual_backbone", lambda v: v),
    }


STAGE1_PRESETS: dict[str, Stage1Config] = {
    "tiny": Stage1Config(
        image_size=32, input_size=32, generator_max_channels=16, encoder_kind="spatial", encoder_channels=8, num_codes=8,
        vq_decay=0.9, kmeans_iters=20, dead_code_threshold=1.0, vq_resolutions=(16, 32), label_size=32,
        vq_scale_weights=(1.0, 1.0), vq_region_weight=3.0, vq_refine_epochs=1, vq_refine_lloyd=3, lambda_l2_roi=5.0, lr_encoder=2e-3, lr_discriminator=2e-4, lr_generator=2e-3, batch_size=2,
        iterations=6, checkpoint_every=3, log_every=1, label_batch_size=4,
    ),
    # CPU scale with the parts artists edit separated: a 128² generator tapped finest-first, noise maps predicted
    # by the encoder, the RGB and context-colour taps, and a fresh ROI-weighted k-means at K=255 at the end.
    # Each value's measurement: benchmarks/RESULTS.md
    "cpu": Stage1Config(
        image_size=128, input_size=128, generator_max_channels=32, encoder_kind="spatial", encoder_channels=16,
        encoder_noise_maps=True, vq_rgb_weight=12.0, vq_context_weight=3.0, vq_context_sigma=CONTEXT_SIGMA,
        vq_region_weight=3.0,
        vq_refine_reinit=True, vq_refine_roi_weight=4.0,
        num_codes=255, vq_decay=0.9, kmeans_iters=30, dead_code_threshold=2.0, vq_resolutions=(32, 64, 128),
        vq_scale_weights=(0.5, 1.0, 4.0), label_size=128, vq_refine_epochs=0, vq_refine_lloyd=15,
        lambda_l2_roi=5.0, lambda_lpips_nonroi=0.0, lr_encoder=1e-3, lr_generator=5e-3, iterations=2500,
        checkpoint_every=500, log_every=50,
    ),
    "paper": Stage1Config(
        image_size=1024, input_size=256, num_codes=128, vq_decay=1e-3, kmeans_iters=100,
        dead_code_threshold=2.0, vq_resolutions=(64, 128, 256), label_size=256, vq_refine_epochs=0,
        lr_encoder=5e-6, lr_discriminator=1e-6, lr_generator=0.0, batch_size=8, iterations=20000,
        checkpoint_every=1000, log_every=50,
    ),
}


# The colour taps' valid ranges, one definition for training's config check and recluster's flags.
COLOUR_TAP_RULES: dict[str, tuple[Any, str]] = {
    "vq_rgb_weight": (lambda v: v >= 0, "must be >= 0 (0 = no RGB tap)"),
    "vq_context_weight": (lambda v: v >= 0, "must be >= 0 (0 = no context tap)"),
    "vq_region_weight": (lambda v: v >= 0, "must be >= 0 (0 = no region tap)"),
    "vq_context_sigma": (lambda v: 0 < v <= 0.25, "must be in (0, 0.25] (a fraction of the label width)"),
}


def check_colour_tap(name: str, value: float, label: str) -> None:
    """Raise an InputError starting with ``label`` (a config path or a command-line flag) when ``value`` is
    outside the range of colour-tap setting ``name``."""
    valid, rule = COLOUR_TAP_RULES[name]
    if not valid(value):
        raise InputError(f"{label} {value} {rule}")


def check_encoder_kind(config: Stage1Config) -> str:
    """The from-scratch encoder kind, checked (an InputError names the field when it is unknown)."""
    if config.encoder_kind not in ("light", "spatial"):
        raise InputError(f"config.encoder_kind: {config.encoder_kind!r} unknown (expected 'light' or 'spatial')")
    return config.encoder_kind


def check_generator_fit(config: Stage1Config, gen: nn.Module) -> None:
    """Raise an InputError when the config does not fit the generator it will tap (layers, K, weights)."""
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
