"""Painted-region augmentation (train/paint_augment.py) on hand-made batches: the palette is each code's
mean colour, ellipses land in the ROI in every window slot, the L1 mask covers them plus the margin, and
the palette loss measures only the painted pixels."""

from __future__ import annotations

import pytest
import torch

from vq_models.errors import InputError
from vq_models.train.paint_augment import (
    PaintedBatch,
    code_palette,
    keep_weight,
    paint_batch,
    painted_targets,
    palette_loss,
)
from vq_models.train.stage2 import load_stage2_config

L, R = 16, 32


def _batch():
    """4 frames: code 0 left half (red), code 1 right half (blue), code 2 a block in the ROI (green)."""
    windows = torch.zeros(4, 3, L, L, dtype=torch.uint8)
    windows[:, :, :, 8:] = 1
    windows[:, :, 6:10, 6:10] = 2
    colours = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.1, 0.9], [0.1, 0.8, 0.1]])
    codes = windows[:, 1].long()
    up = codes.repeat_interleave(2, 1).repeat_interleave(2, 2)
    targets = colours[up].permute(0, 3, 1, 2).contiguous()
    roi = torch.zeros(4, 1, R, R)
    roi[:, :, 10:22, 10:22] = 1.0  # label pixels 5..10: codes 0, 1 and 2
    return windows, targets, roi, colours


def test_palette_is_each_codes_mean_colour():
    windows, targets, _, colours = _batch()
    lut = torch.arange(4)
    pal = code_palette(windows, targets, lut, 4)
    assert torch.allclose(pal.colours[:3], colours, atol=1e-6)
    assert torch.equal(pal.colours[3], torch.zeros(3))  # never seen: no colour to pull toward
    # grouped channels (a prior): codes 0 and 1 share channel 0, whose colour is their pixel-weighted mean
    fresh = _batch()
    pal_g = code_palette(fresh[0], fresh[1], torch.tensor([0, 0, 1]), 2)
    n0, n1 = ((fresh[0][:, 1] == c).sum().item() for c in (0, 1))
    expect = (colours[0] * n0 + colours[1] * n1) / (n0 + n1)
    assert torch.allclose(pal_g.colours[0], expect, atol=1e-5)


def test_paint_puts_one_nearby_code_ellipse_in_the_roi_of_every_window_slot():
    windows, targets, roi, _ = _batch()
    windows[:, :, 15, 15] = 3  # a code far from the ROI: never painted there
    lut = torch.arange(4)
    pal = code_palette(windows, targets, lut, 4)
    gen = torch.Generator().manual_seed(0)
    out = paint_batch(windows, roi, pal, lut, 1.0, 6, gen)
    roi_l = roi[:, :, ::2, ::2] > 0.5
    for i in range(4):
        blob = out.blob[i, 0] > 0
        assert blob.any()
        assert torch.equal(out.windows[i, 0], out.windows[i, 1]) and torch.equal(out.windows[i, 1], out.windows[i, 2])
        codes = {int(c) for s in range(3) for c in out.windows[i, s][blob].unique()}
        assert len(codes) == 1 and codes <= {0, 1, 2, 3}
        assert torch.equal(out.windows[i][:, ~blob], windows[i][:, ~blob])  # nothing outside the ellipse changes
        ys, xs = torch.nonzero(blob, as_tuple=True)
        cy, cx = int(ys.float().mean().round()), int(xs.float().mean().round())
        assert roi_l[i, 0, cy, cx]  # centred in the ROI
        assert torch.allclose(out.colours[i], pal.colours[codes.pop()])
    # radius 2 reaches 4 label px around the ROI (5..10): codes 0, 1, 2 but not the one at (15, 15)
    more = paint_batch(windows.repeat(8, 1, 1, 1), roi.repeat(8, 1, 1, 1), pal, lut, 1.0, 2, gen)
    assert {int(more.windows[i, 1][more.blob[i, 0] > 0][0]) for i in range(32)} == {0, 1, 2}
    # the same generator seed paints the same batch; prob 0 paints nothing
    again = paint_batch(windows, roi, pal, lut, 1.0, 6, torch.Generator().manual_seed(0))
    assert torch.equal(again.windows, out.windows)
    none = paint_batch(windows, roi, pal, lut, 0.0, 6, torch.Generator().manual_seed(0))
    assert torch.equal(none.windows, windows) and not none.blob.any()
    # a sample without ROI pixels stays as it was
    empty = paint_batch(windows, torch.zeros_like(roi), pal, lut, 1.0, 6, torch.Generator().manual_seed(0))
    assert torch.equal(empty.windows, windows)


