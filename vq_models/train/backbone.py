"""The StyleGAN generator/encoder pair Stage I inverts the shot into (paper Section 3.2).

Two kinds, one pipeline: **pretrained** (``stylegan=PATH`` [+ ``e4e=PATH``]: the generator is frozen, the
encoder, pretrained e4e or a light one from scratch, is fine-tuned on the shot) or **embedded** (no
weights: a small StyleGAN2-architecture generator and a light encoder trained together on the shot).

Called the *backbone* so it is never confused with the artist prior (``edits/prior.py``, prior.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vq_models.errors import InputError
from vq_models.nets.checkpoints import e4e_decoder_state, generator_from_state_dict, load_e4e, load_stylegan2
from vq_models.nets.stylegan2 import Generator, small_generator_config
from vq_models.stage1_model import build_encoder
from vq_models.train.stage1_config import Stage1Config, check_encoder_kind

__all__ = ["StyleGANBackbone", "build_backbone", "generator_config"]


@dataclass
class StyleGANBackbone:
    """Which StyleGAN generator/encoder pair Stage I inverts the shot into, and how to rebuild it at
    inference. (Not the artist prior of ``edits/prior.py``: that groups the codes this backbone yields.)"""

    mode: str  # "embedded" | "pretrained"
    description: str
    generator: nn.Module
    encoder: nn.Module
    latent_avg: Tensor
    generator_config: dict[str, Any]
    encoder_config: dict[str, Any]
    train_generator: bool
    sources: dict[str, str]


def generator_config(gen: nn.Module) -> dict[str, Any]:
    """The generator's shape as meta.json records it (what Stage1Model.load rebuilds it from)."""
    return {
        "size": int(gen.size), "style_dim": int(gen.style_dim), "n_mlp": int(gen.n_mlp),
        "channel_multiplier": int(gen.channel_multiplier),
        "channels": {str(k): int(v) for k, v in gen.channels.items()},
    }


def _from_scratch_encoder_config(config: Stage1Config, gen: nn.Module) -> dict[str, Any]:
    kind = check_encoder_kind(config)
    if config.encoder_noise_maps and kind != "spatial":
        raise InputError("config.encoder_noise_maps needs encoder_kind 'spatial'")
    cfg = {"kind": kind, "size": config.input_size, "n_latent": gen.n_latent, "style_dim": gen.style_dim,
           "channels": config.encoder_channels}
    if config.encoder_noise_maps:
        cfg["noise_maps"] = True
    return cfg


def build_backbone(config: Stage1Config, stylegan: str | Path | None, e4e: str | Path | None) -> StyleGANBackbone:
    """The generator/encoder pair: pretrained (paper mode) or the embedded per-shot autoencoder."""
    if stylegan is None and e4e is None:
        gen_kwargs = small_generator_config(config.image_size, config.generator_max_channels)
        gen = Generator(**gen_kwargs)
        with torch.no_grad():
            latent_avg = gen.mean_latent(4096)
        enc_cfg = _from_scratch_encoder_config(config, gen)
        return StyleGANBackbone("embedded", "embedded per-shot StyleGAN2 autoencoder (no pretrained weights)", gen,
                     build_encoder(enc_cfg), latent_avg, generator_config(gen), enc_cfg, True, {})

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
    return StyleGANBackbone("pretrained", desc, gen, enc, latent_avg, generator_config(gen), enc_cfg, False, sources)
