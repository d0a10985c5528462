"""A shot prepped before the crop was aligned on the eye corners says so when it is trained or loaded."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from server_fixtures import MEDIAPIPE_PREP, ServerProcess, attention_models_dir, with_prep  # noqa: F401

from host_plugin.client import RenderClient
from vq_models.face.topology import EYE_CENTRES
from vq_models.runtime import ShotModel
from vq_models.shot import Shot

MEDIAPIPE = MEDIAPIPE_PREP["tool"]


@pytest.mark.parametrize(("prep", "stale"), [
    ({"tool": MEDIAPIPE, "contours": "mesh"}, True),  # before prep recorded the convention: iris centres
    ({"tool": MEDIAPIPE, "contours": "mesh", "eye_centres": "irises"}, True),
    ({"tool": MEDIAPIPE, "contours": "mesh", "eye_centres": EYE_CENTRES}, False),
    ({"tool": "file: tracking.json", "contours": "file"}, False),  # a tracker's own file keeps its own centres
    ({}, False),
])
def test_stale_alignment_names_the_shot_and_the_mend(tiny_shot, tmp_path, prep, stale):
    shot = Shot.open(with_prep(Path(shutil.copytree(tiny_shot, tmp_path / "shot")), prep))
    message = shot.stale_alignment()
    assert (message is not None) == stale
    if stale:
        assert str(shot.root) in message and "vqedit prep" in message


def test_loading_a_stale_shot_warns_once_and_still_renders(tiny_shot, tmp_path, caplog):
    shot_dir = with_prep(Path(shutil.copytree(tiny_shot, tmp_path / "shot")), {"tool": MEDIAPIPE})
    with caplog.at_level(logging.WARNING, logger="vqedit.runtime"):
        model = ShotModel.load(shot_dir)
    warned = [r for r in caplog.records if "iris centres" in r.getMessage()]
    assert len(warned) == 1 and str(shot_dir) in warned[0].getMessage()
    assert model.render_frame(model.frames[0]).box_rgb.size > 0  # the warning does not stop it rendering

    with_prep(shot_dir, {"tool": MEDIAPIPE, "eye_centres": EYE_CENTRES})
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vqedit.runtime"):
        ShotModel.load(shot_dir)
    assert not [r for r in caplog.records if "iris centres" in r.getMessage()]


def test_the_server_lists_what_each_folder_needs_before_rendering(attention_models_dir):  # noqa: F811
    """A real server process: ``list_models`` says which folders to re-prep, train or ignore (from shot.json,
    without loading them), ``load`` repeats it, and a stale shot still renders."""
    server = ServerProcess(attention_models_dir)
    client = RenderClient(server.address, timeout=30, retries=0)
    try:
        said = {m["name"]: m["warning"] for m in client.list_models()}
        assert said["fresh"] is None
        assert "iris centres" in said["stale"] and "vqedit prep" in said["stale"]
        assert "no Stage I model" in said["untrained"] and "vqedit train" in said["untrained"]
        assert "not a shot directory" in said["empty"]
        desc = client.load("stale")
        assert desc["warning"] == said["stale"] and client.load("fresh")["warning"] is None
        assert client.render_frame("stale", desc["frames"][0], fmt="half")["frame"] == desc["frames"][0]
        # re-prepped in place while the server runs: the listing reads shot.json afresh
        with_prep(attention_models_dir / "stale", {**MEDIAPIPE_PREP, "eye_centres": EYE_CENTRES})
        assert {m["name"]: m["warning"] for m in client.list_models()}["stale"] is None
    finally:
        with_prep(attention_models_dir / "stale", dict(MEDIAPIPE_PREP))
        client.close()
        server.stop()
    log = server.proc.stderr.read() if server.proc.stderr else ""
    assert "stale: " in log and "iris centres" in log and "untrained: " in log and "empty: " in log  # at start
    assert "fresh: " not in log
