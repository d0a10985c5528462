"""Stage I's codebook on a trained inversion network: features in shot order, the whole-shot refit, and
labelling every frame.

Why one module: training's last phase, ``vqedit recluster`` (a new K, tap weights or seed on a trained
network, in seconds) and the Stage I sweep benchmark (several ROI weights on one network) do the same
three things, and must do them the same way for their codes to be comparable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vq_models.io.images import write_label_map
from vq_models.metrics import perplexity
from vq_models.quantizer import VectorQuantizer
from vq_models.shot import FRAME_NAME
from vq_models.stage1_model import InversionNet
from vq_models.train.stage1_config import Stage1Config
from vq_models.train.stage1_data import ShotFrames

__all__ = ["features_in_order", "foreground_features", "colour_tap_meta", "fit_codebook", "lloyd_refine",
           "settle_codebook", "label_frames", "write_labels", "usage_meta"]


@torch.no_grad()
def features_in_order(net: InversionNet, data: ShotFrames, config: Stage1Config,
                      dev: torch.device) -> Iterator[tuple[list[int], Tensor, dict[str, Tensor], Tensor]]:
    """Yield (frame indices, X_VQ, batch, reconstruction) over every frame in shot order."""
    n = len(data)
    for s in range(0, n, config.label_batch_size):
        idx = list(range(s, min(n, s + config.label_batch_size)))
        batch = data.batch(idx, dev)
        img, feats, _ = net(batch["input"])
        x = net.vq_input(feats, config.label_size, batch["fg"], img, batch["roi"])
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
    """The RGB, context-colour and region taps as meta.json records them (what Stage1Model.load rebuilds X_VQ from);
    one definition for training and ``vqedit recluster``."""
    return {
        "vq_rgb_weight": config.vq_rgb_weight,
        "vq_rgb_multiplier": net.vq_rgb_multiplier,
        "vq_context_weight": config.vq_context_weight,
        "vq_context_multiplier": net.vq_context_multiplier,
        "vq_context_sigma": net.vq_context_sigma,
        "vq_region_weight": config.vq_region_weight,
        "vq_region_multiplier": net.vq_region_multiplier,
    }


def fit_codebook(points: Tensor, config: Stage1Config, dim: int, dev: torch.device) -> tuple[VectorQuantizer, int]:
    """A fresh codebook for the final features: cosine k-means warm start on a sample drawn from every frame,
    then ``vq_refine_lloyd`` Lloyd passes (Eq. 2 over the whole shot). Seeded by ``config.seed``.

    Why a fresh start instead of refining the online EMA codes: those codes followed a network that kept
    changing for thousands of steps, and some end parked where early features were (benchmarks/RESULTS.md).
    Also what ``vqedit recluster`` runs."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    points = points[torch.randperm(len(points), generator=gen).to(points.device)]  # the warm start sees every frame
    vq = VectorQuantizer(num_codes=config.num_codes, dim=dim, decay=config.vq_decay, kmeans_iters=config.kmeans_iters,
                         dead_code_threshold=config.dead_code_threshold).to(dev)
    passes = vq.refine(points, max(1, config.vq_refine_lloyd), generator=gen)
    return vq, passes


def lloyd_refine(vq: VectorQuantizer, points: Tensor, config: Stage1Config) -> int:
    """``vq_refine_lloyd`` Lloyd passes of ``vq``'s current codes over ``points``, seeded by ``config.seed``;
    returns the passes run."""
    return vq.refine(points, config.vq_refine_lloyd, generator=torch.Generator().manual_seed(config.seed))


def settle_codebook(net: InversionNet, vq: VectorQuantizer, data: ShotFrames, config: Stage1Config,
                    dev: torch.device) -> int:
    """Training's quantizer-only phase on the frozen network: ``vq_refine_epochs`` EMA passes over every frame
    in order, then the Lloyd passes (from a fresh k-means with ``vq_refine_reinit``). Why: the online codebook
    last saw features from a still-moving encoder. Returns the Lloyd passes run."""
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
            lloyd_passes = lloyd_refine(vq, points, config)
        del points
    return lloyd_passes


def label_frames(net: InversionNet, vq: VectorQuantizer, data: ShotFrames, config: Stage1Config,
                 dev: torch.device) -> Iterator[tuple[list[int], Tensor, dict[str, Tensor], Tensor]]:
    """Yield (frame indices, codes (B, L, L) on the CPU, batch, reconstruction) over every frame in shot order."""
    for idx, x, batch, img in features_in_order(net, data, config, dev):
        yield idx, vq.assign(x).cpu(), batch, img


OnBatch = Callable[[list[int], Tensor, dict[str, Tensor], Tensor], None]


def write_labels(net: InversionNet, vq: VectorQuantizer, data: ShotFrames, config: Stage1Config, dev: torch.device,
                 folder: Path, on_batch: OnBatch | None = None) -> Tensor:
    """Write every frame's label map (uint8 codes) into ``folder``; returns the foreground code usage (K,).
    ``on_batch(indices, codes, batch, reconstruction)`` sees each batch after its maps are written."""
    usage = torch.zeros(config.num_codes, dtype=torch.long)
    for idx, codes, batch, img in label_frames(net, vq, data, config, dev):
        fg = (F.interpolate(batch["fg"], size=codes.shape[-2:], mode="bilinear", align_corners=False)[:, 0] >= 0.5).cpu()
        usage += torch.bincount(codes[fg].flatten(), minlength=config.num_codes)
        for k, i in enumerate(idx):
            write_label_map(folder / FRAME_NAME.format(data.frames[i]), codes[k].numpy().astype(np.uint8))
        if on_batch is not None:
            on_batch(idx, codes, batch, img)
    return usage


def usage_meta(usage: Tensor) -> dict[str, object]:
    """meta.json's code-usage entries for the labels' foreground code counts ``usage`` (K,)."""
    return {"codes_used": int((usage > 0).sum()), "label_perplexity": perplexity(usage),
            "code_usage": usage.tolist()}
