"""Plate-resolution measures and the real-footage what-ifs, on hand-made data and on the real tiny shot."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from vq_models.cli import main
from vq_models.edits.exemplars import MOUTH, REGION_GROW_CHOICES
from vq_models.evaluation.plate import (
    _box_sharpness,
    blink_whatif,
    jaw_whatif,
    laplacian_energy,
    openness,
    plate_metrics,
    squint_whatif,
    teeth_left,
    tooth_like_pixels,
)
from vq_models.events import JAW_MIN_OPEN, JAW_RATIO, MAX_JAW_RATIO, find_events, gaze_events, ratio_events
from vq_models.runtime import ShotModel


def test_find_events_pairs_each_dip_with_the_open_frame_before_it():
    v = np.array([1.0, 1.0, 1.0, 0.9, 0.2, 0.1, 0.3, 1.0, 1.0, 0.1, 1.0, np.nan, 0.1])
    # the run 4-6 has its minimum at 5 and frame 1 is open; the dips at 9 and 12 have no open frame 3 before
    assert find_events(v, 0.5, 0.8, gap=3) == [(1, 5)]
    assert find_events(v, 0.5, 0.8, gap=1) == [(3, 5), (8, 9)]  # NaN (lost tracking) is never a reference
    assert find_events(v, 0.5, 0.8, gap=2, before=False) == [(8, 5)]
    assert find_events(v, 0.5, 0.8, gap=20) == []


def test_ratio_events_take_the_largest_changes_apart_from_each_other():
    v = np.array([0.1, 0.1, 0.3, 0.1, 0.5, 0.1, 0.16, np.nan, 0.05, 0.2, 0.1, 0.2, 0.6])
    # openings by gap 1: 1→2 3x, 5→6 1.6x, 10→11 2x, 11→12 3x; 3→4 (5x) is beyond MAX_JAW_RATIO, 8→9 starts
    # too closed, lost tracking (NaN) is never a pair; 10→11 lies within two frames of 11→12, the larger
    def opening(gap, most=8):
        return ratio_events(v, gap, JAW_RATIO, MAX_JAW_RATIO, JAW_MIN_OPEN, most)

    assert opening(1) == [(1, 2), (5, 6), (11, 12)]
    assert opening(1, most=2) == [(1, 2), (11, 12)]
    assert opening(20) == []
    # closing by half or more: 2→3, 4→5 (0.2x), 9→10 (0.5x), 8 starts below the floor
    assert ratio_events(v, 1, 0.1, 0.6, 0.08) == [(2, 3), (4, 5), (9, 10)]


def test_gaze_events_are_sideways_moves_of_open_eyes():
    moves = np.array([0.0, 0.0, 0.1, 0.1, 0.1, -0.05, -0.05, 0.0, 0.2, np.nan, 0.0])
    opening = np.array([0.3, 0.3, 0.3, 0.3, 0.1, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3])
    # 1→2 moves 0.1; 3→4 a blink (the opening falls); 4→5 from the blink; 7→8 0.2; 8→9 lost tracking
    assert gaze_events(moves, opening, gap=1) == [(1, 2), (7, 8)]
    assert gaze_events(moves, opening, gap=1, most=1) == [(7, 8)]
    # by 2: 6→8 moves most; 8→10 and 3→5 lie within four frames of it, 1→3 and 0→2 tie and 0→2 is too near 1→3
    assert gaze_events(moves, opening, gap=2) == [(1, 3), (6, 8)]


def test_laplacian_energy_tells_sharp_from_soft():
    rng = np.random.default_rng(0)
    sharp = rng.random((64, 64, 3)).astype(np.float32)
    soft = cv2.GaussianBlur(sharp, (0, 0), 2.0)
    mask = np.ones((64, 64), bool)
    assert laplacian_energy(soft, mask) < 0.3 * laplacian_energy(sharp, mask)
    assert np.isnan(laplacian_energy(sharp, np.zeros((64, 64), bool)))
    assert laplacian_energy(sharp) == laplacian_energy(sharp, mask)  # no mask: the whole image


def _shot_with_prior(tiny_shot, tmp_path, segments: dict) -> tuple:
    """A private copy of the tiny shot and its model with an artist prior naming ``segments`` (the tiny auto
    prior names no eye or mouth parts; every code is a candidate)."""
    shot = tmp_path / "shot"
    shutil.copytree(tiny_shot, shot)
    m = ShotModel.load(shot)
    m.set_prior({"version": 1, "num_codes": m.num_codes, "segments": segments})
    return shot, m


@pytest.fixture(scope="module")
def model(tiny_shot) -> ShotModel:
    return ShotModel.load(tiny_shot)


def test_plate_detail_scores_closer_to_the_plate_than_the_bare_render(model):
    frames = model.frames[2:6]
    detailed = plate_metrics(model, frames, detail="plate", lpips=False)
    bare = plate_metrics(model, frames, detail="none", lpips=False)
    assert detailed["detail"] == "plate" and bare["detail"] == "none"
    assert detailed["ssim"] > bare["ssim"]
    assert abs(detailed["sharpness"] - 1.0) < abs(bare["sharpness"] - 1.0)
    assert detailed["flicker"] is not None and detailed["flicker"] >= 0
    assert len(detailed["per_frame"]) == 4


def test_eval_plate_cli_writes_the_report(tiny_shot, tmp_path, capsys):
    out = tmp_path / "plate.json"
    assert main(["eval", str(tiny_shot), "--plate", "--frames", "1003-1005", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["plate"]["frames"] == [1003, 1004, 1005]
    assert report["plate"]["perceptual_backend"] in ("lpips-alex", "fallback:ms-ssim+grad")
    assert 0 < report["plate"]["ssim"] <= 1
    assert "sharpness" in capsys.readouterr().out
    assert main(["eval", str(tiny_shot)]) == 2  # neither --pred nor a shot measure: a clear error, no traceback


def test_blink_whatif_on_a_shot_that_blinks(tiny_shot, tmp_path):
    _, m = _shot_with_prior(tiny_shot, tmp_path, {
        "background": [0], "skin": [1, 2, 3], "eyelids": [4], "eye_whites": [5], "irises": [6], "pupils": [7]})
    result = blink_whatif(m, gap=2)
    assert result["count"] >= 1, result
    event = result["events"][0]
    assert np.isfinite(event["psnr_edit_db"]) and np.isfinite(event["psnr_plate_db"])
    assert event["gain_db"] == pytest.approx(event["psnr_edit_db"] - event["psnr_plate_db"])
    assert event["open_frame"] < event["event_frame"]
    assert event["region_grow"] in REGION_GROW_CHOICES  # fitted on the shot's other blinks, else the default
    # the yardstick: another real closed frame of the shot, never one within the left-out window
    if "another_blink_frame" in event:
        assert abs(event["another_blink_frame"] - event["event_frame"]) > 3
        assert event["another_gain_db"] == pytest.approx(event["another_blink_db"] - event["psnr_plate_db"])
        assert result["mean_another_gain_db"] is not None
    # the answer's own labels in the open frame's place: a real render, scored like the edit
    assert np.isfinite(event["answer_labels_db"])
    assert event["answer_labels_gain_db"] == pytest.approx(event["answer_labels_db"] - event["psnr_plate_db"])
    assert result["mean_answer_labels_gain_db"] == pytest.approx(
        np.mean([e["answer_labels_gain_db"] for e in result["events"]]))
    # beside the dB: SSIM in the same boxes and the sharpness against the real closed frame, with their means
    for key, mean in (("ssim_edit", "mean_ssim_edit"), ("ssim_plate", "mean_ssim_plate"),
                      ("sharpness", "mean_sharpness"), ("answer_labels_sharpness", "mean_answer_labels_sharpness")):
        assert result[mean] == pytest.approx(np.mean([e[key] for e in result["events"]]))
    assert -1 <= event["ssim_edit"] <= 1 and -1 <= event["ssim_plate"] <= 1
    assert event["ssim_edit"] != event["ssim_plate"]  # the edit changed the eyes the boxes hold
    assert event["sharpness"] > 0 and event["answer_labels_sharpness"] > 0


def test_whatif_sharpness_is_one_for_the_real_frame_and_lower_for_a_smear():
    rng = np.random.default_rng(3)
    real = rng.random((40, 60, 3)).astype(np.float32)
    boxes = [(0, 0, 30, 40), (30, 0, 60, 40)]
    assert _box_sharpness(real, real, boxes) == pytest.approx(1.0)
    smear = cv2.GaussianBlur(real, (0, 0), 1.5)
    assert _box_sharpness(smear, real, boxes) < 0.5
    half = real.copy()
    half[:, 30:] = smear[:, 30:]  # one box smeared: the mean of the two boxes' ratios
    assert _box_sharpness(half, real, boxes) == pytest.approx(
        (1.0 + _box_sharpness(smear[:, 30:], real[:, 30:], [(0, 0, 30, 40)])) / 2)


def test_jaw_whatif_renders_each_opening_at_its_own_ratio(tiny_shot, tmp_path, capsys):
    """The opening what-if on the tiny shot (its synthetic mouth opens and closes): each pair's earlier frame is
    rendered with mouth_open at the ratio the tracked opening grows by, scored against the later frame; the CLI
    writes it as ``jaw``."""
    shot, m = _shot_with_prior(tiny_shot, tmp_path, {
        "background": [0], "skin": [1, 2, 3], "upper_lip": [4], "lower_lip": [5], "mouth_interior": [6, 7]})
    o = openness(m)["mouth"]
    result = jaw_whatif(m, gap=2, pull=True)
    assert result["count"] >= 1, o
    for event in result["events"]:
        ref, later = m.frames.index(event["open_frame"]), m.frames.index(event["event_frame"])
        (edit,) = event["program"]["edits"]
        assert later - ref == 2 and edit == {"op": "mouth_open", "value": pytest.approx(o[later] / o[ref], abs=1e-3),
                                             "pull": True}
        assert event["gain_db"] == pytest.approx(event["psnr_edit_db"] - event["psnr_plate_db"])
    out = tmp_path / "jaw.json"
    assert main(["eval", str(shot), "--jaw", "--gap", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())["jaw"]
    assert report["count"] == result["count"] and report["pull"] is None
    assert "mean_gain_db" in capsys.readouterr().out


def test_a_borrowed_opening_is_the_mouth_of_a_frame_of_the_shot_that_opens_that_wide(tiny_shot, tmp_path, capsys):
    """The model tracks the mouth for the exemplars (the tiny shot's opening as eval measures it); mouth_open
    with ``borrow`` takes the labels of the frame that opens as wide, never a left-out one, and the opening
    what-if asks for it with ``--borrow``."""
    shot, m = _shot_with_prior(tiny_shot, tmp_path, {
        "background": [0], "skin": [1, 2, 3], "upper_lip": [4], "lower_lip": [5], "mouth_interior": [6, 7]})
    o = openness(m)["mouth"]
    tracked = m.exemplars.openings()[MOUTH]
    np.testing.assert_allclose(tracked, o, rtol=1e-6)  # the same opening in label pixels as in the crop
    f = m.frames[int(np.nanargmin(o))]
    value = float(np.nanmax(o) / o[m.frames.index(f)])
    donor = m.exemplars.opening_donor(f, MOUTH, value)
    assert donor is not None and donor != f
    program = {"version": 1, "edits": [{"op": "mouth_open", "value": value, "borrow": True}]}
    labels, changed = m.edited_labels(f, program)
    np.testing.assert_array_equal(labels, m.exemplars.transplant(m.label_map(f), f, MOUTH, donor, grow=0.0))
    assert changed.any()
    elsewhere, _ = m.edited_labels(f, program, exclude={donor})
    second = m.exemplars.opening_donor(f, MOUTH, value, exclude={donor})
    rule, _ = m.edited_labels(f, {"version": 1, "edits": [{"op": "mouth_open", "value": value}]})
    np.testing.assert_array_equal(elsewhere, rule if second is None else
                                  m.exemplars.transplant(m.label_map(f), f, MOUTH, second, grow=0.0))
    result = jaw_whatif(m, gap=2, borrow=True)
    assert result["count"] >= 1 and result["borrow"] is True
    assert all(e["program"]["edits"][0]["borrow"] is True for e in result["events"])
    out = tmp_path / "jaw.json"
    assert main(["eval", str(shot), "--jaw", "--borrow", "--gap", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())["jaw"]
    assert report["borrow"] is True and report["mean_gain_db"] == pytest.approx(result["mean_gain_db"])


def test_squint_whatif_renders_each_eye_at_its_own_share(tiny_shot, tmp_path, capsys):
    """The half-closed-eye what-if on the tiny shot (it blinks): the open frame rendered with each eye's eye_open
    at the share its opening falls to, scored against the later frame; the CLI writes it as ``squint``."""
    shot, m = _shot_with_prior(tiny_shot, tmp_path, {
        "background": [0], "skin": [1, 2, 3], "eyelids": [4], "eye_whites": [5], "irises": [6], "pupils": [7]})
    o = openness(m)
    result = squint_whatif(m, gap=1, pull=True)
    assert result["count"] >= 1, o
    for event in result["events"]:
        ref, later = m.frames.index(event["open_frame"]), m.frames.index(event["event_frame"])
        left, right = event["program"]["edits"]
        for edit, side, eye in ((left, "left", "left_eye"), (right, "right", "right_eye")):
            share = min(1.0, o[eye][later] / o[eye][ref])
            assert edit == {"op": "eye_open", "eye": side, "value": pytest.approx(share, abs=1e-3), "pull": True}
        assert 0.3 <= np.mean([o["left_eye"][later], o["right_eye"][later]]) / np.mean(
            [o["left_eye"][ref], o["right_eye"][ref]]) <= 0.85
    out = tmp_path / "squint.json"
    assert main(["eval", str(shot), "--squint", "--gap", "1", "--pull", "off", "--json", str(out)]) == 0
    report = json.loads(out.read_text())["squint"]
    assert report["count"] == result["count"] and report["pull"] is False
    assert all(e["pull"] is False for row in report["events"] for e in row["program"]["edits"])


def test_gaze_whatif_moves_each_iris_as_far_as_the_shot_does(tiny_shot, tmp_path):
    """The glance what-if on the tiny shot (its gaze drifts): each pair's earlier frame rendered with each eye's
    gaze at the tracked move of its iris, scored against the later frame."""
    from vq_models.evaluation.plate import gaze_offsets, gaze_whatif

    _, m = _shot_with_prior(tiny_shot, tmp_path, {
        "background": [0], "skin": [1, 2, 3], "eyelids": [4], "eye_whites": [5], "irises": [6], "pupils": [7]})
    offsets = gaze_offsets(m)
    result = gaze_whatif(m, gap=2)
    assert result["count"] >= 1
    for event in result["events"]:
        ref, later = m.frames.index(event["open_frame"]), m.frames.index(event["event_frame"])
        for edit in event["program"]["edits"]:
            move = offsets[edit["eye"]][later] - offsets[edit["eye"]][ref]
            assert edit["op"] == "gaze" and edit["value"] == pytest.approx(list(move), abs=1e-3)
        assert abs(np.mean([e["value"][0] for e in event["program"]["edits"]])) >= 0.06
        assert np.isfinite(event["gain_db"])
        assert not any("borrow" in e for e in event["program"]["edits"])
    borrowed = gaze_whatif(m, gap=2, borrow=True)
    assert borrowed["borrow"] and [e["open_frame"] for e in borrowed["events"]] == [
        e["open_frame"] for e in result["events"]]
    assert all(edit["borrow"] for e in borrowed["events"] for edit in e["program"]["edits"])
    assert all(np.isfinite(e["gain_db"]) for e in borrowed["events"])


def test_tooth_like_pixels_are_brighter_and_greyer_than_the_lips_around_them():
    """How ``teeth_left`` finds the frames showing teeth, codes unseen: between the inner lips, what is
    brighter and less saturated than the lips' median. A tongue as bright as the teeth is as pink as the lips,
    the cavity darker; without lips to compare with nothing counts."""
    crop = np.zeros((20, 30, 3), np.float32) + (0.75, 0.50, 0.48)  # pink lips everywhere
    outer = np.zeros((20, 30), bool)
    outer[4:16, 3:27] = True
    inner = np.zeros_like(outer)
    inner[8:12, 6:24] = True
    crop[8:12, 6:12] = (0.85, 0.83, 0.78)  # teeth
    crop[8:12, 12:18] = (0.90, 0.55, 0.55)  # a bright pink tongue
    crop[8:12, 18:24] = (0.20, 0.06, 0.06)  # the cavity
    expected = np.zeros_like(inner)
    expected[8:12, 6:12] = True
    np.testing.assert_array_equal(tooth_like_pixels(crop, inner, outer), expected)
    assert not tooth_like_pixels(crop, inner, inner).any()
    # an edit's composite is judged by the plate's lips: lips drawn darker in it do not make its cavity a tooth
    comp = crop.copy()
    comp[outer & ~inner] = (0.30, 0.02, 0.02)
    assert tooth_like_pixels(comp, inner, outer)[8:12, 18:24].all()
    np.testing.assert_array_equal(tooth_like_pixels(comp, inner, outer, lips_from=crop), expected)


def test_teeth_left_is_what_teeth_0_leaves_of_the_plates_teeth(tiny_shot, tmp_path, capsys):
    """Nothing removed (teeth 1) leaves every tooth-bright pixel, teeth 0.5 about half and teeth 0 fewer still on
    the synthetic shot (its code 1 is the teeth between the inner lips); the report names each frame, ``vqedit
    eval --teeth-left`` writes it, and a prior without the segments the op needs says so instead."""
    unnamed = teeth_left(ShotModel.load(tiny_shot), frames=4)  # the tiny auto prior names no mouth interior
    assert unnamed["count"] == 0 and "mouth_interior" in unnamed["unavailable"]
    shot, model = _shot_with_prior(tiny_shot, tmp_path, {
        "background": [0], "skin": [2, 3, 4, 6, 7], "mouth_interior": [5], "upper_teeth": [1]})
    kept, half, gone = (teeth_left(model, frames=4, value=v) for v in (1.0, 0.5, 0.0))
    assert kept["count"] >= 1 and kept["mean_left"] == pytest.approx(1.0)
    assert kept["count"] <= min(4, kept["showing_teeth"]) <= len(model.frames)
    # teeth 1 changes no label on any frame showing teeth; teeth 0 finds teeth on those it measured
    assert len(kept["untouched"]) == kept["showing_teeth"]
    assert not {r["frame"] for r in gone["events"]} & set(gone["untouched"])
    assert [r["frame"] for r in gone["events"]] == [r["frame"] for r in kept["events"]]
    assert gone["mean_left"] < half["mean_left"] < 0.8 and gone["max_left"] >= gone["mean_left"]
    # the tooth-like share beside it: all kept at teeth 1, fewer at 0
    assert kept["mean_tooth_like_left"] == pytest.approx(1.0)
    assert gone["mean_tooth_like_left"] < 0.8 and gone["max_tooth_like_left"] >= gone["mean_tooth_like_left"]
    out = tmp_path / "teeth.json"
    assert main(["eval", str(shot), "--teeth-left", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["teeth_left"]["count"] >= 1 and "mean_left" in capsys.readouterr().out


@pytest.mark.clips
def test_real_clip_demo_end_to_end(clips_dir, tmp_path, capsys):
    """`vqedit demo --clip` on a few real frames at the tiny preset: every step runs, the report and the
    plate-resolution contact sheet are written, and the detail pass scores sharper than the bare paste."""
    out = tmp_path / "demo"
    rc = main(["demo", "--clip", str(clips_dir / "lp_d0.mp4"), "--frames", "60-71", "--quick", "--out", str(out),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "fr/s" not in err and "it/s" not in err  # --no-progress reaches prep's and training's bars
    report = json.loads((out / "metrics.json").read_text())
    assert set(report["timings_s"]) == {"prep", "stage1", "prior", "stage2"}
    assert report["plate_detail"]["sharpness"] > report["plate_bare"]["sharpness"]
    assert report["plate_detail"]["ssim"] > report["plate_bare"]["ssim"]
    assert {"blinks", "squint", "gaze", "mouth", "jaw", "teeth_left"} <= set(report)
    sheet = cv2.imread(str(out / "contact_sheet_plate.png"))
    assert sheet is not None and sheet.shape[0] > 200
    # run again on the trained shot: it is reused, and the report keeps what its training took, not zeros
    assert main(["demo", "--clip", str(clips_dir / "lp_d0.mp4"), "--frames", "60-71", "--quick", "--out", str(out),
                 "--no-progress"]) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert again["timings_s"] == report["timings_s"] and again["timings_s"]["stage1"] > 0
