"""One Stage II training step (paper Sec. 3.3): the learning-rate schedule, the step's batch (with the
shift and painted-region augmentations), one discriminator step and one generator step, and the spike guard.

Loss (paper): BCE adversarial (λ_adv) + R1 gradient penalty on D (λ_gp, see losses.py for why R1) +
smooth L1 (λ_l1) + ROI / non-ROI perceptual (λ_roi, λ_nonroi); ``lambda_ssim`` > 0 adds 1 - SSIM (not in the
paper: the CPU preset's stand-in for the perceptual term's pull toward texture). ``bg_weight`` < 1 lowers the L1 weight
outside the face mask, because only the face is pasted back into the plate; ``roi_l1_weight`` > 0 adds L1
weight inside the ROI mask (eyes, lips, mouth): a few percent of the crop, but what edits re-render.

Every random draw is a pure function of (seed, step, rank), so a resumed run repeats the straight one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vq_models.stage2_model import generator_input, window_onehot
from vq_models.train import data as D
from vq_models.train.distributed import DistInfo, all_reduce_mean, average_gradients
from vq_models.train.losses import d_bce_loss, g_bce_loss, r1_penalty, smooth_l1, ssim_loss
from vq_models.train.paint_augment import CodePalette, keep_weight, paint_batch, painted_targets, palette_loss
from vq_models.train.spike_guard import SpikeGuard
from vq_models.train.stage2_config import Stage2Config

log = logging.getLogger("vqedit.train.stage2")

__all__ = ["Stage2Nets", "train_step", "lr_scale", "batch_indices"]


@dataclass
class Stage2Nets:
    """What a step trains and reads: both networks, their optimisers, the code -> channel table and the
    optional perceptual term, paint palette and spike guard."""

    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    lut: Tensor
    num_channels: int
    roi_perceptual: nn.Module | None
    palette: CodePalette | None
    guard: SpikeGuard
    use_adv: bool

    @property
    def modules(self) -> dict[str, nn.Module]:
        """Checkpoint names of the networks (kept stable: old checkpoints resume)."""
        return {"G": self.G, "D": self.D}

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}


def lr_scale(step: int, iterations: int, decay_from: float) -> float:
    """Learning-rate factor at ``step`` (1-based): 1 until ``decay_from`` × iterations, then linear to 0 at the
    end. Why: a constant Adam step keeps the renderer jittering around the fit; annealing it over the
    last stretch settles fine texture (a pure function of the step, so resumed runs match)."""
    start = decay_from * iterations
    if decay_from >= 1.0 or step <= start:
        return 1.0
    return max(0.0, (iterations - step + 1) / max(iterations - start, 1.0))


def batch_indices(n: int, batch: int, seed: int, step: int, rank: int) -> Tensor:
    """Which training samples step ``step`` uses: a pure function of (seed, step, rank), so a resumed
    run draws exactly the batches the uninterrupted run would have."""
    gen = torch.Generator().manual_seed((seed * 1_000_003 + step) * 64 + rank)
    return torch.randint(n, (batch,), generator=gen)


def train_step(step: int, config: Stage2Config, nets: Stage2Nets, train_set: D.FrameSet, info: DistInfo,
               dev: torch.device) -> dict[str, float]:
    """Step ``step`` (1-based): set the lr's, draw the batch, one D step (when adversarial), one G step, and
    the spike guard's check; returns the step's scalars."""
    use_adv = nets.use_adv
    scale = lr_scale(step, config.iterations, config.lr_decay_from) * nets.guard.lr_factor
    for opt, base in ((nets.opt_g, config.lr_g), (nets.opt_d, config.lr_d)):
        for group in opt.param_groups:
            group["lr"] = base * scale
    idx = batch_indices(len(train_set), config.batch_size, config.seed, step, info.rank)
    windows = train_set.windows[idx].to(dev)
    target = train_set.targets[idx].to(dev)
    fg = train_set.fg[idx].to(dev)
    roi = train_set.roi[idx].to(dev)
    if config.shift_augment > 0:
        shifts = D.random_shifts(len(idx), config.shift_augment, config.seed, step, info.rank)
        ratio = config.render_size / windows.shape[-1]
        windows = D.shift_images(windows, shifts)
        target, fg, roi = (D.shift_images(t, shifts, ratio) for t in (target, fg, roi))
    seg_real = window_onehot(windows, nets.lut, nets.num_channels, False) if use_adv else None  # D reads frame t's one-hot
    painted = None
    if nets.palette is not None:
        gen = torch.Generator().manual_seed(((config.seed * 1_000_003 + step) * 64 + info.rank) * 2 + 2)
        painted = paint_batch(windows, roi, nets.palette, nets.lut, config.paint_prob, config.paint_radius, gen)
        windows = painted.windows
    seg = generator_input(nets.G, windows, nets.lut, nets.num_channels, config.temporal_window)
    seg_c = window_onehot(windows, nets.lut, nets.num_channels, False) if use_adv else None  # the fake's own (painted) labels
    scalars: dict[str, float] = {}

    fake = nets.G(seg)
    if use_adv:
        nets.D.requires_grad_(True)
        do_gp = config.lambda_gp > 0 and step % config.gp_every == 0
        real_in = target.detach().requires_grad_(do_gp)
        real_logits = nets.D(real_in, seg_real)
        d_loss = d_bce_loss(real_logits, nets.D(fake.detach(), seg_c))
        scalars["loss/d_bce"] = d_loss.item()
        if do_gp:
            gp = r1_penalty(real_logits, real_in)
            d_loss = d_loss + config.lambda_gp * config.gp_every * gp
            scalars["loss/d_r1"] = gp.item()
        nets.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        average_gradients(nets.D, info)
        nets.opt_d.step()
        nets.D.requires_grad_(False)

    weight = config.bg_weight + (1.0 - config.bg_weight) * fg + config.roi_l1_weight * roi
    frame_weight = weight  # where the shot's own frame is the target (SSIM compares structure only there)
    g_target = target
    if painted is not None:  # under a painted ellipse the shot's frame is not the target
        frame_weight = weight * keep_weight(painted.blob, config.paint_margin, fake.shape[-1])
        g_target, weight = painted_targets(fake, target, weight, painted, config.paint_margin,
                                           config.lambda_paint * (1.0 + config.roi_l1_weight))
        scalars["loss/paint"] = palette_loss(fake.detach(), painted.blob, painted.colours).item()
    l1 = smooth_l1(fake, g_target, weight, beta=config.l1_beta)
    g_loss = config.lambda_l1 * l1
    scalars["loss/l1"] = l1.item()
    if config.lambda_ssim > 0:
        structure = ssim_loss(fake, target, frame_weight)
        g_loss = g_loss + config.lambda_ssim * structure
        scalars["loss/ssim"] = structure.item()
    if nets.roi_perceptual is not None:
        perc = nets.roi_perceptual(fake, g_target, roi)
        g_loss = g_loss + perc
        scalars["loss/perceptual"] = perc.item()
    if use_adv:
        g_adv = g_bce_loss(nets.D(fake, seg_c))
        g_loss = g_loss + config.lambda_adv * g_adv
        scalars["loss/g_adv"] = g_adv.item()
    scalars["loss/g_total"] = g_loss.item()
    nets.opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    average_gradients(nets.G, info)
    if config.grad_clip > 0:
        scalars["grad/g_norm"] = float(torch.nn.utils.clip_grad_norm_(nets.G.parameters(), config.grad_clip))
    nets.opt_g.step()
    if nets.guard.enabled:
        loss_all = float(all_reduce_mean(g_loss.detach(), info))  # every rank decides alike
        if nets.guard.step(step, loss_all, nets.modules, nets.optimizers):
            r = nets.guard.rollbacks[-1]
            log.warning("Stage II loss spiked at step %d (%.4g against a running %.4g): weights back to "
                        "step %d, learning rates x%.3g from now on", step, r.loss, r.reference,
                        r.restored_step, r.lr_factor)
            scalars["train/rollbacks"] = float(len(nets.guard.rollbacks))
    return scalars
