"""One Stage I training step (paper Section 3.2) and its loss terms.

ĉ (overlaid, foreground-masked) → encoder → W+ → generator → r, with the inversion loss λ_l2·L2 +
λ_roi·LPIPS(ROI) + λ_nonroi·LPIPS(non-ROI) + λ_sim·identity + λ_dreg·delta-reg + λ_adv·latent adversarial
against the masked target c; then one latent-discriminator step; meanwhile the generator's feature maps feed
the passive quantizer, which updates its codebook by Eq. 2 and never sends a gradient back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vq_models.quantizer import VectorQuantizer
from vq_models.stage1_model import InversionNet
from vq_models.train.stage1_config import Stage1Config

__all__ = ["train_step", "delta_regularizer", "to_loss_size"]


def delta_regularizer(w: Tensor) -> Tensor:
    """e4e's L_d-reg: sum over layers i ≥ 1 of ||w_i - w_0||_2, averaged over the batch."""
    return (w[:, 1:] - w[:, :1]).norm(dim=2).sum(dim=1).mean()


def to_loss_size(img: Tensor, size: int) -> Tensor:
    """Generator output → loss resolution (area pooling, as e4e's face_pool)."""
    if img.shape[-1] == size:
        return img
    if img.shape[-1] > size:
        return F.adaptive_avg_pool2d(img, (size, size))
    return F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)



def _item(t: Tensor) -> float:
    return float(t.detach())


def train_step(ddp_net: nn.Module, ddp_disc: nn.Module, net: InversionNet, disc: nn.Module, vq: VectorQuantizer,
               perceptual: nn.Module, identity: nn.Module | None, batch: dict[str, Tensor], config: Stage1Config,
               opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer) -> dict[str, float]:
    """One inversion step (encoder [+ generator]), one discriminator step, one passive VQ update."""
    gen = net.generator
    img, feats, w = ddp_net(batch["input"])
    r = to_loss_size(img, config.input_size)
    c, roi = batch["target"], batch["roi"]
    loss_l2 = F.mse_loss(r, c)
    # ROI L2 normalised by the ROI area, so its weight does not shrink with how small the eyes are
    loss_l2_roi = ((r - c) ** 2 * roi).sum() / (roi.sum() * r.shape[1]).clamp_min(1.0)
    zero = r.new_zeros(())
    loss_roi = perceptual(r * roi, c * roi) if config.lambda_lpips_roi > 0 else zero
    loss_non = perceptual(r * (1 - roi), c * (1 - roi)) if config.lambda_lpips_nonroi > 0 else zero
    loss_dreg = delta_regularizer(w)
    flat_w = w.reshape(-1, w.shape[-1])
    disc.requires_grad_(False)  # the encoder's adversarial term must not train D (plain module: no DDP hooks)
    loss_adv = F.softplus(-disc(flat_w)).mean()
    disc.requires_grad_(True)
    total = (config.lambda_l2 * loss_l2 + config.lambda_l2_roi * loss_l2_roi + config.lambda_lpips_roi * loss_roi
             + config.lambda_lpips_nonroi * loss_non + config.lambda_dreg * loss_dreg
             + config.lambda_adv * loss_adv)
    scalars = {"loss/total": 0.0, "loss/l2": _item(loss_l2), "loss/l2_roi": _item(loss_l2_roi), "loss/lpips_roi": _item(loss_roi),
               "loss/lpips_nonroi": _item(loss_non), "loss/dreg": _item(loss_dreg), "loss/adv": _item(loss_adv)}
    if identity is not None and config.lambda_sim > 0:
        loss_sim = identity(r, c)
        total = total + config.lambda_sim * loss_sim
        scalars["loss/identity"] = _item(loss_sim)
    scalars["loss/total"] = _item(total)
    opt_g.zero_grad(set_to_none=True)
    opt_d.zero_grad(set_to_none=True)
    total.backward()
    opt_g.step()

    # latent discriminator: mapping-network W are real, encoder W+ rows are fake (+ R1 on the real ones)
    with torch.no_grad():
        real = gen.get_latent(torch.randn(flat_w.shape[0], gen.style_dim, device=flat_w.device))
    real.requires_grad_(config.lambda_gp > 0)
    pred = ddp_disc(torch.cat([real, flat_w.detach()]))  # one forward: DDP wants one per backward
    real_pred, fake_pred = pred[: real.shape[0]], pred[real.shape[0]:]
    loss_d = F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()
    if config.lambda_gp > 0:
        (grad,) = torch.autograd.grad(real_pred.sum(), real, create_graph=True)
        loss_d = loss_d + config.lambda_gp * grad.pow(2).sum(dim=1).mean()
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    scalars["loss/discriminator"] = _item(loss_d)

    # passive VQ: detached features, no grad, output never used by the networks
    x_vq = net.vq_input(feats, config.label_size, batch["fg"], img, batch["roi"])
    _, stats = vq(x_vq, fg_mask=batch["fg"], update=True)
    scalars.update(stats.as_scalars())
    scalars["vq/restarts_total"] = float(vq.restarts_total)
    return scalars