def test_keep_weight_masks_the_ellipse_and_its_margin_at_render_size():
    blob = torch.zeros(1, 1, L, L)
    blob[0, 0, 7, 7] = 1.0
    keep = keep_weight(blob, 2, R)
    assert keep.shape == (1, 1, R, R)
    assert (keep[0, 0, 10:20, 10:20] == 0).all()  # label 5..9 -> render 10..19
    assert keep.sum() == R * R - 100
    assert torch.equal(keep_weight(blob, 0, L), 1.0 - blob)


def test_painted_targets_hold_the_mean_colour_inside_and_skip_the_band():
    torch.manual_seed(0)
    fake, target = torch.rand(2, 3, R, R), torch.rand(2, 3, R, R)
    weight = torch.full((2, 1, R, R), 3.0)
    blob = torch.zeros(2, 1, L, L)
    blob[0, 0, 6:9, 5:11] = 1.0  # sample 1 unpainted
    colours = torch.tensor([[0.2, 0.07, 0.07], [0.0, 0.0, 0.0]])
    g_target, g_weight = painted_targets(fake, target, weight, PaintedBatch(torch.zeros(2, 3, L, L), blob, colours), 1, 1.5)
    inside = blob.repeat_interleave(2, 2).repeat_interleave(2, 3)[0, 0] > 0
    band = (1.0 - keep_weight(blob, 1, R))[0, 0] > 0
    only_band = band & ~inside
    assert torch.allclose(g_target[0][:, inside].mean(1), colours[0], atol=1e-6)  # the mean goes to the code's colour
    diff = g_target[0][:, inside] - fake[0][:, inside]
    assert torch.allclose(diff, diff[:, :1].expand_as(diff), atol=1e-6)  # by the same shift on every pixel
    assert (g_weight[0, 0][inside] == 1.5).all() and (g_weight[0, 0][only_band] == 0).all()
    assert torch.equal(g_target[0][:, ~band], target[0][:, ~band]) and (g_weight[0, 0][~band] == 3.0).all()
    assert torch.equal(g_target[1], target[1]) and torch.equal(g_weight[1], weight[1])


def test_palette_loss_reads_only_painted_pixels_and_painted_samples():
    render = torch.zeros(2, 3, R, R, requires_grad=True)
    blob = torch.zeros(2, 1, L, L)
    blob[0, 0, 4:8, 4:8] = 1.0
    colours = torch.tensor([[0.3, 0.6, 0.0], [1.0, 1.0, 1.0]])  # sample 1 is unpainted: its colour is ignored
    loss = palette_loss(render, blob, colours)
    assert loss.item() == pytest.approx(0.3)
    loss.backward()
    grad = render.grad.abs().sum(1)
    assert (grad[0, 8:16, 8:16] > 0).all() and grad[0].sum() == grad[0, 8:16, 8:16].sum()
    assert grad[1].sum() == 0
    with torch.no_grad():
        hit = torch.zeros(2, 3, R, R)
        hit[0] = colours[0].view(3, 1, 1)
    assert palette_loss(hit, blob, colours).item() == pytest.approx(0.0, abs=1e-7)
    assert palette_loss(hit, torch.zeros_like(blob), colours).item() == 0.0


@pytest.mark.parametrize("override, field", [("paint_prob=1.5", "paint_prob"), ("paint_radius=1", "paint_radius"),
                                             ("lambda_paint=-1", "lambda_paint")])
def test_bad_paint_settings_are_refused(override, field):
    with pytest.raises(InputError, match=field):
        load_stage2_config("tiny", overrides=[override])
