"""Stage II networks and conditioning: shapes, one-hot windows with edge repeats, prior grouping."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vq_models.errors import InputError
from vq_models.metrics import ssim
from vq_models.nets.spade import (
    SPADE,
    MultiscaleDiscriminator,
    SPADEGenerator,
    SPADEResnetBlock,
    generator_channels,
)
from vq_models.train.data import (
    ChannelMapping,
    codes_to_onehot,
    label_window,
    read_prior,
    split_frames,
    window_indices,
)
from vq_models.train.losses import RoiPerceptualLoss, d_bce_loss, r1_penalty, smooth_l1, ssim_loss

torch.set_num_threads(1)


def test_generator_renders_requested_size_in_unit_range():
    torch.manual_seed(0)
    G = SPADEGenerator(label_nc=3 * 5, render_size=64, const_size=4, ch_max=32, ch_min=8, hidden=8)
    seg = torch.zeros(2, 15, 16, 16)
    seg[:, 0] = 1
    out = G(seg).detach()
    assert out.shape == (2, 3, 64, 64)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert len(G.up_blocks) == 4  # 4 → 8 → 16 → 32 → 64
    names = set(dict(G.named_modules()))
    for n in ("head_0.norm_0.mlp_shared", "head_0.norm_0.mlp_gamma", "head_0.norm_0.mlp_beta",
              "up_blocks.0.conv_s", "up_blocks.0.norm_s", "up_blocks.0.conv_1"):
        assert n in names, n


def test_generator_output_depends_on_labels_and_is_deterministic():
    torch.manual_seed(0)
    G = SPADEGenerator(label_nc=4, render_size=16, const_size=4, ch_max=16, ch_min=8, hidden=8).eval()
    a = torch.zeros(1, 4, 8, 8)
    a[:, 0] = 1
    b = torch.zeros(1, 4, 8, 8)
    b[:, 3] = 1
    assert torch.equal(G(a), G(a))
    assert (G(a) - G(b)).abs().max() > 1e-3


def test_channels_and_bad_sizes():
    assert generator_channels(128, 8, 128, 32) == [128, 64, 32, 32, 32]
    with pytest.raises(ValueError):
        generator_channels(96, 8, 64, 16)


def test_spade_block_shortcut_and_interpolated_segmap():
    block = SPADEResnetBlock(8, 4, label_nc=3, hidden=4)
    x = torch.randn(1, 8, 10, 10)
    seg = torch.rand(1, 3, 5, 5)
    assert block(x, seg).shape == (1, 4, 10, 10)
    assert block.learned_shortcut and not SPADEResnetBlock(4, 4, 3).learned_shortcut
    norm = SPADE(8, 3, hidden=4)
    assert norm(x, seg).shape == x.shape


def test_multiscale_conditional_discriminator_and_r1():
    D = MultiscaleDiscriminator(label_nc=2, ndf=8, n_layers=2, num_d=2)
    img = torch.rand(2, 3, 32, 32, requires_grad=True)
    seg = torch.zeros(2, 2, 8, 8)
    outs = D(img, seg)
    assert len(outs) == 2 and outs[0].shape[0] == 2 and outs[1].shape[-1] < outs[0].shape[-1]
    gp = r1_penalty(outs, img)
    assert gp.item() > 0
    assert d_bce_loss(outs, outs).item() == pytest.approx(2 * np.log(2), abs=0.5)
    with pytest.raises(ValueError):
        D(img)


def test_window_repeats_edge_frames():
    assert window_indices(0, 5) == (0, 0, 1)
    assert window_indices(2, 5) == (1, 2, 3)
    assert window_indices(4, 5) == (3, 4, 4)
    frames = [1001, 1002, 1003]
    labels = {f: np.full((4, 4), i, np.uint8) for i, f in enumerate(frames)}
    w = label_window(frames, labels, 0)
    assert w.shape == (3, 4, 4) and [int(w[i, 0, 0]) for i in range(3)] == [0, 0, 1]
    w = label_window(frames, labels, 2)
    assert [int(w[i, 0, 0]) for i in range(3)] == [1, 2, 2]


def test_onehot_is_frame_major_and_uses_lut():
    codes = torch.tensor([[[[0, 1]], [[2, 2]], [[1, 0]]]], dtype=torch.uint8)  # (1, 3, 1, 2)
    lut = torch.tensor([0, 1, 2] + [0] * 253)
    oh = codes_to_onehot(codes, lut, 3)
    assert oh.shape == (1, 9, 1, 2)
    assert oh[0, :, 0, 0].tolist() == [1, 0, 0, 0, 0, 1, 0, 1, 0]
    assert oh.sum(1).eq(3).all()


def test_shift_moves_labels_and_images_together_with_edge_repeat():
    from vq_models.train.data import random_shifts, shift_images
    from vq_models.train.stage2 import load_stage2_config

    labels = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    labels[0, :, 1, 1] = 5
    labels[1, :, 0, :] = 7  # top row: repeated into the border when shifted down
    image = torch.zeros(2, 1, 8, 8)
    image[0, 0, 2:4, 2:4] = 1.0  # the image block under label pixel (1, 1)
    shifts = torch.tensor([[1, 2], [1, 0]])
    moved = shift_images(labels, shifts)
    assert moved.dtype == torch.uint8
    assert moved[0, 0, 2, 3] == 5 and int((moved[0] == 5).sum()) == 3  # one pixel per window frame, moved
    assert (moved[1, :, 0] == 7).all() and (moved[1, :, 1] == 7).all()  # edge repeated, not zero-filled
    big = shift_images(image, shifts, scale=2.0)
    assert torch.equal(torch.nonzero(big[0, 0] == 1.0), torch.tensor([[4, 6], [4, 7], [5, 6], [5, 7]]))
    a, b = random_shifts(16, 3, seed=1, step=5), random_shifts(16, 3, seed=1, step=5)
    assert torch.equal(a, b) and int(a.abs().max()) <= 3 and not torch.equal(a, random_shifts(16, 3, seed=1, step=6))
    with pytest.raises(InputError, match="shift_augment"):
        load_stage2_config("tiny", overrides=["shift_augment=-1"])


def test_prior_groups_codes_and_adds_unassigned(tmp_path):
    path = tmp_path / "prior.json"
    path.write_text(json.dumps({"version": 1, "segments": {"skin": [0, 3], "lips": [2]}}))
    m = read_prior(path, num_codes=5)
    assert m.names == ["skin", "lips", "unassigned"]
    assert m.lut[:5].tolist() == [0, 2, 1, 0, 2]
    assert ChannelMapping.raw(4).lut[:4].tolist() == [0, 1, 2, 3]
    path.write_text(json.dumps({"version": 1, "segments": {"skin": [0, 9]}}))
    with pytest.raises(InputError, match=r'segments\["skin"\]\[1\]: unknown code 9'):
        read_prior(path, num_codes=5)
    path.write_text(json.dumps({"version": 1, "segments": {"a": [1], "b": [1]}}))
    with pytest.raises(InputError, match="already in segment 'a'"):
        read_prior(path, num_codes=5)


def test_split_holds_out_every_nth_frame():
    train, val = split_frames(25, 10)
    assert val == [9, 19]
    assert not set(train) & set(val) and len(train) + len(val) == 25
    assert split_frames(5, 10)[1] == [2]
    assert split_frames(5, 0) == ([0, 1, 2, 3, 4], [])


def test_ssim_loss_is_one_minus_the_metric_and_pulls_texture_back():
    """The training term and the held-out metric are one definition (window, constants, mirrored border,
    masked mean), and its gradient moves a smoothed image back toward the textured target."""
    rng = np.random.default_rng(1)
    target = rng.random((30, 36, 3)).astype(np.float32)
    pred = np.clip(target + rng.normal(0, 0.15, target.shape), 0, 1).astype(np.float32)
    mask = (rng.random((30, 36)) > 0.4).astype(np.float32)
    as_t = lambda x: torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].double()  # noqa: E731
    w = torch.from_numpy(mask)[None, None].double()
    assert ssim_loss(as_t(pred), as_t(target), w).item() == pytest.approx(1 - ssim(pred, target, mask=mask), abs=1e-9)
    assert ssim_loss(as_t(target), as_t(target)).item() == pytest.approx(0.0, abs=1e-9)
    smooth = torch.full_like(as_t(target), 0.5, requires_grad=True)
    before = ssim_loss(smooth, as_t(target)).item()
    ssim_loss(smooth, as_t(target)).backward()
    stepped = (smooth - 0.05 * smooth.grad / smooth.grad.abs().max()).detach()
    assert ssim_loss(stepped, as_t(target)).item() < before - 0.01


def test_losses_and_ssim():
    a = torch.zeros(1, 3, 4, 4)
    b = torch.ones(1, 3, 4, 4)
    w = torch.zeros(1, 1, 4, 4)
    w[..., :2] = 1
    assert smooth_l1(a, b).item() == pytest.approx(0.95)
    assert smooth_l1(a, a + w * 0.0, w).item() == 0.0

    class L1(torch.nn.Module):
        def forward(self, x, y):
            return (x - y).abs().mean()

    roi = torch.zeros(1, 1, 4, 4)
    roi[..., :2, :] = 1
    loss = RoiPerceptualLoss(L1(), 1.0, 0.2)(a, b, roi)
    assert loss.item() == pytest.approx(0.5 * 1.0 + 0.5 * 0.2)
    rng = np.random.default_rng(0)
    img = rng.random((24, 24, 3)).astype(np.float32)
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-5)
    noisy = np.clip(img + rng.normal(0, 0.2, img.shape), 0, 1)
    mask = np.zeros((24, 24))
    mask[:12] = 1
    assert ssim(img, noisy) < 0.9
    half = img.copy()
    half[12:] = 0
    assert ssim(img, half, mask=mask) > ssim(img, half)


def test_shared_embedding_and_coarse_params_layout_and_resolution():
    """The cpu layout: one label embedding per block (no per-norm mlp_shared) and, above the label map's
    resolution, γ/β predicted at label resolution then upsampled — checked on the convolutions' inputs."""
    torch.manual_seed(0)
    G = SPADEGenerator(label_nc=6, render_size=32, const_size=4, ch_max=16, ch_min=8, hidden=8,
                       shared_embed=True, upsample_params=True)
    keys = set(G.state_dict())
    assert any(k.startswith("up_blocks.2.embed.0.") for k in keys)
    assert not any("mlp_shared" in k for k in keys)
    seen: list[tuple[int, int]] = []  # (feature size, gamma-conv input size) of the top block's norm_0
    top = G.up_blocks[-1]
    top.norm_0.mlp_gamma.register_forward_hook(lambda m, inp, out: seen.append(tuple(inp[0].shape[-2:])))
    seg = torch.zeros(2, 6, 16, 16)
    seg[:, 1, :, :8] = 1
    seg[:, 4, :, 8:] = 1
    out = G(seg)
    assert out.shape == (2, 3, 32, 32)
    assert seen == [(16, 16)]  # the 32² block predicts its parameters on the 16² label grid
    out.mean().backward()
    assert G.up_blocks[-1].embed[0].weight.grad.abs().sum() > 0
    # the NVlabs layout (default) keeps a per-norm embedding, so checkpoints of that layout still load
    plain = SPADEGenerator(label_nc=6, render_size=32, const_size=4, ch_max=16, ch_min=8, hidden=8)
    assert any("norm_0.mlp_shared" in k for k in plain.state_dict())
    assert plain(seg).shape == (2, 3, 32, 32)


