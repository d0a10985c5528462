"""Painted-region augmentation for Stage II: a code painted where the shot never showed it must still
render as that code.

Why: every label-map edit paints codes into places the shot never had them (``teeth 0`` paints cavity
where the upper teeth always were, ``eye_open 0`` paints eyelid over the eye). Trained only on the shot's
own label maps, the renderer reads position and neighbours as much as the code: on the synthetic shot a
cavity code painted over the upper teeth rendered at (0.38, 0.15, 0.135) display RGB, brighter than that
code's own mean over the shot (0.32, 0.105, 0.112).

What it does, per training step: a fraction (``paint_prob``) of the batch gets an ellipse of one code
painted into its ROI, in all three window slots as edits do. The code is drawn uniformly from the distinct
codes near the ellipse, so the rare ones (a one-pixel-wide dark cavity code) are painted as often as the
common ones. The frame under the ellipse is not the target any more, so the L1 skips a ``paint_margin`` band
around it, and inside it the L1 pulls the render's mean colour to the code's mean colour over the training
frames (its appearance, not its texture: a painted teeth code keeps its gaps); see :func:`painted_targets`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class CodePalette:
    """Each conditioning channel's mean target colour over the training frames."""

    colours: Tensor  # (C, 3) mean sRGB colour per channel (raw code or prior group); 0 where never seen
    pixels: Tensor  # (C,) label pixels each channel covers in the training frames


@dataclass(frozen=True)
class PaintedBatch:
    """A batch after painting: the edited windows, where each was painted, and what colour to expect."""

    windows: Tensor  # (B, 3, L, L) uint8 codes
    blob: Tensor  # (B, 1, L, L) float {0, 1}: the painted ellipse (all zeros for unpainted samples)
    colours: Tensor  # (B, 3) the painted channel's palette colour (unused where blob is empty)


def code_palette(windows: Tensor, targets: Tensor, lut: Tensor, num_channels: int) -> CodePalette:
    """Palette of the training frames: ``windows`` (N, 3, L, L) codes (slot 1 = frame t) and ``targets``
    (N, 3, R, R) sRGB. Targets are area-resized to the label grid so each label pixel pairs with the colour
    it covers."""
    codes = windows[:, 1].long()
    size = codes.shape[-1]
    colour = F.interpolate(targets.float(), size=(size, size), mode="area") if targets.shape[-1] != size else targets.float()
    channel = lut.long()[codes].reshape(-1)
    sums = torch.zeros(num_channels, 3).index_add_(0, channel, colour.permute(0, 2, 3, 1).reshape(-1, 3))
    counts = torch.zeros(num_channels).index_add_(0, channel, torch.ones_like(channel, dtype=torch.float32))
    return CodePalette(colours=sums / counts.clamp_min(1.0)[:, None], pixels=counts)


def paint_batch(
    windows: Tensor, roi: Tensor, palette: CodePalette, lut: Tensor, prob: float, radius: int,
    generator: torch.Generator,
) -> PaintedBatch:
    """Paint one ellipse of one nearby code into each sample's ROI with probability ``prob``.

    The ellipse is centred on a random ROI pixel (label grid) with semi-axes drawn in [2, radius] across and
    [1, radius / 2] down: mouth and eye parts are wider than tall. Its code is drawn uniformly from the
    distinct codes of frame t within 2 x ``radius`` of the centre, i.e. a code displaced locally, which is
    what edits do (cavity over teeth, eyelid over the eye, skin over a brow), rather than a teeth code in a
    pupil, which no edit asks for. (Codes from anywhere in the ROI were only tried with an earlier form of
    the loss, which failed for another reason, see :func:`painted_targets`; no difference is claimed.) A
    sample without ROI pixels stays as it was."""
    b, _, size, _ = windows.shape
    out = windows.clone()
    blob = torch.zeros(b, 1, size, size, device=windows.device)
    colours = torch.zeros(b, 3, device=windows.device)
    if prob <= 0:
        return PaintedBatch(out, blob, colours)
    region = F.interpolate(roi.float(), size=(size, size), mode="area") if roi.shape[-1] != size else roi.float()
    ys = torch.arange(size, device=windows.device, dtype=torch.float32).view(-1, 1)
    xs = torch.arange(size, device=windows.device, dtype=torch.float32).view(1, -1)
    reach = 2 * radius
    for i in range(b):
        draw = torch.rand(5, generator=generator)
        if float(draw[0]) >= prob:
            continue
        where = torch.nonzero(region[i, 0] > 0.5)
        if where.numel() == 0:
            continue
        cy, cx = (int(v) for v in where[int(draw[1] * len(where)) % len(where)])
        rx = 2.0 + float(draw[2]) * max(radius - 2.0, 0.0)
        ry = 1.0 + float(draw[3]) * max(radius / 2.0 - 1.0, 0.0)
        ellipse = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1.0
        near = torch.unique(windows[i, 1, max(cy - reach, 0) : cy + reach + 1, max(cx - reach, 0) : cx + reach + 1])
        code = near[int(draw[4] * len(near)) % len(near)]
        out[i, :, ellipse] = code
        blob[i, 0] = ellipse.float()
        colours[i] = palette.colours[lut.long()[code.long().cpu()]].to(colours.device)
    return PaintedBatch(out, blob, colours)


