"""LPIPS (calibrated lpips weights + torchvision-format backbone), its fallback, and the identity loss."""

from __future__ import annotations

import importlib.metadata

import pytest
import torch

from vq_models.errors import InputError, VQEditError
from vq_models.nets import lpips as lp
from vq_models.nets.backbones import CHANNELS, alexnet_features, vgg16_features
from vq_models.nets.identity import ArcFaceIRSE50, IdentityLoss

torch.set_num_threads(1)


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """Point every weight search location at empty folders."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("VQEDIT_WEIGHTS", str(tmp_path / "weights"))
    lp._CACHE.clear()
    yield tmp_path
    lp._CACHE.clear()


def _save_torchvision_alexnet(path) -> None:
    torch.manual_seed(0)
    feats = alexnet_features()
    state = {f"features.{k}": v for k, v in feats.state_dict().items()}
    # the real file also holds classifier.* (ignored by the loader); one entry of the real shape stands in
    # for the 58M-parameter classifier to keep the test light
    state["classifier.6.bias"] = torch.zeros(1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def _images(seed: int, n: int = 2, size: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def test_lpips_with_hub_cache_backbone_and_calibrated_lins(no_weights):
    _save_torchvision_alexnet(no_weights / "torch_home" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth")
    loss = lp.PerceptualLoss("alex")
    assert loss.backend == "lpips-alex" and loss.available_lpips
    pkg = importlib.metadata.distribution("lpips").locate_file("lpips/weights/v0.1/alex.pth")
    calibrated = torch.load(pkg, map_location="cpu", weights_only=True)
    for i, lin in enumerate(loss.lpips.lins):
        assert lin.weight.shape == (1, CHANNELS["alex"][i], 1, 1)
        assert (lin.weight >= 0).all()
        torch.testing.assert_close(lin.weight, calibrated[f"lin{i}.model.1.weight"])
    x, y = _images(1), _images(2)
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-7)
    d_xy = lp.lpips_distance(x, y)
    assert d_xy.shape == (2,) and (d_xy > 0).all()
    torch.testing.assert_close(d_xy, lp.lpips_distance(y, x))
    # closer images are closer: a slightly perturbed x is nearer than an unrelated y
    near = lp.lpips_distance(x, (x + 0.05 * _images(3)).clamp(-1, 1))
    assert (near < d_xy).all()
    pred = x.clone().requires_grad_(True)
    loss(pred, y).backward()
    assert pred.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss.parameters())


def test_lpips_explicit_backbone_path_and_errors(no_weights):
    path = no_weights / "elsewhere" / "alex.pth"
    _save_torchvision_alexnet(path)
    assert lp.PerceptualLoss("alex", backbone_path=path).backend == "lpips-alex"
    with pytest.raises(InputError, match="not found"):
        lp.PerceptualLoss("alex", backbone_path=no_weights / "missing.pth")
    state = torch.load(path, weights_only=True)
    state["features.3.weight"] = torch.zeros(10, 64, 5, 5)
    torch.save(state, path)
    with pytest.raises(InputError, match="features.*3.weight"):
        lp.PerceptualLoss("alex", backbone_path=path)
    with pytest.raises(InputError, match="unknown"):
        lp.PerceptualLoss("squeeze")


def test_vgg_backbone_matches_torchvision_keys_on_meta():
    with torch.device("meta"):
        feats = vgg16_features()
    convs = [int(k.split(".")[0]) for k in feats.state_dict() if k.endswith("weight")]
    assert convs == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert feats.state_dict()["28.weight"].shape == (512, 512, 3, 3)
    calibrated = lp.calibrated_lin_weights("vgg")
    assert [calibrated[f"lin{i}.model.1.weight"].shape[1] for i in range(5)] == list(CHANNELS["vgg"])


def test_fallback_is_recorded_trains_and_metrics_refuse(no_weights):
    loss = lp.PerceptualLoss("alex")
    assert loss.backend == "fallback:ms-ssim+grad" and not loss.available_lpips
    x = _images(4, size=32)
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-5)
    assert loss(x, _images(5, size=32)).item() > 0.1
    with pytest.raises(VQEditError, match="alexnet-owt-7be5be79.pth"):
        lp.lpips_distance(x, x)
    # optimising an image against the fallback moves it towards the target
    target = torch.nn.functional.avg_pool2d(_images(6, n=1, size=32), 3, 1, 1)
    pred = torch.zeros_like(target, requires_grad=True)
    opt = torch.optim.Adam([pred], lr=0.05)
    start = loss(pred, target).item()
    for _ in range(30):
        opt.zero_grad()
        value = loss(pred, target)
        value.backward()
        opt.step()
    assert loss(pred, target).item() < 0.5 * start


def test_identity_loss_off_without_weights_and_loads_real_layout(tmp_path):
    assert IdentityLoss.from_path(None) is None
    assert IdentityLoss.from_path(tmp_path / "model_ir_se50.pth") is None
    torch.manual_seed(0)
    net = ArcFaceIRSE50(width=16).eval()
    keys = net.state_dict().keys()
    assert {"input_layer.0.weight", "body.23.res_layer.5.fc2.weight", "output_layer.3.weight",
            "output_layer.4.running_var"} <= set(keys)
    path = tmp_path / "model_ir_se50.pth"
    torch.save(net.state_dict(), path)
    ident = IdentityLoss.from_path(path)
    assert ident is not None and ident.facenet.width == 16
    x, y = _images(7, size=128), _images(8, size=128)
    assert ident(x, x).item() == pytest.approx(0.0, abs=1e-5)
    assert ident(x, y).item() > 1e-4
    pred = x.clone().requires_grad_(True)
    ident(pred, y).backward()
    assert pred.grad.abs().sum() > 0
    ident.train()
    assert not ident.facenet.training
    state = net.state_dict()
    state.pop("output_layer.3.weight")
    torch.save(state, path)
    with pytest.raises(InputError, match="output_layer.3.weight"):
        IdentityLoss.from_path(path)


def test_full_arcface_layout_on_meta():
    with torch.device("meta"):
        net = ArcFaceIRSE50()
    sd = net.state_dict()
    assert sd["output_layer.3.weight"].shape == (512, 512 * 7 * 7)
    assert sd["body.23.res_layer.3.weight"].shape == (512, 512, 3, 3)
    assert sd["input_layer.0.weight"].shape == (64, 3, 3, 3)
