"""benchmarks/plate_scale.py re-plates a trained shot at another plate size: the new plate, cropped through the
new transforms, must show what the shot's own crops show, and a render on it must stay local and sharp."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vq_models.face.align import crop as crop_plate
from vq_models.io.colour import to_network
from vq_models.io.sources import open_source
from vq_models.shot import Shot

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "plate_scale.py"
_spec = importlib.util.spec_from_file_location("plate_scale", _PATH)
plate_scale = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plate_scale)

SCALE = 4.0
CANVAS = (640, 360)  # 16:9, the face larger than a 96² plate scaled to fill its height would make it


@pytest.fixture(scope="module")
def replated(tiny_shot: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames = Shot.open(tiny_shot).frames[:6]
    return plate_scale.replate(tiny_shot, tmp_path_factory.mktemp("replate") / "shot", *CANVAS, SCALE, frames)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


def test_replated_plate_crops_to_the_shots_own_crops(tiny_shot: Path, replated: Path):
    old, new = Shot.open(tiny_shot), Shot.open(replated)
    assert new.frames == old.frames[:6]
    assert (new.plate["width"], new.plate["height"]) == CANVAS
    with open_source(new.plate["source"], colorspace=new.plate["colorspace"]) as source:
        for f in new.frames:
            image = source.read(f)
            assert (image.pixels.shape[1], image.pixels.shape[0]) == CANVAS
            ours = crop_plate(to_network(image), new.transform(f), new.crop_size)
            # the same crop up to the added grain and one resampling: a wrong offset or scale drops far below
            assert _psnr(ours, np.clip(old.aligned(f), 0, 1)) > 24.0
            shifted = crop_plate(to_network(image), new.transform(f), new.crop_size)[:, 3:]
            assert _psnr(shifted, np.clip(old.aligned(f), 0, 1)[:, :-3]) < _psnr(ours, np.clip(old.aligned(f), 0, 1))


def test_replated_tracking_follows_the_plate(tiny_shot: Path, replated: Path):
    old = json.loads((tiny_shot / "tracking.json").read_text())
    new = json.loads((replated / "tracking.json").read_text())
    assert new["image_size"] == list(CANVAS)
    f = str(Shot.open(replated).frames[0])
    a, b = np.asarray(old["frames"][f]["landmarks5"]), np.asarray(new["frames"][f]["landmarks5"])
    # distances between landmarks scale by SCALE; the face sits mid-canvas
    assert np.allclose(np.ptp(b, axis=0), SCALE * np.ptp(a, axis=0), rtol=1e-3)
    assert np.allclose(b.mean(axis=0), (np.asarray(CANVAS) - 1) / 2.0, atol=SCALE * 3)
    oval_old = np.asarray(old["frames"][f]["contours"]["face_oval"])
    oval_new = np.asarray(new["frames"][f]["contours"]["face_oval"])
    assert np.allclose(np.ptp(oval_new, axis=0), SCALE * np.ptp(oval_old, axis=0), rtol=1e-3)


def test_render_on_the_replated_plate_is_local_and_keeps_its_grain(replated: Path):
    row = plate_scale.measure(replated, Shot.open(replated).frames[:3])
    assert row["changed_outside_alpha"] == 0
    assert row["face_px"] > 100  # the tiny shot's face, four times larger
    # identity with plate detail keeps the plate's grain; a bare upscaled render would score far lower
    assert row["sharpness"] > 0.8 and row["ssim"] > 0.9
    assert row["identity_s"] > 0 and row["edit_s"] > 0 and row["peak_mib"] > 0


def test_the_sheet_shows_plate_pixels_one_to_one(replated: Path, tmp_path: Path):
    """--sheet: each edit's cells are cut from the plate at its own pixels, so the grain a compositor looks
    for is in the figure, not resampled away: a block of the first plate cell is found verbatim (to 8-bit)
    in the plate."""
    from vq_models.io.images import read_image

    path = tmp_path / "sheet.png"
    plate_scale.write_sheet(replated, path)
    sheet = read_image(path).pixels[..., :3]
    cell = np.float32(sheet[24:34, 124:134])  # inside the first cell: below the header, right of the labels
    assert cell.std() > 0.005  # the grain is there
    shot = Shot.open(replated)
    with open_source(shot.plate["source"], colorspace=shot.plate["colorspace"]) as source:
        frames = [np.float32(np.clip(to_network(source.read(f)), 0, 1)) for f in shot.frames]
    best = min(float(cv2.matchTemplate(frame, cell, cv2.TM_SQDIFF).min()) for frame in frames)
    assert best / cell.size < (1.0 / 255) ** 2  # one sheet pixel per plate pixel, 8-bit rounding apart
