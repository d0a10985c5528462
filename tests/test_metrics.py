"""Metrics: basic properties of MSE/PSNR/SSIM, flicker, Fréchet distance, and the sequence summary."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vq_models import metrics as M


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
