"""A shot prepped before the crop was aligned on the eye corners says so when it is trained or loaded."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from vq_models.face.topology import EYE_CENTRES
from vq_models.runtime import ShotModel
from vq_models.shot import Shot

MEDIAPIPE = "mediapipe 0.10.21 face_mesh (478 points)"


def _with_prep(shot_dir: Path, prep: dict) -> Path:
    meta_path = shot_dir / "shot.json"
    meta = json.loads(meta_path.read_text())
    meta["prep"] = prep
    meta_path.write_text(json.dumps(meta))
    return shot_dir


@pytest.mark.parametrize(("prep", "stale"), [
    ({"tool": MEDIAPIPE, "contours": "mesh"}, True),  # before prep recorded the convention: iris centres
    ({"tool": MEDIAPIPE, "contours": "mesh", "eye_centres": "irises"}, True),
    ({"tool": MEDIAPIPE, "contours": "mesh", "eye_centres": EYE_CENTRES}, False),
    ({"tool": "file: tracking.json", "contours": "file"}, False),  # a tracker's own file keeps its own centres
    ({}, False),
])
def test_stale_alignment_names_the_shot_and_the_mend(tiny_shot, tmp_path, prep, stale):
    shot = Shot.open(_with_prep(Path(shutil.copytree(tiny_shot, tmp_path / "shot")), prep))
    message = shot.stale_alignment()
    assert (message is not None) == stale
    if stale:
        assert str(shot.root) in message and "vqedit prep" in message


def test_loading_a_stale_shot_warns_once_and_still_renders(tiny_shot, tmp_path, caplog):
    shot_dir = _with_prep(Path(shutil.copytree(tiny_shot, tmp_path / "shot")), {"tool": MEDIAPIPE})
    with caplog.at_level(logging.WARNING, logger="vqedit.runtime"):
        model = ShotModel.load(shot_dir)
    warned = [r for r in caplog.records if "iris centres" in r.getMessage()]
    assert len(warned) == 1 and str(shot_dir) in warned[0].getMessage()
    assert model.render_frame(model.frames[0]).box_rgb.size > 0  # the warning does not stop it rendering

    _with_prep(shot_dir, {"tool": MEDIAPIPE, "eye_centres": EYE_CENTRES})
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vqedit.runtime"):
        ShotModel.load(shot_dir)
    assert not [r for r in caplog.records if "iris centres" in r.getMessage()]
