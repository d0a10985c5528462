"""SSIM in torch, differentiable: the per-pixel map both training losses build on (Stage II's ``ssim_loss``
and the fallback perceptual term's multi-scale SSIM). The constants and window are the held-out metric's
(``vq_models.metrics``, the numpy reference, imports them from here), so a loss and the figure it is judged
by share one definition.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import Tensor
from torch.nn import functional as F

# Wang et al. 2004's constants and window: 11 taps, sigma 1.5, K1 = 0.01, K2 = 0.03
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def gaussian_kernel(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, *, device: torch.device | None = None,
                    dtype: torch.dtype = torch.float32) -> Tensor:
    """The normalised 1-D Gaussian the separable SSIM window is made of."""
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _symmetric_pad(x: Tensor, pad: int) -> Tensor:
    """Mirror ``pad`` pixels at each border, edge pixel included (OpenCV's BORDER_REFLECT, the metric's)."""
    x = torch.cat([x[..., :pad].flip(-1), x, x[..., -pad:].flip(-1)], dim=-1)
    return torch.cat([x[..., :pad, :].flip(-2), x, x[..., -pad:, :].flip(-2)], dim=-2)


def _blur(x: Tensor, k: Tensor, mirror: bool) -> Tensor:
    """Separable Gaussian blur per channel: mirrored borders (same size) or valid convolution (shrinks)."""
    c = x.shape[1]
    if mirror:
        x = _symmetric_pad(x, k.numel() // 2)
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim_map(pred: Tensor, target: Tensor, kernel: Tensor | None = None, *, mirror: bool = True,
             data_range: float = 1.0) -> Tensor:
    """Per-pixel, per-channel SSIM (B, C, H, W) of two (B, C, H, W) images. ``mirror`` keeps the size with the
    metric's mirrored border; False is the valid convolution (H and W shrink by the window less one). When
    ``target`` needs no gradient its local statistics are computed without one (one blur call per group)."""
    k = (gaussian_kernel(device=pred.device, dtype=pred.dtype) if kernel is None
         else kernel.to(device=pred.device, dtype=pred.dtype))
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mx, sxx, sxy = _blur(torch.cat([pred, pred * pred, pred * target], 1), k, mirror).chunk(3, 1)
    with torch.no_grad() if not target.requires_grad else nullcontext():
        my, syy = _blur(torch.cat([target, target * target], 1), k, mirror).chunk(2, 1)
    vx, vy, cov = sxx - mx * mx, syy - my * my, sxy - mx * my
    return ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
