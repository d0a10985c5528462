"""StyleGAN2 generator in plain PyTorch, state-dict compatible with rosinality/stylegan2-pytorch.

Why this exists: Stage I inverts frames into a *pretrained* StyleGAN2 and reads its intermediate
feature maps. The public FFHQ weights (``stylegan2-ffhq-config-f.pt``) are stored in rosinality's
module layout, so every parameter and buffer here carries exactly the same name and shape
(``style.N``, ``input.input``, ``conv1.*``, ``to_rgb1.*``, ``convs.N.*``, ``to_rgbs.N.*``,
``noises.noise_N``) and the checkpoint loads with ``load_state_dict(strict=True)``.

Unlike the reference, nothing needs a compiled CUDA/C++ op: the FIR up-sampling (``upfirdn2d``) and the
fused bias + leaky ReLU are written with ordinary torch ops, so the same code runs on CPU and GPU.

A ``channels`` override ({resolution: channels}) lets tests and CPU presets build a small model with the
same topology (e.g. 64 channels at 256²), which trains and renders in seconds instead of minutes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

LEAKY_SLOPE = 0.2
ACT_GAIN = math.sqrt(2.0)


def default_channels(channel_multiplier: int = 2) -> dict[int, int]:
    """Rosinality's per-resolution channel table (config-f when ``channel_multiplier=2``)."""
    cm = channel_multiplier
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm,
            512: 32 * cm, 1024: 16 * cm}


def small_generator_config(size: int, max_channels: int = 64) -> dict:
    """Keyword arguments for a fast CPU generator with config-f's shape, scaled down.

    Channels stay at ``max_channels`` up to 64² and halve per octave above it (as config-f does from
    64² on), never below 16; the mapping network is shorter and narrower (4 x 128) because its cost and
    capacity matter little for a per-shot prior.
    """
    if size < 8 or size & (size - 1):
        raise ValueError(f"size must be a power of two >= 8, got {size}")
    channels = {}
    res = 4
    while res <= size:
        scale = max(1, res // 64)
        channels[res] = max(16, max_channels // scale)
        res *= 2
    return {"size": size, "style_dim": 128, "n_mlp": 4, "channel_multiplier": 2, "channels": channels}


# --------------------------------------------------------------------------------------------------
# Low-level ops (plain torch)
# --------------------------------------------------------------------------------------------------


def make_kernel(k: Sequence[float] | Tensor) -> Tensor:
    """Normalised 2-D FIR kernel from a separable 1-D tap list (outer product)."""
    k = torch.as_tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x: Tensor, kernel: Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)) -> Tensor:
    """Upsample by zero insertion, pad, FIR-filter, downsample: the reference op in plain torch.

    ``pad`` is (before, after), applied to both axes as in the reference; negative values crop.
    The kernel is flipped so the result is a true convolution, matching the CUDA op bit for bit in
    semantics (the kernels used here are symmetric anyway).
    """
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    if p0 or p1:
        x = F.pad(x, [p0, p1, p0, p1])
    kh, kw = kernel.shape
    weight = torch.flip(kernel, [0, 1]).to(x.dtype).view(1, 1, kh, kw).expand(c, 1, kh, kw)
    x = F.conv2d(x, weight, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def fused_leaky_relu(x: Tensor, bias: Tensor, scale: float = ACT_GAIN) -> Tensor:
    """Bias add + leaky ReLU(0.2) + gain sqrt(2): what rosinality's fused CUDA op computes."""
    shape = [1, -1] + [1] * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), LEAKY_SLOPE) * scale


# --------------------------------------------------------------------------------------------------
# Layers (names and shapes mirror the reference so state dicts are interchangeable)
# --------------------------------------------------------------------------------------------------


class PixelNorm(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class FusedLeakyReLU(nn.Module):
    """Learned per-channel bias followed by the scaled leaky ReLU (key: ``bias``)."""

    def __init__(self, channel: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))

    def forward(self, x: Tensor) -> Tensor:
        return fused_leaky_relu(x, self.bias)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (weights stored unscaled, scaled at run time)."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: str | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.activation = activation
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            out = F.linear(x, self.weight * self.scale)
            return fused_leaky_relu(out, bias) if bias is not None else F.leaky_relu(out, LEAKY_SLOPE) * ACT_GAIN
        return F.linear(x, self.weight * self.scale, bias=bias)


