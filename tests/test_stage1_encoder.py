"""The spatial from-scratch inversion encoder: starts at the average face, keeps the layout, fits fast."""

from __future__ import annotations

import torch

from vq_models.stage1_model import SpatialEncoder, build_encoder

torch.set_num_threads(1)


def test_starts_at_latent_avg_and_has_the_w_plus_shape():
    enc = SpatialEncoder(32, n_latent=8, style_dim=16, channels=4)
    out = enc(torch.randn(3, 3, 48, 48))  # any input size: resized to 32
    assert out.shape == (3, 8, 16)
    assert torch.count_nonzero(out) == 0  # zero-initialised output: W+ = latent_avg before training


def test_position_reaches_w_plus_where_global_pooling_would_lose_it():
    """Two images that differ only by where a dot sits have identical global mean/max statistics; the
    spatial encoder must still learn to tell them apart (that is gaze or mouth opening in a face)."""
    torch.manual_seed(0)
    enc = build_encoder({"kind": "spatial", "size": 32, "n_latent": 4, "style_dim": 8, "channels": 4})
    a = -torch.ones(1, 3, 32, 32)
    b = a.clone()
    a[..., 8:12, 8:12] = 1.0
    b[..., 8:12, 20:24] = 1.0
    x = torch.cat([a, b])
    target = torch.stack([torch.ones(4, 8), -torch.ones(4, 8)])
    opt = torch.optim.Adam(enc.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = (enc(x) - target).pow(2).mean()
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = enc(x).detach()
    assert float((out - target).pow(2).mean()) < 0.1 * first
    assert (out[0].mean() - out[1].mean()) > 1.0
