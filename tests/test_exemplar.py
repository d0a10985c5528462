"""The artist's guide PNG: every code gets its own colour, swatch, share and number."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from vq_models.exemplar import colourise, detail_boxes, palette, render_exemplar  # noqa: E402


def _stripes(k: int, size: int = 64) -> np.ndarray:
    """Vertical stripes of codes 0..k-1, code 0 twice as wide as the others."""
    widths = np.array([2] + [1] * (k - 1), float)
    edges = np.round(np.cumsum(widths) / widths.sum() * size).astype(int)
    lab = np.zeros((size, size), np.uint8)
    start = 0
    for code, end in enumerate(edges):
        lab[:, start:end] = code
        start = end
    return lab


def test_palette_is_distinct_for_every_k():
    for k in (2, 8, 128, 255):
        p = palette(k)
        assert p.shape == (k, 3) and p.dtype == np.uint8
        assert len({tuple(c) for c in p}) == k
        assert not np.any(np.all(p == 0, axis=1))  # black is reserved for "outside"


def test_colourise_maps_codes_and_blacks_out_255():
    lab = np.array([[0, 1], [2, 255]], np.uint8)
    rgb = colourise(lab, 3)
    p = palette(3)
    assert np.array_equal(rgb[0, 0], p[0]) and np.array_equal(rgb[1, 0], p[2])
    assert np.array_equal(rgb[1, 1], [0, 0, 0])


def test_exemplar_shows_k_colours_tints_and_legend():
    k = 6
    gray = np.full((64, 64, 3), 0.5, np.float32)
    lab = _stripes(k)
    out = render_exemplar(gray, lab, k, alpha=0.5, panel_size=256)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[0] == 256 and out.shape[1] > 256
    panel, legend = out[:, :256], out[:, 256:]
    colours = palette(k)
    for code, c in enumerate(colours):
        # legend swatch in the exact palette colour
        assert np.all(legend == c, axis=2).sum() >= 100, f"swatch for code {code} missing"
        # the region in the image panel is the palette colour blended 50/50 over gray
        blend = np.clip(0.5 * 127.5 + 0.5 * c.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)
        hits = np.all(np.abs(panel.astype(int) - blend.astype(int)) <= 1, axis=2).sum()
        assert hits > 500, f"tint for code {code} missing ({hits})"
    # white index text is drawn over the regions
    assert np.all(panel == 255, axis=2).sum() > 0


def test_exemplar_command_writes_png(tmp_path: Path):
    from stage1_shot import make_shot

    from vq_models.cli import main
    from vq_models.io.atomic import atomic_write_json
    from vq_models.io.images import read_image, write_label_map
    from vq_models.quantizer import VectorQuantizer
    from vq_models.train.checkpoint import save_weights

    shot = make_shot(tmp_path / "shot", frames=(1, 2))
    s1 = shot.stage1_dir
    k = 5
    for f in shot.frames:
        write_label_map(s1 / "labels" / f"frame.{f:04d}.png", _stripes(k, 40))
    save_weights(s1 / "codebook.safetensors", dict(VectorQuantizer(num_codes=k, dim=3).state_dict()))
    atomic_write_json(s1 / "meta.json", {"num_codes": k, "code_dim": 3, "label_size": 40, "input_size": 32})
    out = tmp_path / "guide.png"
    assert main(["exemplar", str(shot.root), "--frame", "2", "--out", str(out), "--size", "128"]) == 0
    img = read_image(out).pixels
    assert img.shape[0] == 28 + 128 + 128  # title bar, the frame with its legend, the eye/mouth insets
    plain = tmp_path / "plain.png"
    assert main(["exemplar", str(shot.root), "--frame", "2", "--out", str(plain), "--size", "128", "--no-details"]) == 0
    assert read_image(plain).pixels.shape[0] == 28 + 128
    px = (img[..., :3] * 255 + 0.5).astype(np.uint8)
    for c in palette(k):
        assert np.all(px == c, axis=2).any()
    assert main(["exemplar", str(shot.root), "--frame", "7"]) == 2


def test_detail_boxes_name_eyes_and_mouth_and_insets_zoom_each_code():
    import cv2
    import pytest

    roi = np.zeros((128, 128), np.float32)  # at twice the label size: boxes come back in label pixels
    cv2.circle(roi, (40, 50), 8, 1.0, -1)  # image left = the subject's right eye
    cv2.circle(roi, (88, 50), 8, 1.0, -1)
    cv2.ellipse(roi, (64, 96), (20, 8), 0, 0, 360, 1.0, -1)
    boxes = dict(detail_boxes(roi, 64))
    assert list(boxes) == ["eye R", "eye L", "mouth"]
    for name, centre in (("eye R", (20, 25)), ("eye L", (44, 25)), ("mouth", (32, 48))):
        x0, y0, x1, y1 = boxes[name]
        assert x1 - x0 == y1 - y0 and x0 < centre[0] < x1 and y0 < centre[1] < y1 and 0 <= x0 and x1 <= 64
    assert detail_boxes(np.zeros((64, 64)), 64) == []

    lab = np.zeros((64, 64), np.uint8)
    lab[24:27, 19:22] = 3  # a 3x3 "pupil": too small to number on the frame, large on its inset
    gray = np.full((64, 64, 3), 0.5, np.float32)
    out = render_exemplar(gray, lab, 4, alpha=1.0, panel_size=256, details=[("eye R", boxes["eye R"])])
    assert out.shape[0] == 512
    inset = out[256:, :256]
    assert np.all(inset == palette(4)[3], axis=2).sum() > 20 * np.all(out[:256, :256] == palette(4)[3], axis=2).sum()
    with pytest.raises(ValueError, match="outside"):
        render_exemplar(gray, lab, 4, details=[("bad", (60, 60, 70, 70))])
