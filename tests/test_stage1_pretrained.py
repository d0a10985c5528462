"""Paper mode: a pretrained StyleGAN2 checkpoint (rosinality layout, built here at tiny size) stays frozen
while the encoder is trained; the VQ path sends no gradient into the generator."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from stage1_shot import make_shot  # noqa: E402

from vq_models.cli import main  # noqa: E402
from vq_models.nets.stylegan2 import Generator, small_generator_config  # noqa: E402
from vq_models.quantizer import VectorQuantizer  # noqa: E402
from vq_models.train.checkpoint import load_weights  # noqa: E402
from vq_models.vq_input import build_vq_input  # noqa: E402

torch.set_num_threads(1)


def _rosinality_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    g = Generator(**small_generator_config(32, 16))
    state = {k: v.clone() for k, v in g.state_dict().items()}
    torch.save({"g_ema": state, "latent_avg": g.mean_latent(256)[0].detach()}, path)
    return state


def test_pretrained_generator_stays_frozen_and_meta_says_so(tmp_path: Path):
    ckpt = tmp_path / "stylegan2-tiny.pt"
    state = _rosinality_checkpoint(ckpt)
    shot = make_shot(tmp_path / "shot", frames=(1, 2, 3))
    rc = main(["train", str(shot.root), "--stage", "1", "--preset", "tiny", "--iters", "3",
               "--stylegan", str(ckpt)])
    assert rc == 0
    meta = json.loads((shot.stage1_dir / "meta.json").read_text())
    assert meta["backbone"] == "pretrained" and meta["generator_trained"] is False
    assert meta["backbone_sources"] == {"stylegan": str(ckpt)}
    assert "prior" not in meta  # "prior" is the artist prior's word (prior.json), never the StyleGAN backbone
    assert meta["encoder"]["kind"] == "spatial"  # the tiny preset's from-scratch encoder
    saved = load_weights(shot.stage1_dir / "model.safetensors")
    for k, v in state.items():
        assert torch.equal(saved[f"generator.{k}"], v), f"generator.{k} changed"
    assert not torch.equal(saved["latent_avg"][0], torch.zeros_like(saved["latent_avg"][0]))
    # the encoder did train (its zero-initialised output layer moved)
    assert saved["encoder.out.weight"].abs().sum() > 0

    from vq_models.stage1_model import Stage1Model

    model = Stage1Model.load(shot.stage1_dir)
    frame = shot.overlay(2)
    labels = model.labels_from_image(frame, shot.fg_mask(2), shot.roi_mask(2))
    assert labels.shape == (model.label_size, model.label_size) and labels.max() < model.num_codes


def test_missing_stylegan_file_is_one_line_error(tmp_path: Path, capsys):
    shot = make_shot(tmp_path / "shot", frames=(1,))
    assert main(["train", str(shot.root), "--stage", "1", "--stylegan", str(tmp_path / "none.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "none.pt" in err and len(err.splitlines()) == 1


def test_vq_path_sends_no_gradient_into_the_generator():
    torch.manual_seed(0)
    g = Generator(**small_generator_config(32, 16))
    w0 = g.mean_latent(64).detach().expand(2, g.n_latent, -1).contiguous()

    def grads(with_vq: bool):
        g.zero_grad(set_to_none=True)
        w = w0.clone().requires_grad_(True)
        img, feats = g.synthesize(w, feature_resolutions=(16, 32))
        assert feats[32].requires_grad  # the taps themselves are part of the graph
        stats = None
        if with_vq:
            x = build_vq_input(feats, (16, 32), 32, torch.ones(2, 32, 32))
            assert not x.requires_grad and x.grad_fn is None
            codes, stats = vq(x, fg_mask=torch.ones(2, 32, 32))
            assert not codes.requires_grad
        img.square().mean().backward()
        return [p.grad.clone() for p in g.parameters() if p.grad is not None], w.grad.clone(), stats

    vq = VectorQuantizer(num_codes=4, dim=32, kmeans_iters=5).train()
    plain, w_plain, _ = grads(False)
    with_vq, w_vq, stats = grads(True)
    assert len(plain) > 0 and len(plain) == len(with_vq)
    assert all(torch.equal(a, b) for a, b in zip(plain, with_vq, strict=True))
    assert torch.equal(w_plain, w_vq)
    assert stats.foreground_pixels == 2 * 32 * 32 and 1 <= stats.active_codes <= 4
    assert np.isfinite(stats.perplexity) and bool(vq.initialized)
