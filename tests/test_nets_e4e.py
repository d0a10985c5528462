"""e4e encoder (IR-SE50 layout), latent discriminator and the light CPU encoder."""

from __future__ import annotations

import torch

from vq_models.nets.e4e import Encoder4Editing, LatentDiscriminator
from vq_models.nets.light_encoder import LightEncoder

torch.set_num_threads(1)


def e4e_expected_shapes(size: int) -> dict[str, tuple[int, ...]]:
    """Every state-dict entry of omertov's Encoder4Editing(50, 'ir_se'), derived from its constructor."""
    out: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            out[f"{prefix}.{name}"] = (c,)
        out[f"{prefix}.num_batches_tracked"] = ()

    out["input_layer.0.weight"] = (64, 3, 3, 3)
    bn("input_layer.1", 64)
    out["input_layer.2.weight"] = (64,)
    units = []
    for cin, depth, n in ((64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3)):
        units += [(cin, depth)] + [(depth, depth)] * (n - 1)
    assert len(units) == 24
    for i, (cin, d) in enumerate(units):
        p = f"body.{i}"
        if cin != d:
            out[f"{p}.shortcut_layer.0.weight"] = (d, cin, 1, 1)
            bn(f"{p}.shortcut_layer.1", d)
        bn(f"{p}.res_layer.0", cin)
        out[f"{p}.res_layer.1.weight"] = (d, cin, 3, 3)
        out[f"{p}.res_layer.2.weight"] = (d,)
        out[f"{p}.res_layer.3.weight"] = (d, d, 3, 3)
        bn(f"{p}.res_layer.4", d)
        out[f"{p}.res_layer.5.fc1.weight"] = (d // 16, d, 1, 1)
        out[f"{p}.res_layer.5.fc2.weight"] = (d, d // 16, 1, 1)
    n_styles = 2 * (size.bit_length() - 1) - 2
    for i in range(n_styles):
        spatial = 16 if i < 3 else 32 if i < 7 else 64
        for j in range(spatial.bit_length() - 1):
            out[f"styles.{i}.convs.{2 * j}.weight"] = (512, 512, 3, 3)
            out[f"styles.{i}.convs.{2 * j}.bias"] = (512,)
        out[f"styles.{i}.linear.weight"] = (512, 512)
        out[f"styles.{i}.linear.bias"] = (512,)
    out["latlayer1.weight"] = (512, 256, 1, 1)
    out["latlayer1.bias"] = (512,)
    out["latlayer2.weight"] = (512, 128, 1, 1)
    out["latlayer2.bias"] = (512,)
    return out


def test_full_e4e_state_dict_matches_reference_layout_on_meta():
    with torch.device("meta"):
        enc = Encoder4Editing(1024)
    got = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    want = e4e_expected_shapes(1024)
    assert sorted(got) == sorted(want)
    assert got == want
    assert enc.n_latent == 18


def test_small_e4e_forward_progressive_deltas():
    torch.manual_seed(0)
    enc = Encoder4Editing(size=16, width=16, style_dim=32).eval()
    x = torch.rand(2, 3, 128, 128) * 2 - 1  # resized to 256 inside
    with torch.no_grad():
        codes = enc(x)
        assert codes.shape == (2, 6, 32)
        assert torch.isfinite(codes).all()
        # distinct deltas per layer at full progressive stage
        assert (codes[:, 1] - codes[:, 0]).abs().max() > 0
        enc.progressive_stage = 0
        only_w0 = enc(x)
    torch.testing.assert_close(only_w0, only_w0[:, :1].expand_as(only_w0))
    torch.testing.assert_close(only_w0[:, 0], codes[:, 0])


def test_latent_discriminator_layout_and_training_step():
    torch.manual_seed(0)
    disc = LatentDiscriminator(style_dim=16, n_mlp=4)
    assert sorted(disc.state_dict()) == sorted(f"mlp.{i}.{p}" for i in (0, 2, 4, 6) for p in ("weight", "bias"))
    real, fake = torch.randn(64, 16) + 2.0, torch.randn(64, 16) - 2.0
    opt = torch.optim.Adam(disc.parameters(), lr=1e-2)

    def loss() -> torch.Tensor:
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        r, f = disc(real), disc(fake)
        return bce(r, torch.ones_like(r)) + bce(f, torch.zeros_like(f))

    start = loss().item()
    for _ in range(20):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    assert loss().item() < 0.5 * start


def test_light_encoder_starts_at_latent_avg_and_learns():
    torch.manual_seed(0)
    enc = LightEncoder(size=32, n_latent=8, style_dim=16, channels=8)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    out = enc(x)
    assert out.shape == (4, 8, 16)
    assert out.abs().max() == 0  # zero-init heads: the caller's latent_avg is the starting point
    target = torch.randn(4, 8, 16) * 0.5
    opt = torch.optim.Adam(enc.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        opt.zero_grad()
        loss = (enc(x) - target).pow(2).mean()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.6 * first
    # other input sizes are resized to the encoder's size
    assert enc(torch.zeros(1, 3, 64, 64)).shape == (1, 8, 16)


def test_light_encoder_features_still_depend_on_the_input_at_init():
    """Default PyTorch init let biases swamp the signal (relative spread across inputs ~0.008), so every
    frame mapped to one W+; He init with zero biases keeps it (~0.7)."""
    import torch

    from vq_models.nets.light_encoder import LightEncoder

    torch.manual_seed(0)
    enc = LightEncoder(64, 10, 32)
    h = enc.stem(torch.rand(4, 3, 64, 64) * 2 - 1)
    for block in enc.blocks:
        h = block(h)
    ratio = (h.flatten(1).std(0).mean() / h.abs().mean()).item()
    assert ratio > 0.3
