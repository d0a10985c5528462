"""Loaders for the public pretrained checkpoints, in their original key layouts.

Why: the paper fine-tunes a *pretrained* FFHQ StyleGAN2 + e4e. Those files come from other projects
(rosinality's ``stylegan2-ffhq-config-f.pt``, omertov's ``e4e_ffhq_encode.pt``), so these loaders read
them unchanged, infer the architecture from tensor shapes (no side config to get wrong), and turn every
problem a user can cause — a missing file, a pickled object that ``weights_only`` refuses, a checkpoint
for another architecture — into one :class:`~vq_models.errors.InputError` line naming the file and the
first offending keys. Loading always uses ``torch.load(..., weights_only=True)``: a checkpoint is data,
never code. See docs/weights.md for where the files go.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from vq_models.errors import InputError
from vq_models.nets.e4e import Encoder4Editing, LatentDiscriminator
from vq_models.nets.stylegan2 import Generator, default_channels

__all__ = ["load_stylegan2", "load_e4e", "generator_from_state_dict", "read_checkpoint", "check_state_dict",
           "weights_dir", "find_weight", "materialize", "e4e_decoder_state", "LatentDiscriminator"]

M = TypeVar("M", bound=nn.Module)

WEIGHT_FILES = {
    "stylegan2": "stylegan2-ffhq-config-f.pt",
    "e4e": "e4e_ffhq_encode.pt",
    "ir_se50": "model_ir_se50.pth",
    "alexnet": "alexnet-owt-7be5be79.pth",
    "vgg16": "vgg16-397923af.pth",
}


def weights_dir() -> Path:
    """Folder searched for pretrained files: ``$VQEDIT_WEIGHTS`` or ``~/.cache/vqedit/weights``."""
    env = os.environ.get("VQEDIT_WEIGHTS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vqedit" / "weights"


def find_weight(name: str) -> Path | None:
    """Path of a known pretrained file (key of ``WEIGHT_FILES``) in :func:`weights_dir`, or None."""
    path = weights_dir() / WEIGHT_FILES[name]
    return path if path.is_file() else None


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load`` with ``weights_only=True``; user-fixable failures become one-line InputErrors."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise InputError(
            f"{path}: contains pickled Python objects{what} that weights_only loading refuses; convert it once "
            "in a trusted session: ckpt = torch.load(p, weights_only=False); replace non-tensor entries with "
            "plain dicts (e.g. ckpt['opts'] = vars(ckpt['opts'])); torch.save(ckpt, p)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any failure to parse a user file is a user-facing error
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a readable torch checkpoint ({first[:160]})") from None


def _shape(t: Any) -> tuple[int, ...] | None:
    return tuple(t.shape) if isinstance(t, Tensor) else None


def check_state_dict(module: nn.Module, state: Mapping[str, Any], where: str, what: str) -> None:
    """Raise an InputError listing the first missing / unexpected / mis-shaped keys, if any."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {_shape(state[k])} != {expected[k]}" for k in expected if k in state and _shape(state[k]) != expected[k]]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {', '.join(missing[:5])}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:5])}")
    if wrong:
        problems.append(f"shape mismatches ({len(wrong)}): {'; '.join(wrong[:3])}")
    if problems:
        raise InputError(f"{where}: does not match {what}: " + " | ".join(problems))


def materialize(factory: Callable[[], M], state: Mapping[str, Any], where: str, what: str) -> M:
    """Build ``factory()`` on the meta device, check ``state`` against it, then adopt the loaded tensors.

    Nothing is randomly initialised only to be overwritten: for the real e4e (~1 GB) this halves peak
    memory and skips seconds of init. Every parameter and buffer must come from ``state``.
    """
    with torch.device("meta"):
        module = factory()
    check_state_dict(module, state, where, what)
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()},
                           strict=True, assign=True)
    leftover = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
    if leftover:  # a non-persistent buffer the checkpoint cannot carry
        raise InputError(f"{where}: checkpoint does not provide {', '.join(leftover[:5])}")
    return module


def _get_tensor(state: Mapping[str, Any], key: str, where: str) -> Tensor:
    value = state.get(key)
    if not isinstance(value, Tensor):
        raise InputError(f"{where}: missing tensor {key!r}; not a StyleGAN2 (rosinality layout) state dict")
    return value


def infer_generator_config(state: Mapping[str, Any], where: str = "generator") -> dict[str, Any]:
    """Generator kwargs (size, style_dim, n_mlp, channel_multiplier, channels) read from tensor shapes."""
    style_dim = int(_get_tensor(state, "style.1.weight", where).shape[1])
    n_mlp = len({m.group(1) for k in state if (m := re.fullmatch(r"style\.(\d+)\.weight", k))})
    n_rgbs = len({m.group(1) for k in state if (m := re.fullmatch(r"to_rgbs\.(\d+)\.conv\.weight", k))})
    size = 2 ** (n_rgbs + 2)
    channels = {4: int(_get_tensor(state, "input.input", where).shape[1])}
    for i in range(n_rgbs):
        channels[2 ** (i + 3)] = int(_get_tensor(state, f"to_rgbs.{i}.conv.weight", where).shape[2])
    config: dict[str, Any] = {"size": size, "style_dim": style_dim, "n_mlp": n_mlp}
    for cm in (2, 1, 4):
        table = default_channels(cm)
        if all(table.get(r) == c for r, c in channels.items()):
            config["channel_multiplier"] = cm
            break
    else:
        config["channels"] = channels
    return config


