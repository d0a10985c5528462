"""`vqedit recluster`: a new codebook and labels from the trained Stage I network, consistent with inference,
and never silently under an artist prior or a Stage II model made for the old codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from stage1_shot import CROP, draw_frame, make_shot  # noqa: E402

from vq_models.cli import main  # noqa: E402
from vq_models.io.images import read_label_map  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture()
def trained(tmp_path: Path) -> Path:
    root = tmp_path / "shot"
    make_shot(root)
    assert main(["train", str(root), "--stage", "1", "--preset", "tiny", "--iters", "2",
                 "--set", f"label_size={CROP}"]) == 0
    return root


def test_recluster_changes_k_and_rgb_tap_and_inference_agrees(trained: Path, capsys):
    from vq_models.stage1_model import Stage1Model

    s1 = trained / "stage1"
    weights_before = (s1 / "model.safetensors").read_bytes()
    assert main(["recluster", str(trained), "--codes", "5", "--rgb-weight", "3", "--seed", "2"]) == 0
    assert "8 -> 5 codes" in capsys.readouterr().out
    meta = json.loads((s1 / "meta.json").read_text())
    assert meta["num_codes"] == 5 and meta["code_dim"] == 16 + 16 + 3 + 2  # + 2: the tiny preset's region tap
    assert meta["reclustered"][-1]["from"]["num_codes"] == 8 and meta["reclustered"][-1]["changes"]["seed"] == 2
    assert "num_codes: 5" in (s1 / "config.yaml").read_text()
    assert (s1 / "model.safetensors").read_bytes() == weights_before  # the network is untouched
    assert not (s1 / "labels.new").exists() and not (s1 / "labels.old").exists()
    labels = {f: read_label_map(s1 / "labels" / f"frame.{f}.png") for f in meta["frames"]}
    fg = draw_frame(0)["fg"] > 0.5
    assert all(lab.max() < 5 for lab in labels.values()) and len(np.unique(labels[1001][fg])) >= 3
    model = Stage1Model.load(s1)
    from vq_models.shot import Shot

    shot = Shot.open(trained)
    again = model.labels_from_image(shot.overlay(1001), shot.fg_mask(1001), shot.roi_mask(1001))
    assert (again[fg] == labels[1001][fg]).mean() > 0.97


def test_recluster_adds_the_context_tap_and_inference_agrees(trained: Path):
    from vq_models.shot import Shot
    from vq_models.stage1_model import Stage1Model

    s1 = trained / "stage1"
    assert main(["recluster", str(trained), "--rgb-weight", "3", "--context-weight", "2",
                 "--context-sigma", "0.05"]) == 0
    meta = json.loads((s1 / "meta.json").read_text())
    assert meta["code_dim"] == 16 + 16 + 3 + 3 + 2 and meta["vq_context_weight"] == 2.0
    assert meta["vq_context_sigma"] == 0.05 and meta["vq_context_multiplier"] == pytest.approx((2 / 3) ** 0.5)
    assert "vq_context_weight: 2.0" in (s1 / "config.yaml").read_text()
    model = Stage1Model.load(s1)
    assert model.net.vq_context_sigma == 0.05 and model.quantizer.dim == 40
    fg = draw_frame(0)["fg"] > 0.5
    shot = Shot.open(trained)
    again = model.labels_from_image(shot.overlay(1001), shot.fg_mask(1001), shot.roi_mask(1001))
    assert (again[fg] == read_label_map(s1 / "labels" / "frame.1001.png")[fg]).mean() > 0.97
    # and back off again: the codebook shrinks to the features, the RGB and the region taps
    assert main(["recluster", str(trained), "--context-weight", "0"]) == 0
    assert json.loads((s1 / "meta.json").read_text())["code_dim"] == 16 + 16 + 3 + 2
    # the region tap off: two channels fewer, and labelling needs no ROI any more
    assert main(["recluster", str(trained), "--region-weight", "0"]) == 0
    meta = json.loads((s1 / "meta.json").read_text())
    assert meta["code_dim"] == 16 + 16 + 3 and meta["vq_region_multiplier"] == 0.0
    model = Stage1Model.load(s1)
    assert not model.needs_roi
    again = model.labels_from_image(shot.overlay(1001), shot.fg_mask(1001))
    assert (again[fg] == read_label_map(s1 / "labels" / "frame.1001.png")[fg]).mean() > 0.97


def test_recluster_refuses_to_orphan_a_prior_then_moves_it_with_force(trained: Path, capsys):
    prior = trained / "prior.json"
    prior.write_text('{"version": 1, "num_codes": 8, "segments": {"skin": [0]}}')
    assert main(["recluster", str(trained), "--codes", "6"]) == 2
    err = capsys.readouterr().err
    assert "prior.json" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert json.loads((trained / "stage1" / "meta.json").read_text())["num_codes"] == 8  # nothing changed
    assert main(["recluster", str(trained), "--codes", "6", "--force"]) == 0
    assert not prior.exists()
    moved = list((trained / "stale").glob("*/prior.json"))
    assert len(moved) == 1 and "skin" in moved[0].read_text()
    assert json.loads((trained / "stage1" / "meta.json").read_text())["num_codes"] == 6


def test_recluster_bad_arguments_are_one_line_errors(trained: Path, capsys):
    for argv in (["--codes", "300"], ["--rgb-weight", "-1"], ["--roi-weight", "0.5"], ["--context-weight", "-2"],
                 ["--context-sigma", "0"], ["--region-weight", "-1"]):
        assert main(["recluster", str(trained), *argv]) == 2
        err = capsys.readouterr().err
        assert argv[0] in err and len(err.strip().splitlines()) == 1
    assert main(["recluster", str(trained.parent / "nope")]) == 2
