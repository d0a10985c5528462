"""Stage I end to end on a tiny drawn shot: `vqedit train --stage 1`, every output, labels for new frames,
plate-space labels, and resume equivalence."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from stage1_shot import CROP, OFFSET, PLATE_H, PLATE_W, draw_frame, make_shot  # noqa: E402

from vq_models.cli import main  # noqa: E402
from vq_models.io.images import read_label_map  # noqa: E402
from vq_models.train.checkpoint import load_weights  # noqa: E402

torch.set_num_threads(1)
K = 8  # tiny preset


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One tiny Stage I run through the CLI; label_size = crop size so plate warps are exact."""
    root = tmp_path_factory.mktemp("s1") / "shot"
    make_shot(root)
    rc = main(["train", str(root), "--stage", "1", "--preset", "tiny", "--iters", "4",
               "--set", f"label_size={CROP}", "--set", "checkpoint_every=2"])
    assert rc == 0
    return root


def test_train_writes_every_output(trained: Path):
    s1 = trained / "stage1"
    meta = json.loads((s1 / "meta.json").read_text())
    assert meta["backbone"] == "embedded" and meta["generator_trained"] is True
    assert meta["identity_loss"] is False and meta["perceptual_backend"]
    assert meta["num_codes"] == K and meta["label_size"] == CROP and meta["steps"] == 4
    assert meta["resolutions"] == [16, 32] and meta["frames"] == [1001, 1002, 1003, 1004]
    assert meta["code_dim"] == 16 + 16 + 2  # small generator: 16 channels at 16² and 32², and the region tap
    assert "train_seconds" in meta["timings"]
    assert "num_codes: 8" in (s1 / "config.yaml").read_text()
    weights = load_weights(s1 / "model.safetensors")
    assert "latent_avg" in weights and any(k.startswith("generator.") for k in weights)
    assert any(k.startswith("encoder.") for k in weights)
    book = load_weights(s1 / "codebook.safetensors")
    assert book["codebook"].shape == (K, meta["code_dim"]) and bool(book["initialized"])
    labels = [read_label_map(s1 / "labels" / f"frame.{f}.png") for f in meta["frames"]]
    for lab in labels:
        assert lab.shape == (CROP, CROP) and lab.dtype == np.uint8 and lab.max() < K
    # foreground codes are spread over several codes (the quantizer segments, not one blob)
    fg = draw_frame(0)["fg"] > 0.5
    assert len(np.unique(labels[0][fg])) >= 3
    assert sorted(p.name for p in (s1 / "checkpoints").iterdir()) == ["step_00000002", "step_00000004"]
    assert any((s1 / "tensorboard").glob("events.out.tfevents.*"))
    from vq_models.io.images import read_image

    preview = read_image(s1 / "preview.png").pixels
    assert preview.shape[1] == 4 * CROP and preview.std() > 0.05


def test_labels_from_new_image_match_training_labels(trained: Path):
    from vq_models.stage1_model import Stage1Model

    model = Stage1Model.load(trained / "stage1")
    assert model.num_codes == K and model.label_size == CROP
    # the same drawing at a different resolution is a frame the model never saw as such
    d = draw_frame(0, size=64)
    new = model.labels_from_image(d["overlay"], d["fg"], d["roi"])
    assert new.shape == (CROP, CROP) and new.dtype == np.uint8 and new.max() < K
    saved = model.label_map(1001)
    fg = draw_frame(0)["fg"] > 0.5
    agree = (new[fg] == saved[fg]).mean()
    assert agree > 0.7, agree
    # deterministic
    assert np.array_equal(new, model.labels_from_image(d["overlay"], d["fg"], d["roi"]))


def test_backbone_is_read_from_old_meta_files_that_called_it_prior(trained: Path, tmp_path: Path):
    """meta.json written before the rename said "prior": "embedded"; such models still load and report it."""
    from vq_models.stage1_model import Stage1Model

    old = tmp_path / "stage1"
    shutil.copytree(trained / "stage1", old)
    meta = json.loads((old / "meta.json").read_text())
    meta["prior"] = meta.pop("backbone")
    (old / "meta.json").write_text(json.dumps(meta))
    assert Stage1Model.load(old, load_networks=False).backbone == "embedded"
    assert Stage1Model.load(trained / "stage1", load_networks=False).backbone == "embedded"