def generator_from_state_dict(state: Mapping[str, Any], where: str = "generator") -> Generator:
    """Build a :class:`Generator` whose shape matches ``state`` and load it strictly."""
    if not isinstance(state, Mapping):
        raise InputError(f"{where}: expected a state dict (mapping of names to tensors)")
    config = infer_generator_config(state, where)
    blur = state.get("convs.0.conv.blur.kernel")
    if isinstance(blur, Tensor) and blur.ndim == 2 and blur.shape[0] != 4:
        config["blur_kernel"] = [1] * int(blur.shape[0])  # real taps come from the stored buffer
    generator = materialize(lambda: Generator(**config), state, where, f"a StyleGAN2 generator {config}")
    return generator.eval()


def load_stylegan2(path: str | Path) -> tuple[Generator, Tensor | None]:
    """Load a rosinality checkpoint ``{"g_ema": state_dict, "latent_avg": (style_dim,)}``.

    Also accepts a bare generator state dict. Returns (generator in eval mode, latent_avg or None).
    """
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, Mapping):
        raise InputError(f"{path}: expected a dict checkpoint with 'g_ema', got {type(ckpt).__name__}")
    if "g_ema" in ckpt:
        state = ckpt["g_ema"]
    elif "style.1.weight" in ckpt:
        state = ckpt
    else:
        keys = ", ".join(list(ckpt)[:5])
        raise InputError(f"{path}: no 'g_ema' entry (top-level keys: {keys}); not a StyleGAN2 checkpoint")
    generator = generator_from_state_dict(state, f"{path}: g_ema")
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is not None and not isinstance(latent_avg, Tensor):
        raise InputError(f"{path}: latent_avg must be a tensor, got {type(latent_avg).__name__}")
    if latent_avg is not None and latent_avg.shape[-1] != generator.style_dim:
        raise InputError(f"{path}: latent_avg has width {latent_avg.shape[-1]}, generator style_dim "
                         f"is {generator.style_dim}")
    return generator, latent_avg


def _strip(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in state.items() if k.startswith(prefix + ".")}


def load_e4e(path: str | Path) -> tuple[Encoder4Editing, Tensor | None, dict]:
    """Load an encoder4editing checkpoint ``{"state_dict": {"encoder.*", "decoder.*"}, "opts", "latent_avg"}``.

    Returns (encoder in eval mode, latent_avg (n_latent, 512) or None, opts as a plain dict). The
    decoder half is a rosinality generator: build it with
    ``generator_from_state_dict(e4e_decoder_state(path))`` when the StyleGAN file is not separate.
    """
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, Mapping) or "state_dict" not in ckpt:
        raise InputError(f"{path}: expected a dict with 'state_dict' (an encoder4editing checkpoint)")
    opts = ckpt.get("opts") or {}
    if not isinstance(opts, Mapping):
        raise InputError(f"{path}: 'opts' must be a plain dict, got {type(opts).__name__}")
    opts = dict(opts)
    enc_state = _strip(ckpt["state_dict"], "encoder")
    if not enc_state:
        raise InputError(f"{path}: state_dict has no 'encoder.*' keys")
    n_styles = len({m.group(1) for k in enc_state if (m := re.fullmatch(r"styles\.(\d+)\.linear\.weight", k))})
    if n_styles < 2:
        raise InputError(f"{path}: encoder has no styles.N.linear heads; not an Encoder4Editing state dict")
    size = int(opts.get("stylegan_size") or 2 ** ((n_styles + 2) // 2))
    if n_styles != 2 * size.bit_length() - 4:
        raise InputError(f"{path}: encoder has {n_styles} style heads but opts.stylegan_size={size}")
    first = enc_state.get("input_layer.0.weight")
    width = int(first.shape[0]) if isinstance(first, Tensor) else 64
    style_dim = int(enc_state["styles.0.linear.weight"].shape[0])
    config = {"size": size, "width": width, "style_dim": style_dim}
    encoder = materialize(lambda: Encoder4Editing(**config), enc_state, f"{path}: encoder",
                          f"an e4e IR-SE50 Encoder4Editing {config}")
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is not None and not isinstance(latent_avg, Tensor):
        raise InputError(f"{path}: latent_avg must be a tensor, got {type(latent_avg).__name__}")
    return encoder.eval(), latent_avg, opts


def e4e_decoder_state(path: str | Path) -> dict[str, Tensor]:
    """The ``decoder.*`` half of an e4e checkpoint as a rosinality generator state dict."""
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, Mapping) or "state_dict" not in ckpt:
        raise InputError(f"{path}: expected a dict with 'state_dict' (an encoder4editing checkpoint)")
    state = _strip(ckpt["state_dict"], "decoder")
    if not state:
        raise InputError(f"{path}: state_dict has no 'decoder.*' keys")
    return state
