"""Perceptual loss: LPIPS with the lpips package's calibrated weights, or a documented fallback.

Why: the paper's L_lpips terms (Stage I roi / non-roi, Stage II) are LPIPS (Zhang et al. 2018). The
lpips package is installed without dependencies because it imports torchvision, which does not import
here; so we never import it and only read its calibrated linear-layer files
(``lpips/weights/v0.1/{alex,vgg}.pth``, keys ``lin{0..4}.model.1.weight``). The ImageNet backbone is
rebuilt in :mod:`vq_models.nets.backbones` and loaded from torchvision-format weights.

Fallback: without ImageNet weights, LPIPS cannot be computed honestly (random features are not a
perceptual metric). :class:`PerceptualLoss` then switches to a structural loss — multi-scale SSIM plus
an L1 loss on image gradients — and records it in ``.backend`` (``"fallback:ms-ssim+grad"``). SSIM
matches local means, contrasts and structure at several scales, which is what LPIPS mostly rewards on
aligned face crops, and the gradient term keeps edges sharp where plain L1/L2 blur; it needs no weights
and trains stably. Metrics must not silently report a different number under the LPIPS name, so
:func:`lpips_distance` raises instead of falling back.
"""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vq_models.errors import VQEditError
from vq_models.nets.backbones import CHANNELS, TAPS, build_features, find_backbone_weights, load_features
from vq_models.nets.ssim import SSIM_SIGMA, SSIM_WINDOW, gaussian_kernel, ssim_map

log = logging.getLogger(__name__)

FALLBACK_NAME = "fallback:ms-ssim+grad"


def calibrated_lin_weights(net: str) -> dict[str, Tensor] | None:
    """The lpips package's linear-layer weights for ``net`` ('alex' or 'vgg'), or None if not installed."""
    try:
        dist = importlib.metadata.distribution("lpips")
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(f"lpips/weights/v0.1/{net}.pth")))
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


class LPIPS(nn.Module):
    """LPIPS distance: unit-normalised backbone features, squared differences, calibrated 1x1 weights."""

    def __init__(self, net: str, features: nn.Sequential, lin_weights: dict[str, Tensor]):
        super().__init__()
        self.net = net
        self.features = features
        self.taps = TAPS[net]
        # ImageNet normalisation expressed for inputs in [-1, 1] (lpips' ScalingLayer)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.lins = nn.ModuleList()
        for i, ch in enumerate(CHANNELS[net]):
            conv = nn.Conv2d(ch, 1, 1, bias=False)
            weight = lin_weights[f"lin{i}.model.1.weight"]
            if tuple(weight.shape) != (1, ch, 1, 1):
                raise VQEditError(f"lpips {net}.pth: lin{i} has shape {tuple(weight.shape)}, expected (1, {ch}, 1, 1)")
            conv.weight.data.copy_(weight)
            self.lins.append(conv)
        self.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> LPIPS:
        return super().train(False)  # a fixed metric: never in training mode

    def _feats(self, x: Tensor) -> list[Tensor]:
        out = []
        h = (x - self.shift) / self.scale
        last = self.taps[-1]
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.taps:
                out.append(h)
            if i == last:
                break
        return out

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-image distance (B,) for images in [-1, 1]."""
        total = pred.new_zeros(pred.shape[0])
        for lin, fa, fb in zip(self.lins, self._feats(pred), self._feats(target), strict=True):
            na = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            nb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((na - nb) ** 2).mean((1, 2, 3))
        return total


def _ssim(a: Tensor, b: Tensor) -> Tensor:
    """Per-image mean SSIM for images in [0, 1] (valid window; a smaller one on images under 11 pixels)."""
    k = SSIM_WINDOW
    if min(a.shape[-2:]) < k:
        m = min(a.shape[-2:])
        k = m if m % 2 else m - 1
    return ssim_map(a, b, gaussian_kernel(k, SSIM_SIGMA * k / SSIM_WINDOW), mirror=False).mean((1, 2, 3))


class StructuralLoss(nn.Module):
    """Fallback perceptual loss: (1 - multi-scale SSIM) + L1 on finite-difference image gradients."""

    def __init__(self, scales: int = 3):
        super().__init__()
        self.scales = scales

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-image loss (B,) for images in [-1, 1]."""
        a, b = (pred + 1) / 2, (target + 1) / 2
        ssim_terms = []
        for s in range(self.scales):
            if s and min(a.shape[-2:]) < 8:
                break
            ssim_terms.append(_ssim(a, b))
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        ms = torch.stack(ssim_terms, 0).mean(0)
        dx = (pred[..., :, 1:] - pred[..., :, :-1]) - (target[..., :, 1:] - target[..., :, :-1])
        dy = (pred[..., 1:, :] - pred[..., :-1, :]) - (target[..., 1:, :] - target[..., :-1, :])
        grad = dx.abs().mean((1, 2, 3)) + dy.abs().mean((1, 2, 3))
        return (1 - ms) + grad


def build_lpips(net: str = "alex", backbone_path: str | Path | None = None) -> LPIPS | None:
    """LPIPS for ``net`` if both the calibrated weights and ImageNet backbone weights exist, else None."""
    build_features(net)  # validates the name
    lins = calibrated_lin_weights(net)
    path = find_backbone_weights(net, backbone_path)
    if lins is None or path is None:
        return None
    return LPIPS(net, load_features(net, path), lins)


class PerceptualLoss(nn.Module):
    """``forward(pred, target) -> scalar mean`` for (B, 3, H, W) images in [-1, 1].

    ``.backend`` is ``"lpips-alex"`` / ``"lpips-vgg"`` when real LPIPS runs, else
    ``"fallback:ms-ssim+grad"``; ``.available_lpips`` says which. Trainers log ``.backend`` so a run
    made with the fallback is never mistaken for an LPIPS run.
    """

    def __init__(self, net: str = "alex", backbone_path: str | Path | None = None):
        super().__init__()
        self.lpips = build_lpips(net, backbone_path)
        self.available_lpips = self.lpips is not None
        if self.lpips is not None:
            self.backend = f"lpips-{net}"
            self.fallback = None
        else:
            self.backend = FALLBACK_NAME
            self.fallback = StructuralLoss()
            log.warning("LPIPS %s unavailable (no ImageNet weights %s or lpips package); using %s",
                        net, "found" if backbone_path is None else f"at {backbone_path}", FALLBACK_NAME)

    def per_image(self, pred: Tensor, target: Tensor) -> Tensor:
        module = self.lpips if self.lpips is not None else self.fallback
        return module(pred, target)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.per_image(pred, target).mean()


_CACHE: dict[tuple[str, str | None, str], LPIPS] = {}


def lpips_distance(pred: Tensor, target: Tensor, net: str = "alex",
                   backbone_path: str | Path | None = None) -> Tensor:
    """Per-image LPIPS (B,) for images in [-1, 1], for metrics; raises VQEditError without weights."""
    key = (net, None if backbone_path is None else str(backbone_path), str(pred.device))
    model = _CACHE.get(key)
    if model is None:
        model = build_lpips(net, backbone_path)
        if model is None:
            raise VQEditError(
                f"LPIPS ({net}) unavailable: put torchvision's {('alexnet-owt-7be5be79.pth' if net == 'alex' else 'vgg16-397923af.pth')} "
                "in $TORCH_HOME/hub/checkpoints or $VQEDIT_WEIGHTS (see docs/weights.md)")
        model = model.to(pred.device)
        _CACHE[key] = model
    with torch.no_grad():
        return model(pred, target)
