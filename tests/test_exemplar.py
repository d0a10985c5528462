"""The artist's guide PNG: every code gets its own colour, swatch, share and number."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from vq_models.exemplar import colourise, palette, render_exemplar  # noqa: E402


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
    assert img.shape[0] == 128 + 28  # title bar over the panel
    px = (img[..., :3] * 255 + 0.5).astype(np.uint8)
    for c in palette(k):
        assert np.all(px == c, axis=2).any()
    assert main(["exemplar", str(shot.root), "--frame", "7"]) == 2
