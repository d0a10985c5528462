"""Checkpoint loaders on files built here in the exact public key layouts (real weights are absent)."""

from __future__ import annotations

import argparse

import pytest
import torch

from vq_models.errors import InputError
from vq_models.nets.checkpoints import (
    e4e_decoder_state,
    generator_from_state_dict,
    infer_generator_config,
    load_e4e,
    load_stylegan2,
)
from vq_models.nets.e4e import Encoder4Editing
from vq_models.nets.stylegan2 import Generator, small_generator_config

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def small_g() -> Generator:
    torch.manual_seed(0)
    g = Generator(**small_generator_config(32, max_channels=16))
    with torch.no_grad():  # non-trivial noise strengths so the noise buffers matter too
        for conv in g.convs:
            conv.noise.weight.fill_(0.3)
    return g.eval()


def test_load_stylegan2_roundtrip_and_config_inference(tmp_path, small_g):
    latent_avg = small_g.mean_latent(128)[0].detach()
    path = tmp_path / "g.pt"
    torch.save({"g_ema": small_g.state_dict(), "latent_avg": latent_avg}, path)
    g, avg = load_stylegan2(path)
    assert g.size == 32 and g.style_dim == small_g.style_dim and g.n_mlp == small_g.n_mlp
    assert g.channels == small_g.channels
    torch.testing.assert_close(avg, latent_avg)
    tensors = [*g.parameters(), *g.buffers()]
    assert not any(t.is_meta for t in tensors) and all(p.requires_grad for p in g.parameters())
    w = latent_avg.expand(2, g.n_latent, -1)
    with torch.no_grad():
        a, fa = small_g.synthesize(w, feature_resolutions=(16, 32))
        b, fb = g.synthesize(w, feature_resolutions=(16, 32))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(fa[32], fb[32])


def test_config_f_and_multiplier_inferred_from_shapes_without_memory():
    for size, cm, style_dim, n_mlp in ((1024, 2, 512, 8), (256, 1, 64, 2)):
        with torch.device("meta"):
            state = Generator(size, style_dim, n_mlp, channel_multiplier=cm).state_dict()
        cfg = infer_generator_config(state)
        assert cfg == {"size": size, "style_dim": style_dim, "n_mlp": n_mlp, "channel_multiplier": cm}


def test_stylegan2_mismatches_are_reported_by_name(tmp_path, small_g):
    state = dict(small_g.state_dict())
    state.pop("convs.1.noise.weight")
    state["convs.1.extra"] = torch.zeros(1)
    state["to_rgb1.bias"] = torch.zeros(1, 4, 1, 1)
    path = tmp_path / "bad.pt"
    torch.save({"g_ema": state}, path)
    with pytest.raises(InputError) as err:
        load_stylegan2(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    assert "convs.1.noise.weight" in msg and "convs.1.extra" in msg and "to_rgb1.bias" in msg
    torch.save({"something": torch.zeros(1)}, path)
    with pytest.raises(InputError, match="g_ema"):
        load_stylegan2(path)


def test_unreadable_and_pickled_object_checkpoints(tmp_path, small_g):
    with pytest.raises(InputError, match="not found"):
        load_stylegan2(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(InputError, match="junk.pt"):
        load_stylegan2(junk)
    pickled = tmp_path / "namespace.pt"
    torch.save({"g_ema": small_g.state_dict(), "args": argparse.Namespace(size=32)}, pickled)
    with pytest.raises(InputError) as err:
        load_stylegan2(pickled)
    msg = str(err.value)
    assert "weights_only" in msg and "vars(" in msg and "\n" not in msg


def _small_e4e_checkpoint(path, small_g) -> tuple[Encoder4Editing, torch.Tensor]:
    torch.manual_seed(1)
    enc = Encoder4Editing(size=32, width=16, style_dim=small_g.style_dim)
    with torch.no_grad():  # BN statistics that differ from init so buffers must load
        for m in enc.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    enc.eval()
    state = {f"encoder.{k}": v for k, v in enc.state_dict().items()}
    state.update({f"decoder.{k}": v for k, v in small_g.state_dict().items()})
    latent_avg = torch.randn(enc.n_latent, small_g.style_dim)
    opts = {"stylegan_size": 32, "encoder_type": "Encoder4Editing", "start_from_latent_avg": True, "lr": 1e-4}
    torch.save({"state_dict": state, "opts": opts, "latent_avg": latent_avg}, path)
    return enc, latent_avg


def test_load_e4e_roundtrip(tmp_path, small_g):
    path = tmp_path / "e4e.pt"
    ref, latent_avg = _small_e4e_checkpoint(path, small_g)
    enc, avg, opts = load_e4e(path)
    assert opts["stylegan_size"] == 32 and opts["encoder_type"] == "Encoder4Editing"
    assert enc.n_latent == 8 and enc.width == 16 and enc.style_dim == small_g.style_dim
    torch.testing.assert_close(avg, latent_avg)
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(enc(x), ref(x))
    decoder = generator_from_state_dict(e4e_decoder_state(path))
    with torch.no_grad():
        w = (enc(x) + avg).detach()
        torch.testing.assert_close(decoder.synthesize(w)[0], small_g.synthesize(w)[0])


def test_load_e4e_errors_name_the_problem(tmp_path, small_g):
    path = tmp_path / "e4e.pt"
    _small_e4e_checkpoint(path, small_g)
    ckpt = torch.load(path, weights_only=True)
    del ckpt["state_dict"]["encoder.latlayer2.weight"]
    torch.save(ckpt, path)
    with pytest.raises(InputError, match="latlayer2.weight"):
        load_e4e(path)
    ckpt["opts"] = argparse.Namespace(stylegan_size=32)
    torch.save(ckpt, path)
    with pytest.raises(InputError, match="weights_only"):
        load_e4e(path)
    torch.save({"g_ema": {}}, path)
    with pytest.raises(InputError, match="state_dict"):
        load_e4e(path)
