"""`vqedit transfer-expression` on two prepared real shots: overlay frames re-rendered with the driver's mouth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vq_models.cli import main
from vq_models.face.prep import PRESETS, run_prep
from vq_models.io.images import read_image
from vq_models.tracking.schema import load_tracking

pytestmark = pytest.mark.clips


def test_transfer_expression_cli(clips_dir, tmp_path, capsys):
    cfg = dataclasses.replace(PRESETS["tiny"], crop_size=64, person_segmentation=False)
    # source: lp_d0 before the smile (mouth closed); driver: lp_d0 during the broad smile
    src = run_prep(clips_dir / "lp_d0.mp4", tmp_path / "src", config=cfg, frames="1-4", progress=False).shot
    drv = run_prep(clips_dir / "lp_d0.mp4", tmp_path / "drv", config=cfg, frames="1-2,40-41", progress=False).shot
    # --overlays alone: the transferred overlays Stage I reads, no trained model needed
    rc = main(["transfer-expression", str(drv.root), "--shot", str(src.root), "--overlays", str(tmp_path / "new"),
               "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    new = load_tracking(tmp_path / "new" / "tracking.json")
    old = load_tracking(src.tracking_path)
    assert sorted(new.frames) == src.frames
    # driver frames 40-41 smile: mouth corners move apart relative to frames 1-2
    width = {f: np.linalg.norm(new.frames[f].landmarks5[4] - new.frames[f].landmarks5[3]) for f in src.frames}
    assert width[3] > width[1] + 1.0 and width[4] > width[2] + 1.0
    np.testing.assert_allclose(new.frames[3].landmarks5[:2], old.frames[3].landmarks5[:2], atol=1e-3)
    img = read_image(tmp_path / "new" / "frame.0003.png").pixels
    assert img.shape[:2] == (64, 64)
    assert np.abs(img[..., :3] - src.overlay(3)).max() > 0.2  # re-rendered mouth differs from the original overlay
