"""Stage II inference: load a trained renderer from SHOT/stage2 and render label windows to sRGB crops.

Used by the runtime (``ShotModel.render_window``), the render server and benchmarks. The code → channel
lookup table saved at train time (identity for raw codes, the artist prior's grouping otherwise) is
applied here, so callers always pass raw Stage I codes (possibly edited). The generator's shape and what
it reads (:func:`build_generator`, :func:`generator_input`) are defined here, for training and inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vq_models.errors import InputError
from vq_models.io.colour import luma
from vq_models.io.jsonfile import read_json
from vq_models.nets.spade import SPADEGenerator
from vq_models.train.checkpoint import load_weights, split_weights
from vq_models.train.data import codes_to_onehot
from vq_models.train.stage2_config import Stage2Config, load_stage2_config


def build_generator(config: Stage2Config, num_channels: int) -> SPADEGenerator:
    """The SPADE generator for ``num_channels`` classes (codes or prior groups) per window frame."""
    frames = 3 if config.temporal_window else 1
    return SPADEGenerator(
        label_nc=frames * num_channels, render_size=config.render_size, const_size=config.const_size,
        ch_max=config.ch_max, ch_min=config.ch_min, hidden=config.spade_hidden, spectral=config.spectral_norm,
        shared_embed=config.spade_shared, upsample_params=config.spade_upsample_params,
        spatial_bias_from=config.spatial_bias_from, label_embed=config.label_embed,
    )


def generator_input(G: torch.nn.Module, codes: Tensor, lut: Tensor, num_channels: int, temporal_window: bool) -> Tensor:
    """What ``G`` reads for (B, 3, L, L) window codes: channel indices (B, T, L, L) when it has a learned label
    embedding (a gather, no one-hot), else the one-hot window (:func:`window_onehot`)."""
    if getattr(G, "label_embed", None) is None:
        return window_onehot(codes, lut, num_channels, temporal_window)
    if not temporal_window:
        codes = codes[:, 1:2]
    return lut.to(codes.device).long()[codes.long()]


def window_onehot(codes: Tensor, lut: Tensor, num_channels: int, temporal_window: bool) -> Tensor:
    """(B, 3, L, L) window codes → generator input (B, 3C or C, L, L)."""
    if not temporal_window:
        codes = codes[:, 1:2]
    return codes_to_onehot(codes, lut, num_channels)


@dataclass
class Stage2Renderer:
    generator: torch.nn.Module
    code_to_channel: np.ndarray  # (256,) int64
    num_codes: int
    num_channels: int
    render_size: int
    label_size: int
    temporal_window: bool
    device: torch.device
    meta: dict

    @classmethod
    def load(cls, stage2_dir: str | Path, device: str = "cpu") -> Stage2Renderer:
        """Rebuild the generator from config.yaml + meta.json and load model.safetensors."""
        root = Path(stage2_dir)
        for name in ("meta.json", "config.yaml", "model.safetensors"):
            if not (root / name).is_file():
                raise InputError(f"{root / name}: missing (train Stage II first: vqedit train SHOT --stage 2)")
        meta = read_json(root / "meta.json")
        for key in ("num_codes", "num_channels", "render_size", "label_size"):
            if not isinstance(meta.get(key), int):
                raise InputError(f"{root / 'meta.json'}: {key}: expected an integer")
        config = load_stage2_config("paper", root / "config.yaml")
        flat = load_weights(root / "model.safetensors")
        if "code_to_channel" not in flat:
            raise InputError(f"{root / 'model.safetensors'}: no code_to_channel table")
        G = build_generator(config, meta["num_channels"])
        try:
            G.load_state_dict(split_weights(flat, "G"))
        except RuntimeError as exc:
            raise InputError(f"{root / 'model.safetensors'}: weights do not fit config.yaml ({str(exc).splitlines()[0]})") from None
        dev = torch.device(device)
        G.to(dev).eval().requires_grad_(False)
        return cls(
            generator=G,
            code_to_channel=flat["code_to_channel"].numpy().astype(np.int64),
            num_codes=meta["num_codes"],
            num_channels=meta["num_channels"],
            render_size=meta["render_size"],
            label_size=meta["label_size"],
            temporal_window=bool(meta.get("temporal_window", True)),
            device=dev,
            meta=meta,
        )

    def code_colours(self) -> np.ndarray | None:
        """(num_codes, 3) mean display sRGB of each code over the training frames (NaN rows for codes never
        seen), or None for a model trained before meta.json kept ``code_colours``."""
        colours = self.meta.get("code_colours")
        if not isinstance(colours, list) or len(colours) != self.num_codes:
            return None
        return np.array([c if isinstance(c, list) and len(c) == 3 else [np.nan] * 3 for c in colours], np.float64)

    def code_luma(self) -> np.ndarray | None:
        """(num_codes,) Rec. 709 luma of :meth:`code_colours` (NaN for codes never seen), or None."""
        colours = self.code_colours()
        return None if colours is None else np.asarray(luma(colours), np.float64)

    def _check(self, windows: np.ndarray) -> np.ndarray:
        arr = np.asarray(windows)
        s = self.label_size
        if arr.ndim != 4 or arr.shape[1:] != (3, s, s):
            raise InputError(f"label window: expected shape (3, {s}, {s}) per frame, got {arr.shape[1:]}")
        if arr.dtype != np.uint8:
            raise InputError(f"label window: expected uint8 codes, got {arr.dtype}")
        if arr.size and int(arr.max()) >= self.num_codes:
            raise InputError(f"label window: code {int(arr.max())} is not in 0..{self.num_codes - 1}")
        return arr

    @torch.no_grad()
    def render_batch(self, windows: np.ndarray, batch_size: int = 4) -> np.ndarray:
        """uint8 (B, 3, L, L) windows (codes of t-1, t, t+1) → float32 (B, R, R, 3) sRGB in [0, 1]."""
        arr = self._check(windows)
        lut = torch.from_numpy(self.code_to_channel)
        out = []
        for i in range(0, len(arr), batch_size):
            codes = torch.from_numpy(np.ascontiguousarray(arr[i : i + batch_size])).to(self.device)
            seg = generator_input(self.generator, codes, lut, self.num_channels, self.temporal_window)  # on the device
            out.append(self.generator(seg).permute(0, 2, 3, 1).float().cpu().numpy())
        if not out:
            return np.zeros((0, self.render_size, self.render_size, 3), np.float32)
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)

    def render(self, window: np.ndarray) -> np.ndarray:
        """uint8 (3, L, L) window → float32 (R, R, 3) sRGB in [0, 1]."""
        arr = np.asarray(window)
        if arr.ndim != 3:
            raise InputError(f"label window: expected shape (3, {self.label_size}, {self.label_size}), got {arr.shape}")
        return self.render_batch(arr[None])[0]