class Blur(nn.Module):
    """FIR low-pass used after the transposed conv of an up-sampling modulated conv."""

    def __init__(self, kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * (upsample_factor ** 2)
        self.register_buffer("kernel", k)
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x FIR up-sampling of the RGB skip path."""

    def __init__(self, kernel: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        k = make_kernel(kernel) * (factor ** 2)
        self.register_buffer("kernel", k)
        p = k.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Style-modulated (and optionally demodulated) conv; same parameters as the reference layer."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False, blur_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.kernel_size = kernel_size
        self.upsample = upsample
        self.demodulate = demodulate
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.scale = 1.0 / math.sqrt(in_channel * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        """Modulate the activations instead of the weights (equivalent, one shared-weight conv).

        (x * s) conv W == x conv (W * s), and demodulation is a per-output-channel scale applied after
        the conv. A single batched conv is several times faster on CPU than the per-sample grouped conv
        of the reference, and gives the same result up to float rounding.
        """
        b, cin = x.shape[:2]
        s = self.modulation(style)  # (B, cin)
        weight = self.scale * self.weight[0]  # (cout, cin, k, k)
        x = x * s.view(b, cin, 1, 1)
        if self.upsample:
            out = F.conv_transpose2d(x, weight.transpose(0, 1), padding=0, stride=2)
            out = self.blur(out)
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            w2 = weight.pow(2).sum([2, 3])  # (cout, cin)
            demod = torch.rsqrt(s.pow(2) @ w2.t() + 1e-8)  # (B, cout)
            out = out * demod.view(b, self.out_channel, 1, 1)
        return out


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, noise: Tensor | None = None) -> Tensor:
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        return x + self.weight * noise


class ConstantInput(nn.Module):
    def __init__(self, channel: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int) -> Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int,
                 upsample: bool = False, blur_kernel: Sequence[float] = (1, 3, 3, 1), demodulate: bool = True):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, demodulate=demodulate,
                                    upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x: Tensor, style: Tensor, noise: Tensor | None = None) -> Tensor:
        return self.activate(self.noise(self.conv(x, style), noise=noise))


class ToRGB(nn.Module):
    def __init__(self, in_channel: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


# --------------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------------


class Generator(nn.Module):
    """StyleGAN2 generator (mapping + synthesis) with rosinality's parameter layout.

    ``channels`` overrides the per-resolution widths (keys 4, 8, ..., size); without it the reference
    table for ``channel_multiplier`` is used, so default arguments build config-f exactly.
    """

    def __init__(self, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1), lr_mlp: float = 0.01,
                 channels: dict[int, int] | None = None):
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"size must be a power of two >= 8, got {size}")
        self.size = size
        self.style_dim = style_dim
        self.n_mlp = n_mlp
        self.channel_multiplier = channel_multiplier
        blur_kernel = list(blur_kernel)

        layers: list[nn.Module] = [PixelNorm()]
        for _ in range(n_mlp):
            layers.append(EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu"))
        self.style = nn.Sequential(*layers)

        self.log_size = int(math.log2(size))
        table = default_channels(channel_multiplier)
        if channels is not None:
            table = {int(k): int(v) for k, v in channels.items()}
            missing = [2 ** i for i in range(2, self.log_size + 1) if 2 ** i not in table]
            if missing:
                raise ValueError(f"channels override lacks resolutions {missing}")
        self.channels = {2 ** i: table[2 ** i] for i in range(2, self.log_size + 1)}

        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(self.channels[4], self.channels[4], 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(self.channels[4], style_dim, upsample=False)

        self.num_layers = (self.log_size - 2) * 2 + 1
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()  # empty, kept for module-tree parity with the reference
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for layer_idx in range(self.num_layers):
            res = (layer_idx + 5) // 2
            self.noises.register_buffer(f"noise_{layer_idx}", torch.randn(1, 1, 2 ** res, 2 ** res))

        in_channel = self.channels[4]
        for i in range(3, self.log_size + 1):
            out_channel = self.channels[2 ** i]
            self.convs.append(StyledConv(in_channel, out_channel, 3, style_dim, upsample=True,
                                         blur_kernel=blur_kernel))
            self.convs.append(StyledConv(out_channel, out_channel, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_channel, style_dim, blur_kernel=blur_kernel))
            in_channel = out_channel

        self.n_latent = self.log_size * 2 - 2

    # -- latents -----------------------------------------------------------------------------------

    def mean_latent(self, n_latent: int) -> Tensor:
        """Average W of ``n_latent`` random z (shape (1, style_dim)), the truncation / e4e anchor."""
        z = torch.randn(n_latent, self.style_dim, device=self.input.input.device)
        return self.style(z).mean(0, keepdim=True)

    def get_latent(self, z: Tensor) -> Tensor:
        return self.style(z)

    def make_noise(self) -> list[Tensor]:
        device = self.input.input.device
        return [torch.randn_like(getattr(self.noises, f"noise_{i}"), device=device) for i in range(self.num_layers)]

    # -- synthesis ---------------------------------------------------------------------------------

    def _noise_list(self, noise_mode: str) -> list[Tensor | None]:
        if noise_mode == "random":
            return [None] * self.num_layers
        if noise_mode == "const":
            return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        if noise_mode == "none":
            return [torch.zeros_like(getattr(self.noises, f"noise_{i}")) for i in range(self.num_layers)]
        raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")

    def _run(self, latent: Tensor, noise: Sequence[Tensor | None], taps: set[int]) -> tuple[Tensor, dict[int, Tensor]]:
        """Synthesis network on a W+ tensor (B, n_latent, style_dim); collects tapped feature maps."""
        feats: dict[int, Tensor] = {}
        out = self.input(latent.shape[0])
        out = self.conv1(out, latent[:, 0], noise=noise[0])
        if 4 in taps:
            feats[4] = out
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        res = 4
        for conv_up, conv, n1, n2, to_rgb in zip(self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2],
                                                  self.to_rgbs, strict=True):
            res *= 2
            out = conv_up(out, latent[:, i], noise=n1)
            out = conv(out, latent[:, i + 1], noise=n2)
            if res in taps:
                feats[res] = out
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        return skip, feats

    def synthesize(self, w_plus: Tensor, *, feature_resolutions: Sequence[int] = (),
                   noise_mode: str = "const",
                   noise: Sequence[Tensor | None] | None = None) -> tuple[Tensor, dict[int, Tensor]]:
        """Render W+ codes and return (image (B,3,size,size) ~[-1,1], {res: last style-conv output}).

        ``w_plus`` is (B, n_latent, style_dim) or (B, style_dim) (broadcast to every layer).
        ``noise_mode``: ``const`` uses the stored per-layer noise (deterministic, what inversion
        wants), ``random`` draws fresh noise, ``none`` disables it. ``noise`` (one entry per layer, as
        rosinality's ``noise=``) overrides it per layer: a tensor (B or 1, 1, r, r) is used as that layer's
        noise map, ``None`` falls back to ``noise_mode``. For config-f at 1024 the taps 64/128/256 have
        512/256/128 channels.
        """
        if w_plus.ndim == 2:
            w_plus = w_plus.unsqueeze(1).expand(-1, self.n_latent, -1)
        if w_plus.ndim != 3 or w_plus.shape[1] != self.n_latent or w_plus.shape[2] != self.style_dim:
            raise ValueError(f"w_plus must be (B, {self.n_latent}, {self.style_dim}), got {tuple(w_plus.shape)}")
        taps = {int(r) for r in feature_resolutions}
        bad = sorted(r for r in taps if r not in self.channels)
        if bad:
            raise ValueError(f"feature resolutions {bad} not in generator resolutions {sorted(self.channels)}")
        maps = self._noise_list(noise_mode)
        if noise is not None:
            if len(noise) != self.num_layers:
                raise ValueError(f"noise needs {self.num_layers} entries (one per layer), got {len(noise)}")
            maps = [n if n is not None else m for n, m in zip(noise, maps, strict=True)]
        return self._run(w_plus, maps, taps)

    def forward(self, styles, return_latents: bool = False, inject_index: int | None = None,
                truncation: float = 1, truncation_latent: Tensor | None = None, input_is_latent: bool = False,
                noise: Sequence[Tensor | None] | None = None, randomize_noise: bool = True):
        """Rosinality-compatible call: ``styles`` is a list of z (or w with ``input_is_latent``)."""
        if not input_is_latent:
            styles = [self.style(s) for s in styles]
        if noise is None:
            noise = self._noise_list("random" if randomize_noise else "const")
        if truncation < 1:
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        if len(styles) < 2:
            latent = styles[0]
            if latent.ndim < 3:
                latent = latent.unsqueeze(1).repeat(1, self.n_latent, 1)
        else:
            if inject_index is None:
                inject_index = random.randint(1, self.n_latent - 1)
            latent = torch.cat([styles[0].unsqueeze(1).repeat(1, inject_index, 1),
                                styles[1].unsqueeze(1).repeat(1, self.n_latent - inject_index, 1)], 1)
        image, _ = self._run(latent, noise, set())
        return (image, latent) if return_latents else (image, None)
