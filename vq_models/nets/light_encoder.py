"""A small inversion encoder for CPU presets, with the e4e output contract.

Why: IR-SE50 (e4e) has ~50M parameters and needs a GPU to fine-tune in reasonable time; the ``tiny``
and ``cpu`` presets pair a small generator with this encoder instead. It keeps e4e's design idea —
one shared base code plus per-layer deltas, coarse layers from coarse features and fine layers from
finer ones — at a few channels, and returns codes *relative to* ``latent_avg`` (the caller adds it).
The output heads are zero-initialised, so an untrained encoder yields exactly ``latent_avg``: training
starts from the average face instead of a random point in W+.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(cout, cout, 3, 1, 1),
                         nn.LeakyReLU(0.2))


class LightEncoder(nn.Module):
    """Strided conv pyramid → three pooled feature levels → base code + per-layer deltas.

    ``forward(x)`` takes (B, 3, H, W) in [-1, 1] (resized to ``size``) and returns (B, n_latent, style_dim).
    Layers ``[0, n_latent//3)`` read the coarsest level, the middle third the middle level, the rest
    the finest, mirroring e4e's coarse/middle/fine split.
    """

    def __init__(self, size: int, n_latent: int, style_dim: int, channels: int = 32):
        super().__init__()
        if size < 16 or size & (size - 1):
            raise ValueError(f"size must be a power of two >= 16, got {size}")
        self.size = size
        self.n_latent = n_latent
        self.style_dim = style_dim
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, 1, 1), nn.LeakyReLU(0.2))
        n_down = int(math.log2(size)) - 2  # down to 4x4
        blocks = []
        widths = [channels]
        for i in range(n_down):
            cout = min(channels * 2 ** ((i + 1) // 2), channels * 4)
            blocks.append(_block(widths[-1], cout))
            widths.append(cout)
        self.blocks = nn.ModuleList(blocks)
        # taps: 4x4 (coarse), 8x8 (middle), 16x16 (fine) outputs of the pyramid
        self.tap_index = {"coarse": n_down - 1, "middle": n_down - 2, "fine": max(n_down - 3, 0)}
        hidden = max(style_dim, 64)
        self.heads = nn.ModuleDict()
        for name, idx in self.tap_index.items():
            c = widths[idx + 1]
            self.heads[name] = nn.Sequential(nn.Linear(c * 2, hidden), nn.LeakyReLU(0.2))
        self.base = nn.Linear(hidden, style_dim)
        third = max(1, n_latent // 3)
        self.split = (third, min(n_latent, 2 * third))
        self.delta = nn.ModuleDict({
            "coarse": nn.Linear(hidden, self.split[0] * style_dim),
            "middle": nn.Linear(hidden, (self.split[1] - self.split[0]) * style_dim),
            "fine": nn.Linear(hidden, (n_latent - self.split[1]) * style_dim),
        })
        # He init with zero biases for the hidden layers: with PyTorch's default init the biases swamp the
        # signal after a few layers and every frame maps to nearly the same W+ (measured spread ~1e-7),
        # which leaves the quantizer nothing but position to cluster on.
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, a=0.2, nonlinearity="leaky_relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for layer in [self.base, *self.delta.values()]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        h = self.stem(x)
        feats = []
        for block in self.blocks:
            h = block(h)
            feats.append(h)
        pooled = {}
        for name, idx in self.tap_index.items():
            f = feats[idx]
            pooled[name] = self.heads[name](torch.cat([f.mean((2, 3)), f.amax((2, 3))], dim=1))
        b = x.shape[0]
        w0 = self.base(pooled["coarse"]).unsqueeze(1)
        deltas = torch.cat([self.delta[name](pooled[name]).view(b, -1, self.style_dim)
                            for name in ("coarse", "middle", "fine")], dim=1)
        return w0 + deltas
