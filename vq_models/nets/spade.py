"""Stage II networks: an encoder-free SPADE generator with a learned constant input, and a (multi-scale)
patch discriminator.

Why encoder-free with a constant input (paper Sec. 3.3): the renderer is personalised to one subject, so
everything about their appearance lives in the weights and the constant tensor; the only thing that
varies per frame is the label map, injected at every resolution by SPADE. No noise input means the same
label window always renders the same frame, which keeps edits repeatable.

Module names follow NVlabs/SPADE (``SPADE.mlp_shared/mlp_gamma/mlp_beta``, ``SPADEResnetBlock.conv_0/
conv_1/conv_s``, ``norm_0/norm_1/norm_s``) so the structure is familiar to anyone who knows that code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm as _sn


def _maybe_sn(layer: nn.Module, use: bool) -> nn.Module:
    return _sn(layer) if use else layer


class SPADE(nn.Module):
    """Parameter-free instance norm, then a per-pixel scale and shift predicted from the label map.

    Instance norm (not batch norm) because Stage II trains with batches of 1-4 frames.

    ``shared=True``: the norm takes an already embedded label map (the block computes the embedding once
    for all its norms) and keeps only the γ/β heads. When the label map is coarser than the features, γ/β
    are predicted at the label map's resolution and upsampled bilinearly (``upsample_params=True``) instead
    of predicting them from a nearest-upsampled label map: the labels hold no detail above their own
    resolution, so the expensive convolutions at the top resolution would only re-learn the upsampling."""

    def __init__(self, norm_nc: int, label_nc: int, hidden: int = 128, kernel_size: int = 3, shared: bool = False,
                 upsample_params: bool = False):
        super().__init__()
        pad = kernel_size // 2
        self.shared = bool(shared)
        self.upsample_params = bool(upsample_params)
        self.param_free_norm = nn.InstanceNorm2d(norm_nc, affine=False)
        if not self.shared:
            self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel_size, padding=pad), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)

    def forward(self, x: Tensor, segmap: Tensor) -> Tensor:
        """``segmap``: the label map (or, when ``shared``, its embedding) at any resolution."""
        normalized = self.param_free_norm(x)
        size = x.shape[-2:]
        coarse = self.upsample_params and segmap.shape[-2] < size[0]
        if segmap.shape[-2:] != size and not coarse:
            segmap = F.interpolate(segmap, size=size, mode="nearest")
        actv = segmap if self.shared else self.mlp_shared(segmap)
        gamma, beta = self.mlp_gamma(actv), self.mlp_beta(actv)
        if coarse:  # one resampling call for both maps
            both = F.interpolate(torch.cat([gamma, beta], 1), size=size, mode="bilinear", align_corners=False)
            gamma, beta = both.split(gamma.shape[1], dim=1)
        return normalized * (1 + gamma) + beta


class SPADEResnetBlock(nn.Module):
    """Two SPADE-norm → LeakyReLU → conv stages with a (learned where the width changes) shortcut.

    ``shared_embed``: one label embedding (``embed``: conv + ReLU) per block, shared by its SPADE norms —
    the NVlabs layout gives every norm its own, which triples the widest convolution for no gain when
    one subject is rendered."""

    def __init__(self, fin: int, fout: int, label_nc: int, hidden: int = 128, spectral: bool = False,
                 shared_embed: bool = False, upsample_params: bool = False):
        super().__init__()
        self.learned_shortcut = fin != fout
        self.shared_embed = bool(shared_embed)
        fmiddle = min(fin, fout)
        self.conv_0 = _maybe_sn(nn.Conv2d(fin, fmiddle, 3, padding=1), spectral)
        self.conv_1 = _maybe_sn(nn.Conv2d(fmiddle, fout, 3, padding=1), spectral)
        if self.shared_embed:
            self.embed = nn.Sequential(nn.Conv2d(label_nc, hidden, 3, padding=1), nn.ReLU())
        kw = {"shared": self.shared_embed, "upsample_params": upsample_params}
        self.norm_0 = SPADE(fin, label_nc, hidden, **kw)
        self.norm_1 = SPADE(fmiddle, label_nc, hidden, **kw)
        if self.learned_shortcut:
            self.conv_s = _maybe_sn(nn.Conv2d(fin, fout, 1, bias=False), spectral)
            self.norm_s = SPADE(fin, label_nc, hidden, **kw)

    def forward(self, x: Tensor, seg: Tensor) -> Tensor:
        if self.shared_embed:
            if seg.shape[-2] > x.shape[-2]:
                seg = F.interpolate(seg, size=x.shape[-2:], mode="nearest")
            seg = self.embed(seg)
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx


def generator_channels(render_size: int, const_size: int, ch_max: int, ch_min: int) -> list[int]:
    """Widths per resolution, halving from ``ch_max`` at the constant's size down to ``ch_min``."""
    if render_size % const_size or (render_size // const_size) & (render_size // const_size - 1):
        raise ValueError(f"render_size {render_size} must be const_size {const_size} times a power of two")
    n_up = int(math.log2(render_size // const_size))
    return [max(ch_min, ch_max >> i) for i in range(n_up + 1)]


class SPADEGenerator(nn.Module):
    """Constant tensor → SPADE ResNet blocks with 2x upsampling → RGB in [0, 1] at ``render_size``.

    ``label_nc`` is the number of input channels of the conditioning map (3 frames x classes for the
    temporal window t-1, t, t+1)."""

    def __init__(
        self,
        label_nc: int,
        render_size: int = 128,
        const_size: int = 4,
        ch_max: int = 256,
        ch_min: int = 32,
        hidden: int = 64,
        spectral: bool = False,
        shared_embed: bool = False,
        upsample_params: bool = False,
        spatial_bias_from: int = 0,
        label_embed: int = 0,
    ):
        super().__init__()
        self.label_nc = int(label_nc)
        self.render_size = int(render_size)
        self.upsample_params = bool(upsample_params)
        chans = generator_channels(render_size, const_size, ch_max, ch_min)
        kw = {"shared_embed": shared_embed, "upsample_params": upsample_params}
        # Optional learned code embedding (a 1x1 conv on the one-hot window, i.e. one vector per code and
        # window slot, summed): the SPADE convolutions then read ``label_embed`` channels instead of 3K. With
        # K = 128 codes the 3x3 label convolutions are otherwise most of a CPU step, and their cost grows
        # with K; the embedding makes it independent of K. 0 keeps the NVlabs layout (one-hot straight in).
        self.label_embed = nn.Conv2d(label_nc, int(label_embed), 1) if label_embed else None
        block_nc = int(label_embed) if label_embed else label_nc
        self.const = nn.Parameter(torch.randn(1, chans[0], const_size, const_size))
        self.head_0 = SPADEResnetBlock(chans[0], chans[0], block_nc, hidden, spectral, **kw)
        self.up_blocks = nn.ModuleList(
            SPADEResnetBlock(chans[i], chans[i + 1], block_nc, hidden, spectral, **kw) for i in range(len(chans) - 1)
        )
        self.conv_img = nn.Conv2d(chans[-1], 3, 3, padding=1)
        # Learned crop-space maps added to the block outputs at resolutions >= spatial_bias_from (0 = none):
        # prep aligns the face, so fine skin/hair texture sits almost still in crop space. A per-pixel map
        # stores it directly — the 8² constant cannot, and re-deriving it from label geometry is slow to learn.
        # Zero at init, deterministic at inference (no noise), like the constant itself.
        sizes = [const_size * 2 ** (i + 1) for i in range(len(chans) - 1)]
        self.spatial_bias = nn.ParameterDict({
            str(r): nn.Parameter(torch.zeros(1, chans[i + 1], r, r))
            for i, r in enumerate(sizes) if spatial_bias_from and r >= spatial_bias_from
        })

    def _seg_at(self, seg: Tensor, size: int, cache: dict[int, Tensor]) -> Tensor:
        """The label map at ``size`` (nearest), computed once per resolution; never upsampled when the
        SPADE parameters are upsampled instead."""
        if self.upsample_params:
            size = min(size, seg.shape[-1])
        if size == seg.shape[-1]:
            return seg
        if size not in cache:
            cache[size] = F.interpolate(seg, size=(size, size), mode="nearest")
        return cache[size]

    def embed_indices(self, index: Tensor) -> Tensor:
        """(B, T, L, L) integer channel per window slot → (B, label_embed, L, L), exactly the 1x1 label
        embedding of the one-hot map (slot t's channel c is one-hot channel t*C + c) without building it.
        Why: at K=255 codes and 128² labels the float one-hot window is 200 MB a batch; a gather of T
        embedding rows per pixel is what the conv computes anyway."""
        if self.label_embed is None:
            raise ValueError("channel indices need label_embed > 0 (the one-hot layout reads every channel)")
        b, t, h, w = index.shape
        per_slot = self.label_embed.in_channels // t
        table = self.label_embed.weight[:, :, 0, 0].t()  # (T*C, E)
        offsets = index.long() + torch.arange(t, device=index.device).view(1, t, 1, 1) * per_slot
        emb = F.embedding(offsets, table).sum(dim=1)  # (B, L, L, E)
        return emb.permute(0, 3, 1, 2) + self.label_embed.bias.view(1, -1, 1, 1)

    def forward(self, seg: Tensor) -> Tensor:
        """``seg`` (B, label_nc, L, L) one-hot, or with ``label_embed`` (B, T, L, L) integer channel indices
        per window slot → (B, 3, R, R) sRGB in [0, 1]."""
        cache: dict[int, Tensor] = {}
        if not seg.is_floating_point():
            seg = self.embed_indices(seg)
        elif self.label_embed is not None:
            seg = self.label_embed(seg)
        x = self.const.expand(seg.shape[0], -1, -1, -1)
        x = self.head_0(x, self._seg_at(seg, x.shape[-1], cache))
        for block in self.up_blocks:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(x, self._seg_at(seg, x.shape[-1], cache))
            bias = self.spatial_bias.get(str(x.shape[-1])) if len(self.spatial_bias) else None
            if bias is not None:
                x = x + bias
        x = self.conv_img(F.leaky_relu(x, 0.2))
        return torch.tanh(x) * 0.5 + 0.5


class NLayerDiscriminator(nn.Module):
    """PatchGAN: strided convs to a map of real/fake logits, each judging one patch of the image."""

    def __init__(self, in_nc: int, ndf: int = 64, n_layers: int = 3, spectral: bool = True):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        nf = ndf
        for i in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            stride = 2 if i < n_layers - 1 else 1
            layers += [_maybe_sn(nn.Conv2d(nf_prev, nf, 4, stride=stride, padding=1), spectral), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(nf, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class MultiscaleDiscriminator(nn.Module):
    """``num_d`` patch discriminators on the image at 1, 1/2, 1/4 ... scale; conditional on the label map
    of the centre frame when ``label_nc`` > 0 (label concatenated to the image, as in pix2pixHD/SPADE)."""

    def __init__(self, label_nc: int, ndf: int = 64, n_layers: int = 3, num_d: int = 1, spectral: bool = True):
        super().__init__()
        self.label_nc = int(label_nc)
        self.discriminators = nn.ModuleList(
            NLayerDiscriminator(3 + self.label_nc, ndf, n_layers, spectral) for _ in range(num_d)
        )

    def forward(self, image: Tensor, seg: Tensor | None = None) -> list[Tensor]:
        x = image
        if self.label_nc:
            if seg is None:
                raise ValueError("conditional discriminator needs the label map")
            if seg.shape[-2:] != image.shape[-2:]:
                seg = F.interpolate(seg, size=image.shape[-2:], mode="nearest")
            x = torch.cat([image, seg], dim=1)
        outs = []
        for i, d in enumerate(self.discriminators):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(d(x))
        return outs
