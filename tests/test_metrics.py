"""Metrics: basic properties of MSE/PSNR/SSIM, flicker, Fréchet distance, and the sequence summary."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vq_models import metrics as M
from vq_models.evaluation.plate import WHATIFS


def img(seed: int, shape=(48, 40, 3)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 1, shape[0] * shape[1]).reshape(shape[:2])[..., None] * np.ones(shape)
    return np.clip(base + 0.1 * rng.standard_normal(shape), 0, 1).astype(np.float32)


def test_mse_psnr_and_masks():
    a = img(0)
    b = np.clip(a + 0.1, 0, 1)
    assert M.mse(a, a) == 0 and M.psnr(a, a) == math.inf
    c = a.copy()
    c[:, :20] += 0.2  # error only on the left half
    assert M.mse(c, a) == pytest.approx(0.02, rel=1e-5)
    assert M.psnr(c, a) == pytest.approx(10 * math.log10(1 / 0.02), rel=1e-5)
    left = np.zeros(a.shape[:2])
    left[:, :20] = 1
    assert M.mse(c, a, left) == pytest.approx(0.04, rel=1e-5) and M.mse(c, a, 1 - left) == 0
    assert M.mse(b, a) > 0 and M.mse(b, a) == pytest.approx(M.mse(a, b))


def test_ssim_properties():
    x = img(1)
    assert M.ssim(x, x) == pytest.approx(1.0, abs=1e-9)
    y = img(2)
    assert M.ssim(x, y) == pytest.approx(M.ssim(y, x), abs=1e-12)
    rng = np.random.default_rng(3)
    values = [M.ssim(np.clip(x + s * rng.standard_normal(x.shape), 0, 1), x) for s in (0.01, 0.05, 0.2, 0.5)]
    assert all(v1 > v2 for v1, v2 in zip(values, values[1:], strict=False)) and values[0] < 1
    assert -1 <= M.ssim(x, 1 - x) < 0.5


def test_ssim_of_constant_images_matches_the_closed_form():
    c1, c2 = 0.3, 0.6
    a = np.full((32, 32, 3), c1)
    b = np.full((32, 32, 3), c2)
    k1 = (0.01) ** 2
    expected = (2 * c1 * c2 + k1) / (c1**2 + c2**2 + k1)  # variances 0: the contrast/structure term is 1
    assert M.ssim(a, b) == pytest.approx(expected, rel=1e-9)
    mask = np.zeros((32, 32))
    mask[:4, :4] = 1  # border pixels count when masked
    assert M.ssim(a, b, mask) == pytest.approx(expected, rel=1e-9)


def test_ssim_matches_scikit_image_when_installed():
    metrics = pytest.importorskip("skimage.metrics")
    x, y = img(4), img(5)
    ref = metrics.structural_similarity(x, y, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False)
    assert M.ssim(x, y) == pytest.approx(ref, abs=1e-4)


def test_temporal_flicker():
    gt = [np.full((8, 8, 3), 0.5, np.float32)] * 4
    gt_moving = [np.full((8, 8, 3), 0.1 * i, np.float32) for i in range(4)]
    pred = [np.full((8, 8, 3), 0.5 + (0.2 if i % 2 else 0.0), np.float32) for i in range(4)]
    f = M.temporal_flicker(pred, gt_moving)
    assert f["pred"] == pytest.approx(0.2) and f["gt"] == pytest.approx(0.1) and f["ratio"] == pytest.approx(2.0)
    assert M.temporal_flicker(gt, gt)["pred"] == 0


def test_frechet_distance():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((200, 5))
    mu, cov = feats.mean(0), np.cov(feats, rowvar=False)
    assert M.frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)
    a, b = np.array([1.0, 4.0]), np.array([9.0, 1.0])
    d = M.frechet_distance(np.zeros(2), np.diag(a), np.ones(2), np.diag(b))
    assert d == pytest.approx(2 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())


def test_sequence_summary_and_table():
    seq = M.SequenceMetrics(use_lpips=False)
    mask = np.ones((48, 40))
    gt = [img(10 + i) for i in range(3)]
    for i, g in enumerate(gt):
        seq.add(np.clip(g + 0.05, 0, 1), g, mask, frame=1001 + i)
    s = seq.summary()
    assert s["num_frames"] == 3 and s["mse"] == pytest.approx(np.mean([r["mse"] for r in seq.frames]))
    assert s["mse_masked"] == pytest.approx(s["mse"]) and s["ssim"] < 1
    assert s["lpips"].startswith("unavailable") and s["flicker"]["ratio"] > 0
    table = M.format_table(M.json_safe(s))
    assert "flicker.ratio" in table and "psnr" in table
    assert M.json_safe({"p": math.inf}) == {"p": "inf"}


def test_vqedit_eval_writes_json_and_table(tmp_path, capsys):
    import json

    from vq_models.cli import main
    from vq_models.io.images import write_image

    rng = np.random.default_rng(0)
    for i in range(3):
        g = np.round(rng.random((16, 20, 3)) * 200) / 255.0  # exact in 8 bit, room for +0.1
        write_image(tmp_path / f"gt.{1001 + i:04d}.png", g.astype(np.float32), dtype="uint8")
        p = g.copy()
        p[:, :10] += 25.0 / 255.0  # error only on the left half
        write_image(tmp_path / f"pred.{1001 + i:04d}.png", p.astype(np.float32), dtype="uint8")
        m = np.zeros((16, 20, 1), np.float32)
        m[:, 10:] = 1.0
        write_image(tmp_path / f"mask.{1001 + i:04d}.png", m, dtype="uint8")
    out = tmp_path / "report.json"
    rc = main(["eval", str(tmp_path), "--pred", str(tmp_path / "pred.%04d.png"), "--gt", str(tmp_path / "gt.%04d.png"),
               "--mask", str(tmp_path / "mask.%04d.png"), "--json", str(out), "--no-progress", "--per-frame"])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["num_frames"] == 3 and report["frames"] == [1001, 1003]
    assert report["mse"] == pytest.approx(0.5 * (25 / 255) ** 2, rel=1e-3)
    assert report["mse_masked"] == pytest.approx(0.0, abs=1e-9) and report["psnr_masked"] == "inf"
    assert report["ssim"] < report["ssim_masked"] < 1.0  # windows at the mask edge still see the error
    assert report["flicker"]["ratio"] == pytest.approx(1.0, rel=0.2)
    assert isinstance(report["lpips"], float) or report["lpips"].startswith("unavailable")
    assert report["fid"].startswith("unavailable") and report["fvd"].startswith("unavailable")
    assert len(report["per_frame"]) == 3
    assert "ssim_masked" in capsys.readouterr().out
    write_image(tmp_path / "gt.1002.png", np.zeros((8, 8, 3), np.float32), dtype="uint8")
    rc = main(["eval", str(tmp_path), "--pred", str(tmp_path / "pred.%04d.png"), "--gt", str(tmp_path / "gt.%04d.png"),
               "--no-progress", "--no-lpips"])
    assert rc == 2 and "frame 1002: prediction is 20x16, ground truth 8x8" in capsys.readouterr().err
    rc = main(["eval", str(tmp_path), "--no-progress"])  # neither files nor a shot measure: every choice is named
    err = capsys.readouterr().err
    assert rc == 2 and "--pred PATTERN is required" in err
    assert all(f"--{key}" in err for key in ("plate", *WHATIFS, "teeth-left"))



def test_box_ssim_looks_only_inside_the_box():
    """The what-if measures compare the box around the edited part; what lies outside must not count."""
    from vq_models.evaluation.whatif import box_ssim

    rng = np.random.default_rng(0)
    truth = np.full((64, 64, 3), 0.5, np.float32)
    truth[24:32, 12:52] = 0.9  # a lip-sized bar
    truth += rng.normal(0, 0.01, truth.shape).astype(np.float32)
    box = (8, 8, 56, 56)
    assert box_ssim(truth, truth, box) == pytest.approx(1.0)
    outside = truth.copy()
    outside[:4] = 0.0
    assert box_ssim(outside, truth, box) == pytest.approx(1.0)
    shifted = np.roll(truth, 2, axis=0)
    assert box_ssim(shifted, truth, box) == pytest.approx(M.ssim(shifted[8:56, 8:56], truth[8:56, 8:56]))
    assert box_ssim(shifted, truth, box) < 0.9
