"""FFHQ quad, smoothing and the crop/paste geometry round trip (sub-pixel accuracy)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vq_models.face.align import Quad, crop, ffhq_quad, paste, quad_transform, smooth_quads
from vq_models.shot import CropTransform

cv2.setNumThreads(1)

LM5 = np.array([[100.0, 120.0], [160.0, 118.0], [131.0, 150.0], [108.0, 178.0], [152.0, 176.0]])


def test_ffhq_quad_is_upright_square_around_face():
    q = ffhq_quad(LM5)
    # eyes nearly level -> almost no rotation; size follows FFHQ's max(2*eye dist, 1.8*eye-mouth)
    assert abs(q.angle) < 0.05
    eye_dist = np.hypot(60.0, -2.0)
    assert q.half == pytest.approx(max(2.0 * eye_dist, 1.8 * np.hypot(0.0, 58.0)), rel=1e-6)
    corners = q.corners()
    side = np.linalg.norm(corners[1:] - corners[:-1], axis=1)
    np.testing.assert_allclose(side, 2 * q.half, rtol=1e-9)
    # the face's 5 points lie in the middle of the crop
    t = quad_transform(q, 256)
    inside = t.to_crop(LM5)
    assert inside.min() > 64 and inside.max() < 192


def test_ffhq_quad_follows_head_roll():
    ang = np.deg2rad(25.0)
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    rolled = (LM5 - 130.0) @ rot.T + 130.0
    assert ffhq_quad(rolled).angle - ffhq_quad(LM5).angle == pytest.approx(ang, abs=1e-9)


def test_quad_corners_map_to_crop_edges():
    q = Quad(300.3, 210.7, 95.0, 0.4)
    t = quad_transform(q, 128)
    mapped = t.to_crop(q.corners())
    # quad corners are the crop's outer pixel edges: -0.5 and size-0.5 in pixel-centre coordinates
    np.testing.assert_allclose(mapped, [[-0.5, -0.5], [-0.5, 127.5], [127.5, 127.5], [127.5, -0.5]], atol=1e-9)


def test_points_round_trip_within_0_05px():
    rng = np.random.default_rng(0)
    t = quad_transform(Quad(1234.56, 789.01, 321.0, -0.3), 256)
    pts = rng.uniform(0, 2000, size=(200, 2))
    back = t.to_plate(t.to_crop(pts))
    assert np.abs(back - pts).max() < 0.05
    assert np.abs(back - pts).max() < 1e-8  # in fact it is exact to float precision


def test_smoothing_removes_jitter_but_keeps_motion():
    rng = np.random.default_rng(1)
    n = 80
    true_x = np.linspace(100, 200, n)
    quads = [Quad(x + rng.normal(0, 2), 50 + rng.normal(0, 2), 80 * np.exp(rng.normal(0, 0.02)),
                  np.pi - 0.01 + rng.normal(0, 0.02) * (i % 2)) for i, x in enumerate(true_x)]
    # angles straddle +-pi: wrap half of them to test unwrapping
    quads = [Quad(q.cx, q.cy, q.half, q.angle - 2 * np.pi if i % 3 == 0 else q.angle) for i, q in enumerate(quads)]
    smooth = smooth_quads(quads, sigma=3.0)
    raw_err = np.std([q.cx - x for q, x in zip(quads, true_x, strict=True)])
    smooth_err = np.std([q.cx - x for q, x in zip(smooth, true_x, strict=True)][5:-5])
    assert smooth_err < raw_err / 2
    angles = np.array([q.angle for q in smooth])
    assert np.all(np.abs(np.cos(angles) + 1) < 0.01)  # stays near pi, no averaging to 0 across the wrap
    assert smooth_quads(quads, 0.0) == quads


def test_checkerboard_corners_pasted_back_within_0_1px():
    s, sq = 128, 16
    yy, xx = np.mgrid[0:s, 0:s]
    board = (((xx // sq) + (yy // sq)) % 2).astype(np.float32)
    board = cv2.GaussianBlur(board, (0, 0), 0.8)  # symmetric about each corner, so corners stay put
    t = quad_transform(Quad(203.37, 171.81, 55.0, 0.35), s)  # ~1.16x up-scale, rotated, sub-pixel centre
    plate, alpha = paste(board, t, (420, 360))
    # inner corners sit on pixel boundaries: sq*k - 0.5 in pixel-centre coordinates
    ks = np.arange(2, s // sq - 1)
    corners = np.array([[sq * i - 0.5, sq * j - 0.5] for i in ks for j in ks])
    expected = t.to_plate(corners)
    start = (np.round(expected) + 0.6).astype(np.float32).reshape(-1, 1, 2)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4)
    found = cv2.cornerSubPix(plate.astype(np.float32), start, (5, 5), (-1, -1), crit).reshape(-1, 2)
    err = np.linalg.norm(found - expected, axis=1)
    assert err.max() < 0.1, err.max()
    assert alpha[int(expected[0, 1]), int(expected[0, 0])] == pytest.approx(1.0)
    assert alpha[0, 0] == 0.0


def test_plate_scale_crop_pasted_back_reproduces_plate():
    rng = np.random.default_rng(2)
    plate = cv2.GaussianBlur(rng.uniform(0, 1, (90, 120, 3)).astype(np.float32), (0, 0), 1.5)
    # a crop at the plate's own scale: pure translation
    t = CropTransform.from_plate_to_crop(np.array([[1.0, 0, -17.0], [0, 1.0, -9.0]]))
    c = crop(plate, t, 64)
    np.testing.assert_array_equal(c, plate[9:73, 17:81])
    back, alpha = paste(c, t, (120, 90))
    inside = alpha >= 1.0
    assert inside.sum() == 64 * 64
    assert np.abs(back[inside] - plate[inside]).max() <= 1.0 / 255.0
    assert alpha[:9].max() == 0.0 and alpha[:, :16].max() == 0.0


def test_downscaled_crop_is_antialiased_and_centred():
    # a 4x shrink of a fine stripe pattern: box prefilter averages it to mid grey instead of aliasing
    h, w = 512, 512
    stripes = np.zeros((h, w), np.float32)
    stripes[:, ::2] = 1.0
    t = quad_transform(Quad(255.5, 255.5, 256.0, 0.0), 128)
    c = crop(stripes, t, 128)
    assert abs(float(c.mean()) - 0.5) < 0.02 and float(c.std()) < 0.05
    # geometry stays exact through the shrink: a single bright 4x4 block lands on one crop pixel
    img = np.zeros((h, w), np.float32)
    img[200:204, 100:104] = 1.0
    c = crop(img, t, 128)
    y, x = np.unravel_index(np.argmax(c), c.shape)
    np.testing.assert_allclose(t.to_crop(np.array([[101.5, 201.5]]))[0], [x, y], atol=1e-6)
    assert c.max() == pytest.approx(1.0, abs=1e-5)


def test_paste_border_feathers_alpha():
    t = quad_transform(Quad(100, 100, 40, 0.0), 64)
    _, hard = paste(np.ones((64, 64, 3), np.float32), t, (200, 200))
    _, soft = paste(np.ones((64, 64, 3), np.float32), t, (200, 200), border=8)
    assert soft.sum() < hard.sum()
    assert soft[100, 100] == pytest.approx(1.0) and soft[100, 62] < 0.2
