"""eval-segmentation on a hand-made case whose IoUs are worked out by hand."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from stage1_shot import CROP, OFFSET, PLATE_H, PLATE_W, make_shot  # noqa: E402

from vq_models.cli import main  # noqa: E402
from vq_models.io.atomic import atomic_write_json  # noqa: E402
from vq_models.io.images import write_label_map  # noqa: E402
from vq_models.quantizer import VectorQuantizer  # noqa: E402
from vq_models.segmentation_eval import confusion, match_codes, part_ious  # noqa: E402
from vq_models.train.checkpoint import save_weights  # noqa: E402


def _fake_stage1(shot, labels: np.ndarray, k: int) -> None:
    s1 = shot.stage1_dir
    for f in shot.frames:
        write_label_map(s1 / "labels" / f"frame.{f:04d}.png", labels)
    save_weights(s1 / "codebook.safetensors", dict(VectorQuantizer(num_codes=k, dim=3).state_dict()))
    atomic_write_json(s1 / "meta.json", {"num_codes": k, "code_dim": 3, "label_size": labels.shape[0],
                                         "input_size": 32})


def test_known_ious_through_the_command(tmp_path: Path):
    shot = make_shot(tmp_path / "shot", frames=(1001, 1002))
    # crop labels: code 0 = left half; code 1 = top-right quadrant; code 2 = bottom-right quadrant
    lab = np.zeros((CROP, CROP), np.uint8)
    lab[:20, 20:] = 1
    lab[20:, 20:] = 2
    _fake_stage1(shot, lab, 3)
    # plate GT: background everywhere, part A on crop columns 0-23, part B on crop columns 24-39
    gt_dir = tmp_path / "gt"
    x0, y0 = int(OFFSET[0]), int(OFFSET[1])
    gt = np.zeros((PLATE_H, PLATE_W), np.uint8)
    gt[y0 : y0 + CROP, x0 : x0 + 24] = 1
    gt[y0 : y0 + CROP, x0 + 24 : x0 + CROP] = 2
    for f in shot.frames:
        write_label_map(gt_dir / f"frame.{f:04d}.png", gt)
    parts = tmp_path / "parts.json"
    parts.write_text(json.dumps(["background", "A", "B"]))
    out = tmp_path / "report.json"
    rc = main(["eval-segmentation", str(shot.root), "--gt-labels", str(gt_dir / "frame.%04d.png"),
               "--parts", str(parts), "--json", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    # A: predicted by code 0 (800 px/frame), GT 960 → IoU 800/960. B: codes 1+2 (800), GT 640 → 640/800
    assert report["parts"]["A"]["iou"] == pytest.approx(800 / 960)
    assert report["parts"]["B"]["iou"] == pytest.approx(640 / 800)
    assert report["parts"]["A"]["codes"] == [0] and report["parts"]["B"]["codes"] == [1, 2]
    assert "background" not in report["parts"]  # never inside the crop here
    assert report["mean_iou"] == pytest.approx((800 / 960 + 0.8) / 2)
    assert report["frames"] == 2


def test_missing_ground_truth_is_one_line_error(tmp_path: Path, capsys):
    shot = make_shot(tmp_path / "shot", frames=(5,))
    _fake_stage1(shot, np.zeros((CROP, CROP), np.uint8), 2)
    rc = main(["eval-segmentation", str(shot.root), "--gt-labels", str(tmp_path / "nope.%04d.png")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "nope.0005.png" in err and len(err.splitlines()) == 1


def test_confusion_ignores_255_and_maps_by_majority():
    pred = np.array([0, 0, 1, 1, 2, 255])
    gt = np.array([1, 1, 1, 2, 255, 2])
    conf = confusion(pred, gt, num_codes=3, num_parts=3)
    assert conf.sum() == 4  # the two 255 pixels are skipped
    mapping = match_codes(conf)
    assert mapping == {0: 1, 1: 1}  # code 1 ties 1-1 between parts 1 and 2 → first; code 2 only on 255
    ious = part_ious(conf, mapping)
    assert ious[1] == pytest.approx(3 / 4) and ious[2] == 0.0
