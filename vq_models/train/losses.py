"""Stage II losses (paper Sec. 3.3): smooth L1, BCE adversarial with a gradient penalty, and the
ROI / non-ROI factorised perceptual loss (held-out SSIM/PSNR are vq_models.metrics).

Gradient penalty choice: the paper writes λ_gp‖∇ D_s(c_s)‖² on the discriminator. We use the standard
R1 form — the squared gradient of D's real logits with respect to the *real* image — which is the
well-studied, stable version of that regulariser (Mescheder et al. 2018) and is what "BCE with gradient
penalty" means in StyleGAN-family code. It can be applied lazily every N steps (scaled by N).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vq_models.nets.ssim import ssim_map

log = logging.getLogger("vqedit.train")


def smooth_l1(pred: Tensor, target: Tensor, weight: Tensor | None = None, beta: float = 0.1) -> Tensor:
    """Smooth L1 (Huber) per pixel, optionally weighted by a (B, 1, H, W) map (weighted mean)."""
    per_px = F.smooth_l1_loss(pred, target, reduction="none", beta=beta)
    if weight is None:
        return per_px.mean()
    w = weight.expand_as(per_px)
    return (per_px * w).sum() / w.sum().clamp_min(1e-8)


def ssim_loss(pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """1 - SSIM of images in [0, 1], with the held-out metric's definition (``nets.ssim.ssim_map``), as a
    weighted mean of the per-pixel map over a (B, 1, H, W) ``weight``. Why a loss on it: L1 in its
    quadratic (Huber) range gives fine texture of a few code values next to no gradient, so the renderer
    settles for smooth skin; SSIM's structure term weighs that texture by its local contrast, which is what
    a compositor sees as sharpness (Zhao et al. 2017 mix it with L1 the same way)."""
    smap = ssim_map(pred, target).mean(dim=1, keepdim=True)
    if weight is None:
        return 1.0 - smap.mean()
    w = weight.expand_as(smap)
    return 1.0 - (smap * w).sum() / w.sum().clamp_min(1e-8)


def _as_list(x: Tensor | list[Tensor]) -> list[Tensor]:
    return x if isinstance(x, list | tuple) else [x]


def d_bce_loss(real_logits: Tensor | list[Tensor], fake_logits: Tensor | list[Tensor]) -> Tensor:
    """-log D(c) - log(1 - D(c_s)), averaged over patches and discriminator scales."""
    total = 0.0
    reals, fakes = _as_list(real_logits), _as_list(fake_logits)
    for r, f in zip(reals, fakes, strict=True):
        total = total + F.softplus(-r).mean() + F.softplus(f).mean()
    return total / len(reals)


def g_bce_loss(fake_logits: Tensor | list[Tensor]) -> Tensor:
    """Non-saturating generator loss -log D(c_s)."""
    fakes = _as_list(fake_logits)
    return sum(F.softplus(-f).mean() for f in fakes) / len(fakes)


def r1_penalty(real_logits: Tensor | list[Tensor], real_images: Tensor) -> Tensor:
    """Σ over scales of E‖∇_x D(x)‖² at real images (``real_images`` must require grad)."""
    logits_sum = sum(r.sum() for r in _as_list(real_logits))
    (grad,) = torch.autograd.grad(logits_sum, real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


class _GradientPyramidLoss(nn.Module):
    """Stand-in perceptual distance used only when ``vq_models.nets.lpips`` is not importable: L1 on
    image gradients over a 3-level pyramid (edges and texture, which plain L1 under-weights)."""

    backend = "builtin-gradient-pyramid"

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        total = pred.new_zeros(())
        for level in range(3):
            if level:
                pred, target = F.avg_pool2d(pred, 2), F.avg_pool2d(target, 2)
            for dim in (2, 3):
                total = total + (pred.diff(dim=dim) - target.diff(dim=dim)).abs().mean()
        return total / 3


def make_perceptual(net: str = "alex", backbone_path: str | None = None) -> nn.Module | None:
    """The shared LPIPS module (``vq_models.nets.lpips.PerceptualLoss``), or None for ``net="none"``.

    Falls back to a built-in gradient-pyramid distance (``.backend`` says which) only if the LPIPS
    module is missing from this install, so training never silently depends on downloads."""
    if net == "none":
        return None
    try:
        from vq_models.nets.lpips import PerceptualLoss
    except ImportError:
        log.warning("vq_models.nets.lpips not available; using the built-in gradient-pyramid distance")
        return _GradientPyramidLoss()
    return PerceptualLoss(net=net, backbone_path=backbone_path)


def perceptual_backend(module: nn.Module | None) -> str:
    return "none" if module is None else str(getattr(module, "backend", type(module).__name__))


class RoiPerceptualLoss(nn.Module):
    """λ_roi·P(c_s⊙m, c⊙m) + λ_nonroi·P(c_s⊙(1-m), c⊙(1-m)) with m the ROI (eyes, lips, mouth) mask.

    Images are in [0, 1]; the wrapped perceptual module takes [0, 1] images too (its contract)."""

    def __init__(self, perceptual: nn.Module, lambda_roi: float = 1.0, lambda_nonroi: float = 0.2):
        super().__init__()
        self.perceptual = perceptual
        self.lambda_roi = float(lambda_roi)
        self.lambda_nonroi = float(lambda_nonroi)
        for p in self.perceptual.parameters():
            p.requires_grad_(False)

    def forward(self, pred: Tensor, target: Tensor, roi: Tensor) -> Tensor:
        total = pred.new_zeros(())
        if self.lambda_roi:
            total = total + self.lambda_roi * self.perceptual(pred * roi, target * roi).mean()
        if self.lambda_nonroi:
            inv = 1.0 - roi
            total = total + self.lambda_nonroi * self.perceptual(pred * inv, target * inv).mean()
        return total
