"""Artist priors: validation with JSON paths, round trip, auto proposal (incl. blinks) and `vqedit prior`."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from test_edits_ops import (
    BG,
    BROW,
    FOREHEAD,
    HAIR,
    IRIS,
    LID,
    LLIP,
    LTEETH,
    MOUTH,
    NOSE,
    PUPIL,
    SKIN,
    TONGUE,
    ULIP,
    UTEETH,
    WHITE,
    synthetic_face,
)

from vq_models.cli import main
from vq_models.edits import Prior, load_prior, propose_prior, save_prior, validate_prior
from vq_models.errors import InputError

COLOURS = {BG: (0.2, 0.5, 0.2), SKIN: (0.8, 0.6, 0.5), FOREHEAD: (0.82, 0.62, 0.52), BROW: (0.2, 0.15, 0.1),
           LID: (0.7, 0.5, 0.45), WHITE: (0.9, 0.9, 0.88), IRIS: (0.3, 0.4, 0.6), PUPIL: (0.04, 0.04, 0.05),
           NOSE: (0.75, 0.55, 0.45), ULIP: (0.7, 0.3, 0.3), LLIP: (0.72, 0.32, 0.3), MOUTH: (0.15, 0.05, 0.05),
           UTEETH: (0.95, 0.95, 0.9), LTEETH: (0.93, 0.93, 0.88), TONGUE: (0.8, 0.3, 0.3), HAIR: (0.1, 0.08, 0.05)}


def ellipse_poly(c, axes) -> np.ndarray:
    return cv2.ellipse2Poly(c, axes, 0, 0, 360, 10).astype(np.float64)


CONTOURS = {
    "face_oval": ellipse_poly((32, 34), (24, 28)),
    "left_eye": ellipse_poly((20, 26), (6, 3)), "right_eye": ellipse_poly((44, 26), (6, 3)),
    "left_brow": ellipse_poly((20, 17), (7, 3)), "right_brow": ellipse_poly((44, 17), (7, 3)),
    "nose": ellipse_poly((32, 36), (4, 6)),
    "lips_outer": ellipse_poly((32, 50), (11, 7)), "lips_inner": ellipse_poly((32, 50), (9, 3)),
}


def frames(n_open=5, blink=True):
    """Label maps, images and region masks; one frame blinks (eyes all lid), one has the mouth closed."""
    from vq_models.edits.geometry import rasterize_polygon

    regions = {k: rasterize_polygon(v, (64, 64)) for k, v in CONTOURS.items()}
    labs = [synthetic_face() for _ in range(n_open)]
    if blink:
        lab = synthetic_face()
        eye = regions["left_eye"] | regions["right_eye"]
        lab[np.isin(lab, [WHITE, IRIS, PUPIL]) | (eye & (lab == LID))] = LID
        labs.append(lab)
    rng = np.random.default_rng(0)
    imgs = []
    for lab in labs:
        table = np.zeros((20, 3), np.float32)
        for code, rgb in COLOURS.items():
            table[code] = rgb
        imgs.append(np.clip(table[lab] + 0.02 * rng.standard_normal((64, 64, 3)), 0, 1).astype(np.float32))
    return labs, imgs, [regions] * len(labs)


def test_validation_errors_name_the_json_path():
    good = {"version": 1, "num_codes": 16, "segments": {"pupils": [7], "eye_whites": [5, 6]}}
    assert validate_prior(good).segments == {"pupils": [7], "eye_whites": [5, 6]}
    cases = [
        ({**good, "segments": {"pupils": [7], "irises": [7]}}, r'segments\["irises"\]\[0\]: code 7 is already in segment .pupils.'),
        ({**good, "segments": {"pupils": [7, 7]}}, r'segments\["pupils"\]\[1\]: code 7 is listed twice'),
        ({**good, "segments": {"pupils": [16]}}, r'segments\["pupils"\]\[0\]: unknown code 16 \(codes are 0\.\.15\)'),
        ({**good, "segments": {"pupils": []}}, r'segments\["pupils"\]: empty segment'),
        ({**good, "segments": {"pupils": ["7"]}}, r'segments\["pupils"\]\[0\]: expected an integer code'),
        ({**good, "segments": {"Pupils": [7]}}, r'segments\["Pupils"\]: segment names are lower-case'),
        ({**good, "num_codes": 300}, r"num_codes: expected an integer in 1\.\.256"),
        ({**good, "version": 3}, r"version: expected 1"),
        ({**good, "extra": 1}, r"extra: unknown field"),
        ({**good, "segments": [1]}, r"segments: expected an object"),
    ]
    for obj, pattern in cases:
        with pytest.raises(InputError, match=r"^prior: " + pattern):
            validate_prior(obj)


def test_save_load_round_trip_and_file_errors(tmp_path):
    prior = Prior(16, {"skin": [1, 2], "pupils": [7]})
    path = tmp_path / "prior.json"
    save_prior(prior, path)
    assert load_prior(path) == prior
    path.write_text('{"version": 1, "num_codes": 16, "segments": {"skin": [1], "nose": [1]}}')
    with pytest.raises(InputError, match=r'prior\.json: segments\["nose"\]\[0\]: code 1 is already in segment'):
        load_prior(path)
    path.write_text("{oops")
    with pytest.raises(InputError, match=r"prior\.json: invalid JSON"):
        load_prior(path)
    with pytest.raises(InputError, match="vqedit prior SHOT --auto"):
        load_prior(tmp_path / "none.json")
    with pytest.raises(InputError):
        save_prior(Prior(4, {"skin": [9]}), tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_part_table_maps_every_label_to_its_segment():
    prior = Prior(16, {"skin": [1, 2], "pupils": [7]})
    table = prior.part_table()
    labels = np.array([[1, 2, 7], [0, 15, 7]], np.uint8)
    assert table[labels].tolist() == [[0, 0, 1], [-1, -1, 1]]
    assert table[np.array([255], np.uint8)].tolist() == [-1]  # any uint8 label indexes it
    assert prior.part_table(leave_out=("pupils",))[labels].tolist() == [[0, 0, -1], [-1, -1, -1]]


def test_propose_prior_finds_pupils_teeth_and_survives_blinks():
    labs, imgs, regions = frames()
    prior = propose_prior(labs, imgs, regions, 20)
    s = prior.segments
    assert s["pupils"] == [PUPIL]
    assert s["irises"] == [IRIS] and s["eye_whites"] == [WHITE]
    assert s["upper_teeth"] == [UTEETH] and s["lower_teeth"] == [LTEETH]
    assert s["tongue"] == [TONGUE] and s["mouth_interior"] == [MOUTH]
    assert s["upper_lip"] == [ULIP] and s["lower_lip"] == [LLIP]
    assert s["brows"] == [BROW] and s["nose"] == [NOSE] and s["eyelids"] == [LID]
    assert sorted(s["skin"]) == [SKIN, FOREHEAD] and BG in s["background"]
    # a shot that blinks in every frame but one still finds the eye codes
    labs2, imgs2, regions2 = frames(n_open=1)
    labs2 += [labs2[-1]] * 3
    imgs2 += [imgs2[-1]] * 3
    assert propose_prior(labs2, imgs2, [regions2[0]] * len(labs2), 20).segments["pupils"] == [PUPIL]


def test_propose_prior_gives_the_pupil_its_several_dark_codes_and_not_the_iris():
    """A pupil split over two codes (its core and a slightly lit part) and an iris over three: both dark
    codes are pupils, darkest first (the teeth fill takes a segment's first code), the iris codes stay irises."""
    labs, imgs, regions = frames(blink=False)
    for lab, img in zip(labs, imgs, strict=True):
        ys, xs = np.nonzero(lab == PUPIL)
        lit = xs > np.median(xs)
        lab[ys[lit], xs[lit]] = 16
        img[ys[lit], xs[lit]] = (0.09, 0.09, 0.1)
        ys, xs = np.nonzero(lab == IRIS)
        for code, shade, part in ((17, (0.26, 0.36, 0.55), xs % 3 == 1), (18, (0.34, 0.44, 0.64), xs % 3 == 2)):
            lab[ys[part], xs[part]] = code
            img[ys[part], xs[part]] = shade
    s = propose_prior(labs, imgs, regions, 20).segments
    assert s["pupils"] == [PUPIL, 16]
    assert sorted(s["irises"]) == [IRIS, 17, 18] and s["eye_whites"] == [WHITE]


def _write_shot(root, labs, imgs):
    """A 64² shot of ``labs`` / ``imgs`` with Stage I labels and tracked contours (plate = crop + (10, 5))."""
    from vq_models.io.images import write_label_map
    from vq_models.shot import CropTransform, ShotWriter
    from vq_models.tracking.schema import FrameTrack, Tracking, save_tracking

    writer = ShotWriter(root, 64, {"source": "synthetic"})
    tf = CropTransform.from_plate_to_crop(np.array([[1.0, 0, -10.0], [0, 1.0, -5.0]]))
    ones = np.ones((64, 64), np.float32)
    track = {}
    for i, (lab, img) in enumerate(zip(labs, imgs, strict=True)):
        writer.write_frame(1001 + i, img, img, ones, ones, tf)
        write_label_map(root / "stage1" / "labels" / f"frame.{1001 + i:04d}.png", lab)
        track[1001 + i] = FrameTrack(np.zeros((5, 2)), {k: v + [10, 5] for k, v in CONTOURS.items()})
    writer.finish()
    save_tracking(Tracking((84, 69), track), root / "tracking.json")
    (root / "stage1" / "meta.json").write_text(json.dumps({"num_codes": 20}))


def test_vqedit_prior_auto_check_show(tmp_path, capsys):
    labs, imgs, _ = frames(n_open=3)
    root = tmp_path / "shot"
    _write_shot(root, labs, imgs)

    assert main(["prior", str(root), "--auto"]) == 0
    assert load_prior(root / "prior.json").segments["pupils"] == [PUPIL]
    preview = cv2.imread(str(root / "prior_preview.png"))
    assert preview.shape == (64, 128, 3) and not np.array_equal(preview[:, :64], preview[:, 64:])
    assert main(["prior", str(root), "--auto"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["prior", str(root), "--check"]) == 0
    assert "ok (" in capsys.readouterr().out
    assert main(["prior", str(root), "--show"]) == 0
    assert json.loads(capsys.readouterr().out)["segments"]["pupils"] == [PUPIL]
    (root / "stage1" / "meta.json").write_text(json.dumps({"num_codes": 32}))
    assert main(["prior", str(root), "--check"]) == 2
    assert "Stage I model has 32 codes" in capsys.readouterr().err


def test_usable_ops_probes_several_frames_so_a_closed_mouth_frame_does_not_hide_the_teeth(tmp_path):
    from vq_models.evaluation.programs import probe_frames, usable_ops

    labs, imgs, regions = frames(blink=False)
    prior = propose_prior(labs, imgs, regions, 20)
    middle = len(labs) // 2
    labs[middle][np.isin(labs[middle], (UTEETH, LTEETH))] = MOUTH  # this frame shows no teeth
    root = tmp_path / "shot"
    _write_shot(root, labs, imgs)
    shot_frames = [1001 + i for i in range(len(labs))]
    alone = usable_ops(root, prior, shot_frames[middle])
    assert alone["teeth"] == f"teeth: changes no pixel on frame(s) {shot_frames[middle]}"
    probe = probe_frames(shot_frames)
    assert probe[0] == shot_frames[middle] and len(set(probe)) == len(probe) and set(probe) <= set(shot_frames)
    assert usable_ops(root, prior, probe)["teeth"] == "ok"


def _shade(labs, imgs, shaded, seed):
    """Paint each code of ``shaded`` (code -> display RGB) into the frames, with a little noise."""
    rng = np.random.default_rng(seed)
    for lab, img in zip(labs, imgs, strict=True):
        for code, rgb in shaded.items():
            m = lab == code
            img[m] = np.clip(np.asarray(rgb) + 0.02 * rng.standard_normal((int(m.sum()), 3)), 0, 1)


def test_dim_neutral_mouth_codes_are_teeth_and_a_lone_red_code_is_the_interior():
    """Teeth in the lips' shadow are dim but not red; with no other interior code, a red one is the interior
    (an open mouth always has one, a tongue only sometimes). Both were misfiled before, and a teeth-removal
    edit then left teeth in place or filled the mouth with tongue."""
    labs, imgs, regions = frames(blink=False)
    shaded = {UTEETH: (0.95, 0.95, 0.9), LTEETH: (0.55, 0.53, 0.50), MOUTH: (0.46, 0.30, 0.28)}
    for lab in labs:
        lab[lab == TONGUE] = MOUTH
    _shade(labs, imgs, shaded, seed=1)
    s = propose_prior(labs, imgs, regions, 20).segments
    assert s["upper_teeth"] == [UTEETH] and s["lower_teeth"] == [LTEETH]
    assert s["mouth_interior"] == [MOUTH] and "tongue" not in s


def test_straddling_mouth_code_is_teeth_and_the_dark_red_cavity_is_not_tongue():
    """A code that covers teeth and some cavity (mid luma, barely red) goes with the teeth, so a teeth-removal
    edit removes it; the darkest red code is the cavity even below the mouth centre, and a lit pink code there
    is the tongue. Measured on the demo shot: the cavity code was filed as tongue and two straddling codes as
    interior, so the edit filled the hole with a teeth-coloured code (no-teeth 16.1 dB, 18.8 dB after)."""
    labs, imgs, regions = frames(blink=False)
    shaded = {UTEETH: (0.82, 0.79, 0.72), LTEETH: (0.48, 0.38, 0.35), MOUTH: (0.37, 0.17, 0.16),
              TONGUE: (0.75, 0.45, 0.47)}
    _shade(labs, imgs, shaded, seed=2)
    s = propose_prior(labs, imgs, regions, 20).segments
    assert UTEETH in s["upper_teeth"] + s["lower_teeth"] and LTEETH in s["upper_teeth"] + s["lower_teeth"]
    assert s["mouth_interior"] == [MOUTH]
    assert s.get("tongue") == [TONGUE]


def test_weak_red_contrast_does_not_decide_teeth():
    """On real footage the cavity is barely redder than the teeth (lp_d0: 0.04 redness against 0.6 luma), and
    counting redness twice filed a lit teeth code (slightly pink from the lips) under the interior, so
    ``teeth 0`` left it in place. With little colour contrast, brightness decides; a red lit tongue stays."""
    labs, imgs, regions = frames(blink=False)
    shaded = {UTEETH: (0.72, 0.635, 0.60), LTEETH: (0.70, 0.575, 0.55), MOUTH: (0.16, 0.034, 0.03),
              TONGUE: (0.60, 0.38, 0.36)}
    _shade(labs, imgs, shaded, seed=3)
    s = propose_prior(labs, imgs, regions, 20).segments
    assert s["upper_teeth"] == [UTEETH] and s["lower_teeth"] == [LTEETH]
    assert s["mouth_interior"] == [MOUTH]
    assert s.get("tongue") == [TONGUE]
