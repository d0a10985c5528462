"""Acceptance measurements (vq_models.evaluation) on the real tiny trained shot: the in-process node
matches the runtime's composite, locality counts are exact, what-if PSNRs come out of real renders, and
the contact-sheet helpers write a real PNG."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vq_models.evaluation import (
    InProcessNode,
    locality,
    measure_edits,
    reconstruction,
    sheet_row,
    write_sheet,
    zoom_box,
)
from vq_models.io.images import read_image
from vq_models.runtime import ShotModel

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model(tiny_shot):
    return ShotModel.load(tiny_shot)


def _paint_program(model) -> dict:
    """Paint skin over a box around the face centre in crop space on every frame (needs only ``skin``)."""
    L = model.label_size
    a, b = L * 0.35, L * 0.55
    return {"version": 1, "edits": [{"op": "paint", "segment": "skin", "space": "crop", "value": 1,
                                     "polygon": [[a, a], [b, a], [b, b], [a, b]]}]}


def test_in_process_node_is_the_runtime_composite(model, tiny_shot):
    if "skin" not in model.prior().segments:
        pytest.skip("the tiny auto prior found no skin segment")
    program = _paint_program(model)
    f = model.frames[3]
    plate = read_image(tiny_shot.parent / "synth" / "plate" / f"frame.{f:04d}.exr")
    res = next(InProcessNode(model, program, feather=2.0).evaluate_many([f], [plate]))
    direct = model.render_frame(f, program, feather=2.0, mode="edit-only")
    assert np.array_equal(res.image, direct.composite(plate).pixels)
    assert np.array_equal(res.alpha, direct.alpha)
    assert res.alpha.max() > 0  # the paint changed something, so the composite is not the plate
    assert not np.array_equal(res.image[..., :3], plate.pixels[..., :3])


def test_locality_counts_plate_pixels_outside_the_alpha(model, tiny_shot):
    if "skin" not in model.prior().segments:
        pytest.skip("the tiny auto prior found no skin segment")
    frames = model.frames[:3]
    pattern = str(tiny_shot.parent / "synth" / "plate" / "frame.%04d.exr")
    loc = locality(model, _paint_program(model), frames, pattern, feather=2.0)
    plate = read_image(pattern % frames[0])
    h, w = plate.pixels.shape[:2]
    assert loc["pixels_outside_alpha"] + loc["pixels_inside_alpha"] == len(frames) * h * w
    assert loc["differing_pixels_outside_alpha"] == 0
    assert loc["pixels_inside_alpha"] > 0 and loc["frames_with_edits"]
    empty = locality(model, {"version": 1, "edits": []}, frames[:1], pattern)
    assert empty["pixels_inside_alpha"] == 0 and empty["frames_with_edits"] == []


def test_measure_edits_against_whatif_frames(model, tiny_shot):
    result = measure_edits(model, tiny_shot.parent / "synth", feather=2.0, max_frames=3)
    assert set(result["usable"]) >= {"eye_open", "teeth"}
    measured = {k: v for k, v in result.items() if isinstance(v, dict) and v.get("status") == "ok"}
    for name, r in measured.items():
        assert 1 <= len(r["frames"]) <= 3, name
        assert math.isfinite(r["psnr_plate_db"]) and r["psnr_plate_db"] > 5.0
        assert r["gain_db"] == pytest.approx(r["psnr_edit_db"] - r["psnr_plate_db"])
    if "skin" in model.prior().segments or result["usable"].get("eye_open") == "ok":
        # eye closure is always measurable on a shot with blinks and a skin (or eye) segment
        assert "eyes_closed" in measured
        assert measured["eyes_closed"]["psnr_edit_db"] != measured["eyes_closed"]["psnr_plate_db"]


def test_reconstruction_reads_stage2_meta():
    ok = reconstruction({"val": {"ssim": 0.96, "psnr": 31.0, "frames": [1010]}}, 0.95)
    low = reconstruction({"val": {"ssim": 0.90, "psnr": 25.0}}, 0.95)
    assert ok["within_bounds"] and not low["within_bounds"] and ok["frames"] == [1010]
    assert reconstruction({}, 0.95)["within_bounds"] is False


def test_zoom_box_and_sheet_png(tmp_path):
    box = zoom_box((10, 20, 30, 26), (64, 48), aspect=2.0)
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 48
    assert (x1 - x0) == pytest.approx(2 * (y1 - y0), abs=1)
    assert x0 <= 10 and x1 >= 30  # still holds the original box
    cells = [np.full((8, 16, 3), v, np.float32) for v in (0.0, 0.5, 1.0)]
    row = sheet_row(cells, height=24)
    assert row.shape == (24, 3 * 48 + 2 * 2, 3) and row.dtype == np.uint8
    assert row[0, 0, 0] == 0 and row[0, 50, 0] == 128 and row[0, -1, 0] == 255
    sheet = write_sheet(tmp_path / "sheet.png", [("a", row), ("b", row)], ("x", "y", "z"))
    back = read_image(tmp_path / "sheet.png")
    assert back.pixels.shape[:2] == sheet.shape[:2]
    assert sheet.shape[0] == 20 + 2 * (24 + 3)
