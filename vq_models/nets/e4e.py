"""IR-SE50 body, the e4e inversion encoder and e4e's latent-code discriminator.

Why: the paper fine-tunes a pretrained e4e (``e4e_ffhq_encode.pt``) rather than training an encoder
from scratch. Module names and shapes follow omertov/encoder4editing (``input_layer``, ``body.N`` of
``bottleneck_IR_SE`` units, ``styles.N`` GradualStyleBlocks, ``latlayer1/2``) so its ``encoder.*`` state
dict loads strictly; the same IR-SE50 body (plus ``output_layer``) is the ArcFace net behind the
identity loss (:mod:`vq_models.nets.identity`).

Output contract of :class:`Encoder4Editing` (same as e4e and :class:`~vq_models.nets.light_encoder.LightEncoder`):
``forward(x)`` returns codes of shape (B, n_latent, 512) *relative to* ``latent_avg`` — e4e's w0 broadcast
to every layer plus the progressive per-layer deltas. The caller adds ``latent_avg`` (e4e's
``start_from_latent_avg``) before calling the generator.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vq_models.nets.stylegan2 import EqualLinear

# units per stage of IR-50; stage widths are width * (1, 2, 4, 8) (64 → 64/128/256/512, the real net)
IR50_UNITS: tuple[int, ...] = (3, 4, 14, 3)


def ir_units(width: int = 64) -> list[tuple[int, int, int]]:
    """Flat list of (in_channel, depth, stride) for every bottleneck unit; first of a stage strides 2."""
    stages = [(width, width, IR50_UNITS[0])]
    for i in range(1, 4):
        stages.append((width * 2 ** (i - 1), width * 2 ** i, IR50_UNITS[i]))
    units = []
    for cin, depth, n in stages:
        units.append((cin, depth, 2))
        units.extend((depth, depth, 1) for _ in range(n - 1))
    return units


class SEModule(nn.Module):
    """Squeeze-and-excitation gate (keys ``fc1``/``fc2``, no biases)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))


class BottleneckIRSE(nn.Module):
    """Improved-residual unit with SE (``shortcut_layer`` + ``res_layer.0..5``)."""

    def __init__(self, in_channel: int, depth: int, stride: int):
        super().__init__()
        if in_channel == depth:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_channel, depth, 1, stride, bias=False),
                                                nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channel),
            nn.Conv2d(in_channel, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SEModule(depth, 16),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


def make_input_layer(width: int = 64) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.PReLU(width))


def make_ir_se50_body(width: int = 64) -> nn.Sequential:
    """The 24-unit IR-SE50 body; ``width=64`` is the published network, smaller widths keep the layout."""
    return nn.Sequential(*[BottleneckIRSE(cin, d, s) for cin, d, s in ir_units(width)])


class GradualStyleBlock(nn.Module):
    """Strided convs down to 1x1, then an equalised linear: one W vector from a pyramid level."""

    def __init__(self, in_c: int, out_c: int, spatial: int):
        super().__init__()
        self.out_c = out_c
        layers: list[nn.Module] = [nn.Conv2d(in_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        for _ in range(int(math.log2(spatial)) - 1):
            layers += [nn.Conv2d(out_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_c, out_c, lr_mul=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.convs(x).reshape(-1, self.out_c))


def _upsample_add(x: Tensor, y: Tensor) -> Tensor:
    return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y


class Encoder4Editing(nn.Module):
    """e4e encoder: IR-SE50 body, 3-level feature pyramid, w0 + progressive per-layer deltas.

    ``size`` is the generator resolution (1024 for FFHQ); it sets ``n_latent = 2*log2(size) - 2``.
    Input images in [-1, 1] are resized to ``input_size`` (256, what e4e was trained on) if needed.
    ``progressive_stage`` (0..n_latent-1) limits how many deltas are inferred, as e4e's training
    schedule does; the default infers all of them.

    Defaults (``width=64``, ``style_dim=512``) are the published network. A smaller ``width`` (and a
    ``style_dim`` matching a small generator) keeps every key name, for CPU presets and tests; the
    pooling depth of each style head assumes ``input_size=256``.
    """

    coarse_ind = 3
    middle_ind = 7

    def __init__(self, size: int = 1024, input_size: int = 256, width: int = 64, style_dim: int = 512):
        super().__init__()
        self.input_size = input_size
        self.width = width
        self.input_layer = make_input_layer(width)
        self.body = make_ir_se50_body(width)
        self.style_count = 2 * int(math.log2(size)) - 2
        self.n_latent = self.style_count
        self.style_dim = style_dim
        top = width * 8
        self.styles = nn.ModuleList()
        for i in range(self.style_count):
            spatial = 16 if i < self.coarse_ind else 32 if i < self.middle_ind else 64
            self.styles.append(GradualStyleBlock(top, style_dim, spatial))
        self.latlayer1 = nn.Conv2d(width * 4, top, 1)
        self.latlayer2 = nn.Conv2d(width * 2, top, 1)
        self.progressive_stage = self.style_count - 1

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=True)
        x = self.input_layer(x)
        c1 = c2 = c3 = x
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i == 6:
                c1 = x  # 128 ch at 1/4
            elif i == 20:
                c2 = x  # 256 ch at 1/8
            elif i == 23:
                c3 = x  # 512 ch at 1/16
        w0 = self.styles[0](c3)
        codes = [w0]
        features = p2 = c3
        for i in range(1, self.style_count):
            if i > self.progressive_stage:
                codes.append(w0)
                continue
            if i == self.coarse_ind:
                p2 = _upsample_add(c3, self.latlayer1(c2))
                features = p2
            elif i == self.middle_ind:
                features = _upsample_add(p2, self.latlayer2(c1))
            codes.append(w0 + self.styles[i](features))
        return torch.stack(codes, dim=1)


class LatentDiscriminator(nn.Module):
    """e4e's latent-code discriminator (MLP on single W vectors; keys ``mlp.0``, ``mlp.2``, ...).

    It keeps encoded codes inside the generator's W distribution (L_adv of the paper): real samples
    are mapping-network outputs, fake ones the encoder's per-layer codes.
    """

    def __init__(self, style_dim: int = 512, n_mlp: int = 4):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(n_mlp - 1):
            layers += [nn.Linear(style_dim, style_dim), nn.LeakyReLU(0.2)]
        layers.append(nn.Linear(style_dim, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, w: Tensor) -> Tensor:
        return self.mlp(w)
