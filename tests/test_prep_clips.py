"""`vqedit prep` on the real clips: faces found, stable crops, exact paste-back, masks, lost faces."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest

from vq_models.cli import main
from vq_models.errors import InputError
from vq_models.face.align import crop, paste
from vq_models.face.prep import PRESETS, run_prep
from vq_models.io.images import read_image, write_image
from vq_models.io.sources import open_source
from vq_models.tracking.schema import load_tracking
from vq_models.vq_input import EYE_MOUTH_SPLIT

pytestmark = pytest.mark.clips
cv2.setNumThreads(1)
TINY = PRESETS["tiny"]


@pytest.fixture(scope="module")
def shot13(clips_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("shot13")
    return run_prep(clips_dir / "lp_d13.mp4", out, config=TINY, frames="1-40", progress=False)


def test_every_frame_has_a_face_and_crops_are_stable(shot13):
    shot = shot13.shot
    assert shot.frames == list(range(1, 41))
    assert shot13.bridged == [] and shot.meta["prep"]["lost"] == []
    assert shot.meta["prep"]["contours"] == "mesh"
    assert shot.meta["prep"]["eye_centres"] == "corners" and shot.stale_alignment() is None
    tracking = load_tracking(shot.tracking_path)
    assert tracking.frames[1].mesh is not None and tracking.frames[1].mesh.shape == (478, 3)
    eyes = np.array([shot.transform(f).to_crop(tracking.frames[f].landmarks5[:2]) for f in shot.frames])
    jitter = eyes.std(axis=0).max() / shot.crop_size
    assert jitter < 0.015, jitter
    assert shot13.eye_std_pct == pytest.approx(jitter * 100, rel=1e-3)
    # FFHQ layout: image-left eye on the left, eyes in the upper half, level-ish
    mean = eyes.mean(0)
    assert mean[0, 0] < mean[1, 0] and mean[:, 1].max() < 0.55 * shot.crop_size


def test_masks_cover_eyes_and_mouth(shot13):
    shot = shot13.shot
    assert shot.meta["prep"]["person_matte_failed_frames"] == []  # a real face: the matte is kept on every frame
    tracking = load_tracking(shot.tracking_path)
    for f in (1, 20, 40):
        lm = shot.transform(f).to_crop(tracking.frames[f].landmarks5)
        roi, fg = shot.roi_mask(f), shot.fg_mask(f)
        mouth = (lm[3] + lm[4]) / 2
        for x, y in (lm[0], lm[1], mouth):
            assert roi[int(round(y)), int(round(x))] > 0.5
        assert fg[int(round(lm[2, 1])), int(round(lm[2, 0]))] > 0.5  # nose is face
        assert fg[2, 2] < 0.05 and roi.mean() < 0.2  # corner is background, ROI is small
        # Stage I's region tap splits the ROI at a fixed crop height: the eyes' ROI lies above it, the mouth's below
        rows = np.nonzero((roi > 0.05).any(axis=1))[0] / roi.shape[0]
        assert not np.any((rows > EYE_MOUTH_SPLIT - 0.02) & (rows < EYE_MOUTH_SPLIT + 0.02)), f
        assert rows.min() < EYE_MOUTH_SPLIT < rows.max()
        # the overlay changes the lower face only
        diff = np.abs(shot.overlay(f) - shot.aligned(f)).sum(-1)
        # (a patch, not one pixel: the shaded 3D lips can match the plate's own lip colour at a pixel)
        y, x = int(mouth[1]), int(mouth[0])
        assert diff[y - 4 : y + 5, x - 4 : x + 5].mean() > 0.1
        assert diff[: int(lm[:2, 1].max()) - 2].max() == 0.0


def test_aligned_crop_pastes_back_onto_plate(shot13, clips_dir):
    shot = shot13.shot
    f = 20
    with open_source(clips_dir / "lp_d13.mp4", [f]) as src:
        plate = src.read_network(f)
    t = shot.transform(f)
    # geometry: plate -> crop -> plate within 0.05 px
    pts = np.random.default_rng(0).uniform(0, 700, (50, 2))
    assert np.abs(t.to_plate(t.to_crop(pts)) - pts).max() < 0.05
    back, alpha = paste(shot.aligned(f), t, (plate.shape[1], plate.shape[0]))
    inside = alpha > 0.999
    assert inside.sum() > 0.1 * alpha.size
    # the 128 crop is a downscale, so compare with the plate low-passed the same way
    ref = paste(crop(plate, t, shot.crop_size), t, (plate.shape[1], plate.shape[0]))[0]
    assert np.abs(back[inside] - ref[inside]).mean() < 2.0 / 255.0


def test_lost_face_gap_is_bridged(clips_dir, tmp_path):
    with open_source(clips_dir / "lp_d0.mp4", "1-8") as src:
        for f in src.frames:
            rgb = src.read_network(f)
            if f in (4, 5):
                rgb = np.zeros_like(rgb)  # the face is lost on these frames
            write_image(tmp_path / "plate" / f"p.{f:04d}.png", rgb, dtype="uint8")
    cfg = dataclasses.replace(TINY, crop_size=64)
    res = run_prep(str(tmp_path / "plate" / "p.%04d.png"), tmp_path / "shot", config=cfg, progress=False)
    assert res.bridged == [4, 5]
    tr = load_tracking(res.shot.tracking_path)
    np.testing.assert_allclose(tr.frames[4].landmarks5, (2 * tr.frames[3].landmarks5 + tr.frames[6].landmarks5) / 3,
                               atol=2e-3)
    with pytest.raises(InputError, match=r"face lost in frames 4-5.*--frames \(1-3, 6-8\)"):
        run_prep(str(tmp_path / "plate" / "p.%04d.png"), tmp_path / "shot2",
                 config=dataclasses.replace(cfg, max_gap=1), progress=False)


def test_plate_without_face_fails_clearly(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for f in (1, 2, 3):
        write_image(tmp_path / f"n.{f:04d}.png", rng.uniform(0, 1, (96, 96, 3)).astype(np.float32), dtype="uint8")
    rc = main(["prep", str(tmp_path / "n.%04d.png"), "--out", str(tmp_path / "shot"), "--preset", "tiny"])
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert rc == 2
    assert err == f"vqedit prep: error: {tmp_path / 'n.%04d.png'}: no face found in any frame (1-3)"
    assert not (tmp_path / "shot" / "shot.json").exists()


def test_cli_prep_writes_shot_and_preview(clips_dir, tmp_path, capsys):
    out = tmp_path / "shot"
    rc = main(["prep", str(clips_dir / "lp_d0.mp4"), "--out", str(out), "--frames", "10-15", "--size", "64",
               "--preset", "tiny", "--preview"])
    assert rc == 0, capsys.readouterr().err
    meta = json.loads((out / "shot.json").read_text())
    assert meta["crop_size"] == 64 and meta["frames"] == list(range(10, 16))
    assert meta["plate"]["width"] == 512 and meta["plate"]["colorspace"]
    sheet = read_image(out / "preview.png").pixels
    assert sheet.shape[1] == 4 * 64 and sheet.shape[0] == 64 * 4  # 4 sampled frames x 4 tiles
    assert sheet.std() > 0.05
