"""benchmarks/crop_stability.py measures how far the aligned crop moves the face between two frames outside
their eyes and mouth: nothing between a frame and itself, a known shift when one crop is moved."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vq_models.io.images import write_image
from vq_models.shot import Shot

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "crop_stability.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("crop_stability", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["crop_stability"] = module
    spec.loader.exec_module(module)
    return module


def test_a_moved_crop_is_measured_and_an_unmoved_one_is_not(bench, tiny_shot, tmp_path):
    root = tmp_path / "shot"
    shutil.copytree(tiny_shot, root, ignore=shutil.ignore_patterns("stage1", "stage2"))
    shot = Shot.open(root)
    a, b = shot.frames[2], shot.frames[3]
    assert np.hypot(*bench.face_shift(shot, a, a)) < 0.05
    # frame b's crop replaced by frame a's moved right by 2 and down by 1 crop pixels
    image = shot.aligned(a)
    moved = cv2.warpAffine(image, np.float32([[1, 0, 2.0], [0, 1, 1.0]]), image.shape[1::-1],
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    write_image(shot.image_path("aligned", b), moved, dtype="uint8")
    dx, dy = bench.face_shift(Shot.open(root), a, b)
    assert abs(dx - 2.0) < 0.3 and abs(dy - 1.0) < 0.3
    kinds = bench.pairs_of(shot)
    assert set(kinds) == {"blinks", "glances", "calm"} and all(
        ref in shot.frames and event in shot.frames for pairs in kinds.values() for ref, event in pairs)