def test_plate_space_labels_are_255_outside_the_crop(trained: Path, tmp_path: Path):
    out = tmp_path / "plate_labels"
    assert main(["labels", str(trained), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"frame.{f}.png" for f in (1001, 1002, 1003, 1004)]
    plate = read_label_map(out / "frame.1002.png")
    assert plate.shape == (PLATE_H, PLATE_W)
    x0, y0 = int(OFFSET[0]), int(OFFSET[1])
    inside = np.zeros(plate.shape, bool)
    inside[y0 : y0 + CROP, x0 : x0 + CROP] = True
    assert np.all(plate[~inside] == 255)
    crop = read_label_map(trained / "stage1" / "labels" / "frame.1002.png")
    assert np.array_equal(plate[inside].reshape(CROP, CROP), crop)  # scale 1: exact copy


def test_labels_command_reports_missing_model(tmp_path: Path, capsys):
    make_shot(tmp_path / "fresh", frames=(1,))
    assert main(["labels", str(tmp_path / "fresh"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no trained Stage I model" in err and len(err.splitlines()) == 1


def test_unknown_config_key_is_one_line_error(tmp_path: Path, capsys):
    make_shot(tmp_path / "s", frames=(1,))
    assert main(["train", str(tmp_path / "s"), "--stage", "1", "--preset", "tiny", "--set", "num_codez=3"]) == 2
    err = capsys.readouterr().err
    assert "num_codez" in err and len(err.strip().splitlines()) == 1


def test_resume_is_identical_to_a_straight_run(tmp_path: Path):
    from vq_models.config import load_config
    from vq_models.train.stage1 import STAGE1_PRESETS, train_stage1

    make_shot(tmp_path / "a", frames=(1, 2, 3))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    base = ["checkpoint_every=2", "vq_refine_epochs=0", "dead_code_threshold=150"]
    straight = load_config(STAGE1_PRESETS, "tiny", overrides=base + ["iterations=4"])
    half = load_config(STAGE1_PRESETS, "tiny", overrides=base + ["iterations=2"])
    train_stage1(tmp_path / "a", straight)
    train_stage1(tmp_path / "b", half)
    train_stage1(tmp_path / "b", straight, resume=True)
    for name in ("model.safetensors", "codebook.safetensors"):
        a = load_weights(tmp_path / "a" / "stage1" / name)
        b = load_weights(tmp_path / "b" / "stage1" / name)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}:{k} differs after resume"
    meta = json.loads((tmp_path / "b" / "stage1" / "meta.json").read_text())
    assert meta["steps"] == 4
    assert meta["vq_restarts_total"] > 0  # the high threshold forces random re-seeding: RNG state restored too
    # the run really moved: weights differ from the 2-step model's checkpoint
    first = load_weights(tmp_path / "b" / "stage1" / "checkpoints" / "step_00000002" / "modules.safetensors")
    final = load_weights(tmp_path / "b" / "stage1" / "model.safetensors")
    key = next(k for k in final if k.startswith("encoder."))
    assert not torch.equal(first[f"net.{key}"], final[key])


def test_resume_takes_the_new_learning_rates(tmp_path: Path):
    """Adam's load_state_dict brings the checkpoint's learning rates back; a resume with new ones must use them."""
    from vq_models.config import load_config
    from vq_models.train.stage1 import STAGE1_PRESETS, train_stage1

    make_shot(tmp_path / "shot", frames=(1, 2, 3))
    base = ["checkpoint_every=2", "vq_refine_epochs=0"]
    train_stage1(tmp_path / "shot", load_config(STAGE1_PRESETS, "tiny", overrides=base + ["iterations=2"]))
    changed = load_config(STAGE1_PRESETS, "tiny", overrides=base + [
        "iterations=4", "lr_encoder=3e-5", "lr_generator=4e-5", "lr_discriminator=5e-5"])
    train_stage1(tmp_path / "shot", changed, resume=True)
    saved = torch.load(tmp_path / "shot" / "stage1" / "checkpoints" / "step_00000004" / "optimizers.pt",
                       weights_only=True)
    assert saved["opt_g"]["param_groups"][0]["lr"] == 3e-5
    assert [g["lr"] for g in saved["opt_g"]["param_groups"][1:]] == [4e-5]  # the tiny preset trains its generator
    assert saved["opt_d"]["param_groups"][0]["lr"] == 5e-5


def test_flush_to_zero_is_off_again_after_training(tmp_path: Path):
    """Stage I turns flush-to-zero on while it trains; MediaPipe, later in the same process, fails under it."""
    from vq_models.config import load_config
    from vq_models.train.stage1 import STAGE1_PRESETS, train_stage1

    make_shot(tmp_path / "shot", frames=(1, 2))
    torch.set_flush_denormal(True)  # as a run leaves it
    train_stage1(tmp_path / "shot", load_config(STAGE1_PRESETS, "tiny", overrides=["iterations=1", "vq_refine_epochs=0"]))
    denormal = torch.tensor([1e-39], dtype=torch.float32)
    assert (denormal * 1.0).item() != 0.0  # a flushed run would read it as zero


def test_scale_weights_and_lloyd_refine_are_recorded_and_used_at_inference(trained: Path):
    from vq_models.stage1_model import Stage1Model

    meta = json.loads((trained / "stage1" / "meta.json").read_text())
    assert meta["vq_scale_weights"] == [1.0, 1.0]
    # equal say per tap: each instance-normalised map is scaled by sqrt(weight / channels)
    assert meta["vq_scale_multipliers"] == pytest.approx([(1 / 16) ** 0.5, (1 / 16) ** 0.5])
    assert 1 <= meta["vq_refine_lloyd_passes"] <= 3
    model = Stage1Model.load(trained / "stage1")
    assert model.net.vq_multipliers == pytest.approx(meta["vq_scale_multipliers"])
    d = draw_frame(1)
    x, _ = model.features(d["overlay"], d["fg"], d["roi"])
    # the 16² tap's block (first 16 channels) carries the multiplier: its fg RMS is ~0.25, not ~1
    fg = torch.from_numpy(d["fg"] > 0.5)
    rms = x[0, :16][:, fg].pow(2).mean().sqrt().item()
    assert 0.1 < rms < 0.4, rms


def test_rgb_tap_is_recorded_and_inference_labels_match_training(tmp_path: Path):
    """vq_rgb_weight > 0: X_VQ gains the generator's 3 RGB channels in training, in meta.json and at
    inference, so labels for a training frame computed again from its image equal the stored ones."""
    from vq_models.stage1_model import Stage1Model

    root = tmp_path / "shot"
    make_shot(root)
    assert main(["train", str(root), "--stage", "1", "--preset", "tiny", "--iters", "2", "--set", f"label_size={CROP}",
                 "--set", "vq_rgb_weight=4"]) == 0
    meta = json.loads((root / "stage1" / "meta.json").read_text())
    assert meta["code_dim"] == 16 + 16 + 3 + 2 and meta["vq_rgb_weight"] == 4.0
    assert meta["vq_rgb_multiplier"] == pytest.approx((4 / 3) ** 0.5)
    model = Stage1Model.load(root / "stage1")
    assert model.quantizer.dim == 37 and model.net.vq_rgb_multiplier == pytest.approx(meta["vq_rgb_multiplier"])
    d = draw_frame(0)
    x, _ = model.features(d["overlay"], d["fg"], d["roi"])
    fg = torch.from_numpy(d["fg"] > 0.5)
    rgb_energy = x[0, 32:][:, fg].pow(2).sum(0).mean().item()
    assert 0.5 < rgb_energy < 8.0, rgb_energy  # ~4 (its weight) on the foreground, not 0 and not unscaled
    from vq_models.shot import Shot

    shot = Shot.open(root)
    again = model.labels_from_image(shot.overlay(1001), shot.fg_mask(1001), shot.roi_mask(1001))
    agree = (again[fg.numpy()] == model.label_map(1001)[fg.numpy()]).mean()
    assert agree > 0.97, agree
    # a model whose meta says otherwise is refused with a clear error, not a shape crash later
    meta["vq_rgb_multiplier"] = 0.0
    (root / "stage1" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match="code_dim"):
        Stage1Model.load(root / "stage1")


def test_context_tap_is_recorded_and_validated(tmp_path: Path):
    """vq_context_weight > 0 adds the context colour's 3 channels in training and in meta.json; a bad sigma
    is refused before any training."""
    from vq_models.stage1_model import Stage1Model

    root = tmp_path / "shot"
    make_shot(root)
    assert main(["train", str(root), "--stage", "1", "--preset", "tiny", "--iters", "2", "--set", f"label_size={CROP}",
                 "--set", "vq_rgb_weight=4", "--set", "vq_context_weight=4", "--set", "vq_context_sigma=0.03"]) == 0
    meta = json.loads((root / "stage1" / "meta.json").read_text())
    assert meta["code_dim"] == 16 + 16 + 3 + 3 + 2 and meta["vq_context_sigma"] == 0.03
    model = Stage1Model.load(root / "stage1")
    d = draw_frame(0)
    x, _ = model.features(d["overlay"], d["fg"], d["roi"])
    fg = torch.from_numpy(d["fg"] > 0.5)
    context_energy = x[0, 35:][:, fg].pow(2).sum(0).mean().item()
    assert 0.5 < context_energy < 8.0, context_energy
    assert main(["train", str(tmp_path / "shot"), "--stage", "1", "--preset", "tiny", "--iters", "1",
                 "--set", "vq_context_sigma=0"]) == 2


def test_fresh_final_codebook_is_seeded_and_matches_inference(tmp_path: Path):
    """vq_refine_reinit: the final codebook is a fresh k-means of the final features (fit_codebook), the same
    for the same seed, and the stored labels are what the model assigns again at inference."""
    from vq_models.stage1_model import Stage1Model
    from vq_models.train.checkpoint import load_weights as lw

    books = []
    for run in ("a", "b"):
        root = tmp_path / run
        make_shot(root)
        assert main(["train", str(root), "--stage", "1", "--preset", "tiny", "--iters", "2", "--set", f"label_size={CROP}",
                     "--set", "vq_refine_reinit=true", "--set", "vq_refine_lloyd=3"]) == 0
        books.append(lw(root / "stage1" / "codebook.safetensors")["codebook"])
    assert torch.equal(books[0], books[1])
    meta = json.loads((tmp_path / "a" / "stage1" / "meta.json").read_text())
    assert 1 <= meta["vq_refine_lloyd_passes"] <= 3 and meta["config"]["vq_refine_reinit"] is True
    model = Stage1Model.load(tmp_path / "a" / "stage1")
    from vq_models.shot import Shot

    shot = Shot.open(tmp_path / "a")
    fg = draw_frame(0)["fg"] > 0.5
    again = model.labels_from_image(shot.overlay(1001), shot.fg_mask(1001), shot.roi_mask(1001))
    assert (again[fg] == model.label_map(1001)[fg]).mean() > 0.97


def test_bad_scale_weights_are_one_line_errors(tmp_path: Path, capsys):
    make_shot(tmp_path / "s", frames=(1,))
    assert main(["train", str(tmp_path / "s"), "--stage", "1", "--preset", "tiny", "--set",
                 "vq_scale_weights=[1, 2, 3]"]) == 2
    err = capsys.readouterr().err
    assert "vq_scale_weights" in err and len(err.strip().splitlines()) == 1


def test_region_tap_is_recorded_and_inference_needs_the_roi(trained: Path):
    """The tiny preset, like cpu, has the region tap on: meta.json records it, inference rebuilds X_VQ with
    the frame's ROI (a training frame labelled again gives its stored labels), and without an ROI the
    model refuses with a clear error instead of labelling with a guessed one."""
    from vq_models.errors import InputError
    from vq_models.shot import Shot
    from vq_models.stage1_model import Stage1Model

    meta = json.loads((trained / "stage1" / "meta.json").read_text())
    assert meta["vq_region_weight"] == 3.0 and meta["vq_region_multiplier"] == pytest.approx(1.5 ** 0.5)
    model = Stage1Model.load(trained / "stage1")
    assert model.needs_roi and model.net.needs_roi
    shot = Shot.open(trained)
    for f in shot.frames:
        again = model.labels_from_image(shot.overlay(f), shot.fg_mask(f), shot.roi_mask(f))
        assert np.array_equal(again, model.label_map(f)), f
    with pytest.raises(InputError, match="ROI mask"):
        model.labels_from_image(shot.overlay(1001), shot.fg_mask(1001))
    with pytest.raises(InputError, match="roi_mask shape"):
        model.labels_from_image(shot.overlay(1001), shot.fg_mask(1001), np.ones((5, 5), np.float32))
    # the ROI does decide codes: moving the mouth's ROI up into the eye band changes the mouth's labels
    roi = shot.roi_mask(1001)
    lifted = np.roll(roi, -roi.shape[0] // 3, axis=0)
    moved = model.labels_from_image(shot.overlay(1001), shot.fg_mask(1001), np.maximum(roi, lifted))
    assert not np.array_equal(moved, model.label_map(1001))
