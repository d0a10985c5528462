"""X_VQ: what the quantizer reads, built from the generator's tapped feature maps (paper Section 3.2).

Each tap is instance-normalised over the foreground and scaled so that it holds its share of the cosine
distance (:func:`scale_multipliers`); optionally the generator's RGB output and the colour around each
pixel join as three-channel taps (:func:`rgb_multiplier`). Its own module because training, inference
(``stage1_model``) and ``vqedit recluster`` build it the same way, apart from the quantizer's EMA.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

__all__ = ["build_vq_input", "context_colour", "gaussian_blur", "masked_instance_norm", "rgb_multiplier",
           "region_channels", "region_tap_multiplier", "scale_multipliers", "resize_mask", "CONTEXT_SIGMA",
           "EYE_MOUTH_SPLIT"]

# the context colour tap's Gaussian sigma as a fraction of the label width (1.5 px at 128² labels)
CONTEXT_SIGMA = 0.012
# the region tap's line between the eye and the mouth parts of the ROI, as a fraction of the aligned crop's
# height: the FFHQ-style crop puts the eyes near 0.4 and the mouth near 0.72 whatever the face's size
EYE_MOUTH_SPLIT = 0.56


@torch.no_grad()
def build_vq_input(
    features: Mapping[int, torch.Tensor],
    resolutions: Sequence[int],
    label_size: int,
    fg_mask: torch.Tensor | None,
    scale_multipliers: Sequence[float] | None = None,
    image: torch.Tensor | None = None,
    image_multiplier: float = 0.0,
    context_multiplier: float = 0.0,
    context_sigma: float = CONTEXT_SIGMA,
    roi: torch.Tensor | None = None,
    region_multiplier: float = 0.0,
) -> torch.Tensor:
    """The paper's mip-map VQ input ``X_VQ``: each tapped map instance-normalised, bilinearly upsampled to
    ``label_size``, concatenated along channels and multiplied by the foreground mask.

    ``features`` maps resolution -> (B, C_r, r, r); ``fg_mask`` is (B, S', S') or (B, 1, S', S') in [0, 1]
    at any size (resized bilinearly). ``scale_multipliers`` (one per resolution, default all 1 = the paper)
    scales each instance-normalised map before concatenation; see :func:`scale_multipliers`.

    ``image`` (B, 3, S, S), the generator's RGB output, joins as one more tap when ``image_multiplier`` > 0
    (:func:`rgb_multiplier`): resized to ``label_size`` (area filter when shrinking, so a 1024² render does
    not alias), instance-normalised like the others, scaled, concatenated last. Why: the to-RGB layer is
    the generator's finest feature. On a from-scratch CPU-size generator the tapped maps are 32 channels
    wide and their cosine blurs a 2-px gap between the teeth, or a pupil, into its neighbours. The colour
    keeps white teeth, the dark interior and the pupil apart at label resolution.

    ``context_multiplier`` > 0 adds the *context colour* tap after it: the same RGB blurred over the
    foreground (:func:`context_colour`, Gaussian sigma ``context_sigma`` × label width), normalised with
    foreground statistics (:func:`masked_instance_norm`) and scaled the same way. Why: colour alone cannot
    tell a catchlight on a pupil from a highlight on skin or hair (both near white), nor a dark iris rim
    from a pupil; with the colour *around* the pixel they part.
    On the synthetic shot a fifth of the pupil's pixels sit under the catchlight, and with plain colour
    they joined skin/hair highlight codes (see Stage1Config.vq_context_weight for the figures).

    ``region_multiplier`` > 0 adds the *region* tap last: the ROI mask ``roi`` (B, 1, S', S') split into its
    eye and mouth parts (:func:`region_channels`), scaled by :func:`region_tap_multiplier`. Why: appearance alone
    lets a code straddle a dark pupil and black hair or brows, a brown iris and brown brows, an upper lip and
    the skin above it, so the code-to-part matching gives each part only some of its pixels. The tracker
    already knows which pixels are near an eye or the mouth; with that as two channels, codes inside an eye
    or the mouth stay apart from the rest of the face and from each other, and appearance still decides the
    parts within each region (measured on the untuned `vqedit synth --vary` faces: benchmarks/RESULTS.md).

    Returns a detached (B, sum C_r [+ 3] [+ 3] [+ 2], label_size, label_size) tensor.
    """
    if scale_multipliers is not None and len(scale_multipliers) != len(resolutions):
        raise ValueError(f"{len(scale_multipliers)} scale multipliers for {len(resolutions)} resolutions")
    parts = []
    for i, res in enumerate(resolutions):
        if res not in features:
            raise KeyError(f"feature map at {res}x{res} was not tapped (have {sorted(features)})")
        f = features[res].detach().float()
        f = F.instance_norm(f)
        if f.shape[-1] != label_size:
            f = F.interpolate(f, size=(label_size, label_size), mode="bilinear", align_corners=False)
        if scale_multipliers is not None and float(scale_multipliers[i]) != 1.0:
            f = f * float(scale_multipliers[i])
        parts.append(f)
    if image_multiplier > 0 or context_multiplier > 0:
        if image is None:
            raise ValueError("the RGB and context colour taps need the generator's RGB image")
        rgb = image.detach().float()
        if rgb.shape[-1] != label_size:
            shrink = rgb.shape[-1] > label_size
            rgb = F.interpolate(rgb, size=(label_size, label_size), mode="area" if shrink else "bilinear",
                                **({} if shrink else {"align_corners": False}))
        # normalised after resizing, so the tap's share is its weight whatever the image size
        if image_multiplier > 0:
            parts.append(F.instance_norm(rgb) * float(image_multiplier))
        if context_multiplier > 0:
            weight = resize_mask(fg_mask, label_size).to(rgb) if fg_mask is not None else None
            context = context_colour(rgb, context_sigma * label_size, weight)
            # normalised over the face only: centred on the face's own mean colour, the dark-eye and
            # skin contexts point opposite ways; with the background in the statistics they did not
            # (synthetic shot, 3 seeds: pupil IoU 0.44-0.52 with whole-crop statistics, 0.74-0.77 with these)
            parts.append(masked_instance_norm(context, weight) * float(context_multiplier))
    if region_multiplier > 0:
        if roi is None:
            raise ValueError("the region tap needs the ROI mask")
        parts.append(region_channels(roi, label_size) * float(region_multiplier))
    x = torch.cat(parts, dim=1)
    if fg_mask is not None:
        x = x * resize_mask(fg_mask, label_size).to(x)
    return x


def masked_instance_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float = 1e-5) -> torch.Tensor:
    """Instance norm of (B, C, H, W) whose per-channel mean and variance are weighted by ``weight``
    (B, 1, H, W) (the foreground), so whatever surrounds the face does not move the statistics. ``None``
    (or an empty mask) is plain instance norm."""
    if weight is None:
        return F.instance_norm(x, eps=eps)
    weight = weight.to(x)
    total = weight.sum(dim=(2, 3), keepdim=True)
    if bool((total <= 0).any()):
        return F.instance_norm(x, eps=eps)
    mean = (x * weight).sum(dim=(2, 3), keepdim=True) / total
    var = ((x - mean) ** 2 * weight).sum(dim=(2, 3), keepdim=True) / total
    return (x - mean) / torch.sqrt(var + eps)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) with ``sigma`` in pixels, edges replicated (3-sigma support)."""
    radius = max(1, math.ceil(3.0 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def context_colour(rgb: torch.Tensor, sigma: float, weight: torch.Tensor | None = None) -> torch.Tensor:
    """The colour around each pixel: (B, 3, H, W) ``rgb`` Gaussian-blurred with ``sigma`` pixels.

    With ``weight`` (B, 1, H, W) in [0, 1] (the foreground mask) the blur is normalised by the blurred
    weight, so a face pixel next to the background averages face pixels only; where the weight vanishes
    the result is the plain pixel colour. Why normalised: the crop's background is whatever the plate
    shows, and letting it bleed in would make the hairline's and jaw's codes depend on the set dressing.
    """
    if sigma <= 0:
        raise ValueError(f"context sigma must be > 0 pixels, got {sigma}")
    if weight is None:
        return gaussian_blur(rgb, sigma)
    weight = weight.to(rgb)
    num = gaussian_blur(rgb * weight, sigma)
    den = gaussian_blur(weight, sigma)
    return torch.where(den > 1e-3, num / den.clamp_min(1e-3), rgb)


def scale_multipliers(channels: Sequence[int], weights: Sequence[float] | None) -> list[float]:
    """Per-scale multipliers that give tapped scale ``r`` a share of the squared feature norm proportional to
    ``weights[r]``.

    Why: after instance norm every channel has unit variance, so in the concatenated vector a scale's
    pull on the cosine distance grows with its channel count. StyleGAN's coarse layers are the widest, so
    plain concatenation lets 16²/32² "where on the face" features outvote the fine layers that tell a
    pupil from an iris; the clusters then come out as position patches. Multiplying scale ``r`` by
    ``sqrt(w_r / C_r)`` makes each scale contribute ``w_r`` (equal weights = equal say). ``None`` or an
    empty sequence keeps the paper's plain concatenation (all multipliers 1).
    """
    if not weights:
        return [1.0] * len(channels)
    if len(weights) != len(channels):
        raise ValueError(f"{len(weights)} scale weights for {len(channels)} tapped resolutions")
    if any(float(w) < 0 for w in weights) or not any(float(w) > 0 for w in weights):
        raise ValueError(f"scale weights must be >= 0 with at least one > 0, got {list(weights)}")
    return [math.sqrt(float(w) / int(c)) for w, c in zip(weights, channels, strict=True)]


def rgb_multiplier(weight: float) -> float:
    """Multiplier for a three-channel tap of :func:`build_vq_input` (the RGB or the context colour) so that
    it holds ``weight`` of the squared feature norm, in the units of :func:`scale_multipliers` (with no
    scale weights, the paper's plain concatenation, each unit-variance channel counts 1). 0 = tap off."""
    if weight < 0:
        raise ValueError(f"RGB tap weight must be >= 0, got {weight}")
    return math.sqrt(float(weight) / 3.0)


def region_channels(roi: torch.Tensor, label_size: int, split: float = EYE_MOUTH_SPLIT) -> torch.Tensor:
    """The ROI mask (B, H, W) or (B, 1, H, W) in [0, 1] as two channels at ``label_size``: its part above
    ``split`` × height (the eyes) and below it (the mouth), each mapped to [-1, 1]. A pixel outside the ROI
    is (-1, -1), in an eye (1, -1), in the mouth (-1, 1), so the three regions are equally far apart."""
    m = resize_mask(roi, label_size)
    rows = (torch.arange(label_size, dtype=m.dtype, device=m.device) + 0.5) / label_size
    above = (rows < split).to(m.dtype).view(1, 1, label_size, 1)
    return torch.cat([m * above, m * (1.0 - above)], dim=1) * 2.0 - 1.0


def region_tap_multiplier(weight: float) -> float:
    """Multiplier for the two-channel region tap so it holds ``weight`` of the squared feature norm (the units
    of :func:`scale_multipliers`); 0 = tap off."""
    if weight < 0:
        raise ValueError(f"region tap weight must be >= 0, got {weight}")
    return math.sqrt(float(weight) / 2.0)


def resize_mask(mask: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """(B, H, W) or (B, 1, H, W) mask -> (B, 1, h, w) at ``size`` (an int means square), bilinear."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    m = mask.detach().float()
    if m.dim() == 3:
        m = m[:, None]
    if tuple(m.shape[-2:]) != hw:
        m = F.interpolate(m, size=hw, mode="bilinear", align_corners=False)
    return m