def painted_targets(
    fake: Tensor, target: Tensor, weight: Tensor, painted: PaintedBatch, margin: int, paint_weight: float
) -> tuple[Tensor, Tensor]:
    """The L1 target and weight for a painted batch.

    Outside the painted ellipses (grown by ``margin`` label px) they are the shot's frame and ``weight``.
    On the band around an ellipse the weight is 0: the frame there shows the code that was painted over.
    Inside an ellipse the target is the render itself shifted by (palette colour - the render's mean
    colour there), weighted ``paint_weight``: every painted pixel is pulled by the same amount toward the
    code's colour, so texture stays free and only the mean is held. Why a target and not a separate loss on
    the mean: a mean over a few dozen pixels puts its whole gradient on them, about 50x the L1's per pixel,
    and Adam's normalisation then starved the reconstruction (benchmarks/RESULTS.md); as L1 targets they
    weigh what ROI pixels weigh."""
    size = fake.shape[-1]
    blob = painted.blob if painted.blob.shape[-1] == size else F.interpolate(painted.blob, size=(size, size), mode="nearest")
    band = 1.0 - keep_weight(painted.blob, margin, size)
    area = blob.sum(dim=(2, 3)).clamp_min(1.0)
    mean = (fake.detach() * blob).sum(dim=(2, 3)) / area
    toward = fake.detach() - (mean - painted.colours)[:, :, None, None]
    g_target = target * (1.0 - band) + fake.detach() * (band - blob) + toward * blob
    g_weight = weight * (1.0 - band) + paint_weight * blob
    return g_target, g_weight


def keep_weight(blob: Tensor, margin: int, render_size: int) -> Tensor:
    """(B, 1, R, R) float: 0 on the painted ellipse grown by ``margin`` label pixels, 1 elsewhere — where the
    shot's own frame is still the right target."""
    grown = F.max_pool2d(blob, 2 * margin + 1, stride=1, padding=margin) if margin > 0 else blob
    if grown.shape[-1] != render_size:
        grown = F.interpolate(grown, size=(render_size, render_size), mode="nearest")
    return 1.0 - grown


def palette_loss(render: Tensor, blob: Tensor, colours: Tensor) -> Tensor:
    """Mean over painted samples of the L1 distance between the render's mean colour inside the ellipse and
    the painted code's palette colour (0 when nothing was painted): what :func:`painted_targets` drives
    down, logged as ``loss/paint``."""
    mask = blob if blob.shape[-1] == render.shape[-1] else F.interpolate(blob, size=render.shape[-2:], mode="nearest")
    area = mask.sum(dim=(1, 2, 3))
    painted = area > 0
    if not bool(painted.any()):
        return render.sum() * 0.0
    mean = (render * mask).sum(dim=(2, 3)) / area.clamp_min(1.0)[:, None]
    return (mean - colours).abs().mean(dim=1)[painted].mean()