def test_coarse_params_are_the_label_resolution_params_upsampled():
    """Above the label map's resolution, β (the output for a zero input) is the label-resolution β resampled
    bilinearly, not re-predicted from a blocky nearest-upsampled map as in the NVlabs layout."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    norm = SPADE(4, 2, hidden=4, upsample_params=True)
    plain = SPADE(4, 2, hidden=4)
    plain.load_state_dict(norm.state_dict())
    seg = torch.zeros(1, 2, 4, 4)
    seg[:, 0, :, :2] = 1
    seg[:, 1, :, 2:] = 1
    beta_label = norm(torch.zeros(1, 4, 4, 4), seg).detach()
    beta_coarse = norm(torch.zeros(1, 4, 16, 16), seg).detach()
    expected = F.interpolate(beta_label, size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(beta_coarse, expected, atol=1e-6)
    assert not torch.allclose(plain(torch.zeros(1, 4, 16, 16), seg).detach(), expected, atol=1e-3)


def test_spatial_bias_maps_start_at_zero_and_learn_a_fixed_pattern():
    """Learned crop-space maps exist only at the requested resolutions, change nothing at init, and let the
    generator fit a label-independent texture (a checkerboard under one uniform label) within a few steps."""
    torch.manual_seed(0)
    kw = {"label_nc": 2, "render_size": 16, "const_size": 4, "ch_max": 8, "ch_min": 8, "hidden": 4,
          "shared_embed": True, "upsample_params": True}
    G = SPADEGenerator(spatial_bias_from=8, **kw)
    assert sorted(G.spatial_bias) == ["16", "8"] and float(G.spatial_bias["16"].detach().abs().sum()) == 0.0
    torch.manual_seed(0)
    ref = SPADEGenerator(**kw)
    G.load_state_dict(ref.state_dict(), strict=False)
    seg = torch.zeros(1, 2, 8, 8)
    seg[:, 0] = 1
    assert torch.equal(G(seg), ref(seg))  # zero maps: identical renders
    target = ((torch.arange(16)[:, None] + torch.arange(16)[None]) % 2).float().expand(1, 3, 16, 16) * 0.6 + 0.2
    opt = torch.optim.Adam(G.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        loss = (G(seg) - target).abs().mean()
        loss.backward()
        opt.step()
    assert float((G(seg) - target).abs().mean().detach()) < 0.1
    assert float(G.spatial_bias["16"].detach().abs().sum()) > 0.0


def test_label_embedding_reads_k_independent_width_and_is_a_per_code_vector():
    torch.manual_seed(0)
    kw = {"render_size": 32, "const_size": 4, "ch_max": 32, "ch_min": 8, "hidden": 8, "shared_embed": True}
    wide = SPADEGenerator(label_nc=3 * 128, **kw)
    emb = SPADEGenerator(label_nc=3 * 128, label_embed=16, **kw)
    # the SPADE convolutions read 16 channels instead of 384: far fewer weights, same output contract
    assert emb.head_0.embed[0].in_channels == 16 and wide.head_0.embed[0].in_channels == 384
    assert sum(p.numel() for p in emb.parameters()) < 0.5 * sum(p.numel() for p in wide.parameters())
    codes = torch.randint(0, 128, (2, 3, 16, 16))
    seg = codes_to_onehot(codes, torch.arange(128), 128)
    out = emb(seg).detach()
    assert out.shape == (2, 3, 32, 32) and 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    # on one-hot input the 1x1 embedding is a lookup: pixel value = sum over window slots of code vectors
    e = emb.label_embed(seg).detach()
    w = emb.label_embed.weight[:, :, 0, 0].detach()
    y, x = 5, 7
    want = emb.label_embed.bias.detach() + sum(w[:, t * 128 + int(codes[0, t, y, x])] for t in range(3))
    torch.testing.assert_close(e[0, :, y, x], want)


def test_channel_indices_equal_the_one_hot_embedding_in_value_and_gradient():
    """With label_embed, G takes (B, T, L, L) channel indices: same render and same weight gradients as the
    one-hot window, without the (B, T*C, L, L) float tensor."""
    from vq_models.stage2_model import generator_input, window_onehot

    torch.manual_seed(0)
    C = 7
    G = SPADEGenerator(label_nc=3 * C, render_size=16, const_size=4, ch_max=8, ch_min=8, hidden=4,
                       shared_embed=True, upsample_params=True, label_embed=5)
    codes = torch.randint(0, 9, (2, 3, 8, 8), dtype=torch.uint8)
    lut = torch.tensor([0, 1, 2, 3, 4, 5, 6, 6, 2])  # two codes share a channel, as prior groups do
    idx = generator_input(G, codes, lut, C, True)
    assert idx.shape == (2, 3, 8, 8) and not idx.is_floating_point()
    onehot = window_onehot(codes, lut, C, True)
    a, b = G(idx), G(onehot)
    assert torch.allclose(a, b, atol=1e-6)
    a.sum().backward()
    grad_idx = G.label_embed.weight.grad.clone()
    G.zero_grad()
    b.sum().backward()
    assert torch.allclose(grad_idx, G.label_embed.weight.grad, atol=1e-6)
    plain = SPADEGenerator(label_nc=3 * C, render_size=16, const_size=4, ch_max=8, ch_min=8, hidden=4)
    assert generator_input(plain, codes, lut, C, True).is_floating_point()  # no embedding: one-hot in
    with pytest.raises(ValueError, match="label_embed"):
        plain(idx)
