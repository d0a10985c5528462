"""StyleGAN2 generator: rosinality key layout, plain-torch upfirdn2d, synthesis and feature taps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vq_models.nets.stylegan2 import Generator, make_kernel, small_generator_config, upfirdn2d

torch.set_num_threads(1)


def rosinality_expected_shapes(size: int, style_dim: int, n_mlp: int, cm: int) -> dict[str, tuple[int, ...]]:
    """Every state-dict entry of rosinality's Generator, derived by hand from its constructor."""
    ch = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm, 1024: 16 * cm}
    log_size = int(np.log2(size))
    out: dict[str, tuple[int, ...]] = {}
    for i in range(1, n_mlp + 1):
        out[f"style.{i}.weight"] = (style_dim, style_dim)
        out[f"style.{i}.bias"] = (style_dim,)
    out["input.input"] = (1, ch[4], 4, 4)

    def styled(prefix: str, cin: int, cout: int, up: bool) -> None:
        out[f"{prefix}.conv.weight"] = (1, cout, cin, 3, 3)
        if up:
            out[f"{prefix}.conv.blur.kernel"] = (4, 4)
        out[f"{prefix}.conv.modulation.weight"] = (cin, style_dim)
        out[f"{prefix}.conv.modulation.bias"] = (cin,)
        out[f"{prefix}.noise.weight"] = (1,)
        out[f"{prefix}.activate.bias"] = (cout,)

    def to_rgb(prefix: str, cin: int, up: bool) -> None:
        if up:
            out[f"{prefix}.upsample.kernel"] = (4, 4)
        out[f"{prefix}.conv.weight"] = (1, 3, cin, 1, 1)
        out[f"{prefix}.conv.modulation.weight"] = (cin, style_dim)
        out[f"{prefix}.conv.modulation.bias"] = (cin,)
        out[f"{prefix}.bias"] = (1, 3, 1, 1)

    styled("conv1", ch[4], ch[4], False)
    to_rgb("to_rgb1", ch[4], False)
    cin = ch[4]
    for k, i in enumerate(range(3, log_size + 1)):
        cout = ch[2 ** i]
        styled(f"convs.{2 * k}", cin, cout, True)
        styled(f"convs.{2 * k + 1}", cout, cout, False)
        to_rgb(f"to_rgbs.{k}", cout, True)
        cin = cout
    for layer in range((log_size - 2) * 2 + 1):
        res = 2 ** ((layer + 5) // 2)
        out[f"noises.noise_{layer}"] = (1, 1, res, res)
    return out


def test_config_f_state_dict_matches_rosinality_layout_on_meta():
    with torch.device("meta"):
        g = Generator(1024, 512, 8, channel_multiplier=2)
    got = {k: tuple(v.shape) for k, v in g.state_dict().items()}
    want = rosinality_expected_shapes(1024, 512, 8, 2)
    assert sorted(got) == sorted(want)
    assert got == want
    assert g.n_latent == 18
    # the parameter count of config-f's g_ema (rosinality) is 30.37M
    assert sum(p.numel() for p in g.parameters()) == pytest.approx(30_370_060, rel=1e-3)


def _reference_upfirdn2d(x: np.ndarray, k: np.ndarray, up: int, down: int, pad: tuple[int, int]) -> np.ndarray:
    """Direct loop definition: zero-insert, pad (negative crops), true convolution, decimate."""
    c, h, w = x.shape
    z = np.zeros((c, h * up, w * up))
    z[:, ::up, ::up] = x
    p0, p1 = pad
    z = np.pad(z, ((0, 0), (max(p0, 0), max(p1, 0)), (max(p0, 0), max(p1, 0))))
    z = z[:, max(-p0, 0): z.shape[1] - max(-p1, 0), max(-p0, 0): z.shape[2] - max(-p1, 0)]
    kh, kw = k.shape
    kf = k[::-1, ::-1]
    oh, ow = z.shape[1] - kh + 1, z.shape[2] - kw + 1
    out = np.zeros((c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, i, j] = (z[:, i:i + kh, j:j + kw] * kf).sum(axis=(1, 2))
    return out[:, ::down, ::down]


@pytest.mark.parametrize("up,down,pad", [(2, 1, (2, 1)), (1, 1, (1, 1)), (1, 2, (1, 1)), (2, 1, (-1, 0))])
def test_upfirdn2d_matches_direct_definition(up, down, pad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 6))
    k = rng.standard_normal((4, 3))  # asymmetric so a missing flip would show
    got = upfirdn2d(torch.tensor(x[None], dtype=torch.float64), torch.tensor(k), up=up, down=down, pad=pad)
    want = _reference_upfirdn2d(x, k, up, down, pad)
    np.testing.assert_allclose(got[0].numpy(), want, rtol=1e-10, atol=1e-10)


def test_upsample_kernel_preserves_flat_images():
    k = make_kernel([1, 3, 3, 1]) * 4
    x = torch.full((1, 2, 8, 8), 0.7)
    y = upfirdn2d(x, k, up=2, pad=(2, 1))
    assert y.shape == (1, 2, 16, 16)
    torch.testing.assert_close(y[..., 2:-2, 2:-2], torch.full_like(y[..., 2:-2, 2:-2], 0.7))


def test_small_generator_synthesize_shapes_taps_and_gradients():
    torch.manual_seed(0)
    cfg = small_generator_config(64, max_channels=32)
    g = Generator(**cfg)
    assert g.n_latent == 10
    w = g.mean_latent(64).unsqueeze(1).repeat(2, g.n_latent, 1) + 0.1 * torch.randn(2, g.n_latent, g.style_dim)
    w = w.detach().requires_grad_(True)
    img, feats = g.synthesize(w, feature_resolutions=(16, 32, 64))
    assert img.shape == (2, 3, 64, 64)
    assert {r: tuple(f.shape) for r, f in feats.items()} == {16: (2, 32, 16, 16), 32: (2, 32, 32, 32),
                                                           64: (2, 32, 64, 64)}
    assert torch.isfinite(img).all() and img.std() > 1e-3
    img.mean().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
    # const noise is deterministic; random noise is not (once noise weights are non-zero)
    with torch.no_grad():
        for conv in g.convs:
            conv.noise.weight.fill_(0.5)
        a, _ = g.synthesize(w.detach(), noise_mode="const")
        b, _ = g.synthesize(w.detach(), noise_mode="const")
        c, _ = g.synthesize(w.detach(), noise_mode="random")
    torch.testing.assert_close(a, b)
    assert (a - c).abs().max() > 1e-4
    with pytest.raises(ValueError, match="feature resolutions"):
        g.synthesize(w.detach(), feature_resolutions=(48,))


def test_forward_is_rosinality_compatible_and_matches_synthesize():
    torch.manual_seed(1)
    g = Generator(**small_generator_config(32, max_channels=16)).eval()
    z = torch.randn(2, g.style_dim)
    with torch.no_grad():
        img, latent = g([z], return_latents=True, randomize_noise=False)
        assert latent.shape == (2, g.n_latent, g.style_dim)
        img2, _ = g.synthesize(latent, noise_mode="const")
        torch.testing.assert_close(img, img2)
        w_avg = g.mean_latent(256)
        trunc, _ = g([z], truncation=0.0, truncation_latent=w_avg, randomize_noise=False)
        avg_img, _ = g.synthesize(w_avg.expand(2, -1), noise_mode="const")
        torch.testing.assert_close(trunc, avg_img)
        mixed, lat = g([z, torch.randn(2, g.style_dim)], inject_index=3, return_latents=True)
        torch.testing.assert_close(lat[:, 0], lat[:, 2])
        assert (lat[:, 2] - lat[:, 3]).abs().max() > 0


@pytest.mark.parametrize("upsample,demodulate", [(False, True), (True, True), (False, False)])
def test_modulated_conv_equals_per_sample_weight_modulation(upsample, demodulate):
    """The activation-modulated conv must equal the reference's per-sample modulated weights."""
    from vq_models.nets.stylegan2 import ModulatedConv2d

    torch.manual_seed(2)
    k = 3 if demodulate else 1
    layer = ModulatedConv2d(6, 5, k, 8, demodulate=demodulate, upsample=upsample).double()
    x, style = torch.randn(3, 6, 7, 7, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
    got = layer(x, style)
    outs = []
    for b in range(3):
        s = layer.modulation(style[b:b + 1])[0]
        w = layer.scale * layer.weight[0] * s.view(1, 6, 1, 1)
        if demodulate:
            w = w / torch.sqrt(w.pow(2).sum((1, 2, 3), keepdim=True) + 1e-8)
        if upsample:
            out = torch.nn.functional.conv_transpose2d(x[b:b + 1], w.transpose(0, 1), stride=2)
            out = layer.blur(out)
        else:
            out = torch.nn.functional.conv2d(x[b:b + 1], w, padding=k // 2)
        outs.append(out)
    torch.testing.assert_close(got, torch.cat(outs), rtol=1e-9, atol=1e-9)
    assert got.shape == ((3, 5, 14, 14) if upsample else (3, 5, 7, 7))
