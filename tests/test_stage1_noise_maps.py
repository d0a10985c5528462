"""Encoder-predicted noise maps (the cpu preset's sharper from-scratch prior) and the ROI weight of the
codebook's whole-shot Lloyd passes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from stage1_shot import draw_frame, make_shot  # noqa: E402

from vq_models.cli import main  # noqa: E402
from vq_models.nets.stylegan2 import Generator, small_generator_config  # noqa: E402
from vq_models.stage1_model import InversionNet, SpatialEncoder  # noqa: E402

torch.set_num_threads(1)


def test_generator_takes_per_layer_noise_and_checks_its_length():
    torch.manual_seed(0)
    g = Generator(**small_generator_config(32, 16))
    for name, p in g.named_parameters():
        if name.endswith("noise.weight"):
            p.data.fill_(0.5)  # trained generators use their noise; a fresh one has weight 0
    w = torch.randn(1, g.n_latent, g.style_dim)
    const, _ = g.synthesize(w, noise_mode="const")
    same, _ = g.synthesize(w, noise=[None] * g.num_layers)  # None = fall back to noise_mode
    torch.testing.assert_close(const, same)
    noise = [None] * g.num_layers
    noise[-1] = torch.ones(1, 1, 32, 32)  # the last 32² layer only
    other, _ = g.synthesize(w, noise=noise)
    assert (other - const).abs().max() > 1e-3
    with pytest.raises(ValueError, match="one per layer"):
        g.synthesize(w, noise=[None])


def test_spatial_encoder_predicts_two_maps_per_resolution_and_they_reach_the_generator():
    torch.manual_seed(0)
    g = Generator(**small_generator_config(32, 16))
    for name, p in g.named_parameters():
        if name.endswith("noise.weight"):
            p.data.fill_(0.5)
    enc = SpatialEncoder(32, g.n_latent, g.style_dim, channels=8, noise_maps=True)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    w, maps = enc.forward_with_noise(x)
    assert w.shape == (2, g.n_latent, g.style_dim)
    assert sorted(maps) == [8, 16, 32] and all(m.shape == (2, 2, r, r) for r, m in maps.items())
    torch.testing.assert_close(enc(x), w)  # plain forward = W+ offsets only
    net = InversionNet(enc, g, g.mean_latent(64), (16, 32))
    img, feats, _ = net(x)
    # the maps are a function of the frame: two different frames give different noise, hence images that
    # differ even where W+ alone would not (zero the W+ head to isolate the noise path)
    torch.nn.init.zeros_(enc.out.weight)
    torch.nn.init.zeros_(enc.out.bias)
    a, _, _ = net(x[:1])
    b, _, _ = net(-x[:1])
    assert (a - b).abs().max() > 1e-3
    plain = SpatialEncoder(32, g.n_latent, g.style_dim, channels=8)
    assert plain.noise_resolutions == [] and not any("noise_heads" in k for k in plain.state_dict())


def test_noise_map_encoder_trains_saves_and_labels_new_frames(tmp_path: Path):
    root = tmp_path / "shot"
    make_shot(root)
    rc = main(["train", str(root), "--stage", "1", "--preset", "tiny", "--iters", "3",
               "--set", "encoder_noise_maps=true", "--set", "vq_refine_roi_weight=4"])
    assert rc == 0
    meta = json.loads((root / "stage1" / "meta.json").read_text())
    assert meta["encoder"]["noise_maps"] is True and meta["config"]["vq_refine_roi_weight"] == 4.0
    from vq_models.stage1_model import Stage1Model

    model = Stage1Model.load(root / "stage1")
    d = draw_frame(1)
    new = model.labels_from_image(d["overlay"], d["fg"], d["roi"])
    assert np.array_equal(new, model.label_map(1002))  # inference runs the same noise-map path


def test_noise_maps_need_the_spatial_encoder(tmp_path: Path, capsys):
    root = tmp_path / "shot"
    make_shot(root, frames=(1,))
    rc = main(["train", str(root), "--stage", "1", "--preset", "tiny", "--iters", "1",
               "--set", "encoder_noise_maps=true", "--set", "encoder_kind=light"])
    assert rc == 2
    assert "encoder_noise_maps needs encoder_kind 'spatial'" in capsys.readouterr().err


def test_roi_weight_keeps_every_roi_pixel_and_thins_the_rest(tmp_path: Path):
    """foreground_features with weight w: all ROI pixels stay, others survive with probability 1/w."""
    import dataclasses

    from vq_models.shot import Shot
    from vq_models.stage1_model import Stage1Model
    from vq_models.train.codebook import foreground_features
    from vq_models.train.stage1_config import STAGE1_PRESETS
    from vq_models.train.stage1_data import ShotFrames

    root = tmp_path / "shot"
    make_shot(root)
    assert main(["train", str(root), "--stage", "1", "--preset", "tiny", "--iters", "1"]) == 0
    shot = Shot.open(root)
    net = Stage1Model.load(shot.stage1_dir).net
    base = STAGE1_PRESETS["tiny"]
    data = ShotFrames(shot, base.input_size)
    dev = torch.device("cpu")
    n1 = len(foreground_features(net, data, base, dev))
    n10 = len(foreground_features(net, data, dataclasses.replace(base, vq_refine_roi_weight=10.0), dev))
    raw = data.batch(list(range(len(data))), dev)
    size = base.label_size
    fg = torch.nn.functional.interpolate(raw["fg"], size=size, mode="bilinear", align_corners=False) >= 0.5
    roi = torch.nn.functional.interpolate(raw["roi"], size=size, mode="bilinear", align_corners=False) >= 0.5
    n_roi, n_rest = int((fg & roi).sum()), int((fg & ~roi).sum())
    assert n1 == n_roi + n_rest and n_roi > 0
    expected = n_roi + n_rest / 10
    assert abs(n10 - expected) < 4 * (n_rest * 0.1 * 0.9) ** 0.5 + 2, (n10, expected)
