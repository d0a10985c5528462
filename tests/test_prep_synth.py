"""`vqedit prep --tracking` on a synthetic shot: crops follow exactly the generator's own geometry."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vq_models.errors import InputError
from vq_models.face.align import crop, ffhq_quad, quad_transform
from vq_models.face.overlay import OVERLAY_3D, frame_overlay
from vq_models.face.prep import PRESETS, run_prep
from vq_models.io.sources import open_source
from vq_models.synth.writer import write_synth_shot
from vq_models.tracking.schema import Tracking, load_tracking, save_tracking


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    write_synth_shot(out, frames=5, size=96, seed=3, start=1001, ss=1, progress=False)
    return out


def test_tracking_file_gives_the_generators_crops(synth, tmp_path):
    cfg = dataclasses.replace(PRESETS["tiny"], crop_size=64, smooth_sigma=0.0)
    plate = str(synth / "plate" / "frame.%04d.exr")
    res = run_prep(plate, tmp_path / "shot", config=cfg, tracking_path=synth / "tracking.json", progress=False)
    shot = res.shot
    truth = load_tracking(synth / "tracking.json")
    assert shot.frames == [1001, 1002, 1003, 1004, 1005]
    assert shot.meta["prep"]["contours"] == "file"
    assert "eye_centres" not in shot.meta["prep"] and shot.stale_alignment() is None  # the file's own convention
    with open_source(plate) as src:
        for f in shot.frames:
            expected = quad_transform(ffhq_quad(truth.frames[f].landmarks5), 64)
            np.testing.assert_allclose(shot.transform(f).plate_to_crop, expected.plate_to_crop, atol=1e-9)
            ref = crop(src.read_network(f), expected, 64)
            diff = np.abs(shot.aligned(f) - ref)
            assert diff.mean() < 1.0 / 255.0 and diff.max() < 4.0 / 255.0
    # the synthetic tracking carries a mesh, so prep ran the 3D overlay, through the one frame renderer
    assert shot.meta["prep"]["overlay"] == OVERLAY_3D and shot.meta["prep"]["overlay_2d_frames"] == []
    kept = load_tracking(shot.tracking_path)
    for f in (1001, 1004):
        again = frame_overlay(shot.aligned(f), kept.frames[f], shot.transform(f))
        assert again.kind == OVERLAY_3D
        assert np.abs(shot.overlay(f) - again.image).mean() < 1.0 / 255.0
    # the shot's tracking is the file's, in plate pixels
    np.testing.assert_allclose(kept.frames[1003].contours["lips_outer"], truth.frames[1003].contours["lips_outer"],
                               atol=1e-3)


def test_five_point_tracking_falls_back_to_templates(synth, tmp_path):
    truth = load_tracking(synth / "tracking.json")
    lm_only = Tracking(truth.image_size, {f: dataclasses.replace(t, contours={}) for f, t in truth.frames.items()})
    save_tracking(lm_only, tmp_path / "lm5.json")
    cfg = dataclasses.replace(PRESETS["tiny"], crop_size=64)
    res = run_prep(str(synth / "plate" / "frame.%04d.exr"), tmp_path / "shot", config=cfg,
                   tracking_path=tmp_path / "lm5.json", frames="1001-1003", progress=False)
    assert res.shot.meta["prep"]["contours"] == "template"
    roi = res.shot.roi_mask(1002)
    lm = res.shot.transform(1002).to_crop(truth.frames[1002].landmarks5)
    assert all(roi[int(round(y)), int(round(x))] > 0.5 for x, y in lm[:2])


def test_tracking_of_wrong_size_is_rejected(synth, tmp_path):
    truth = load_tracking(synth / "tracking.json")
    save_tracking(Tracking((200, 100), truth.frames), tmp_path / "bad.json")
    with pytest.raises(InputError, match=r"bad.json: image_size \[200, 100\] does not match the plate \(96x96\)"):
        run_prep(str(synth / "plate" / "frame.%04d.exr"), tmp_path / "shot", config=PRESETS["tiny"],
                 tracking_path=tmp_path / "bad.json", progress=False)
