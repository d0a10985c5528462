"""Stage II training end to end on a tiny synthetic shot: colours per region are learned, held-out frames
stay out of training, resume is exact, the renderer loads and validates its input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vq_models.errors import InputError
from vq_models.io.atomic import atomic_write_json
from vq_models.io.images import write_label_map
from vq_models.shot import FRAME_NAME, CropTransform, ShotWriter
from vq_models.stage2_model import Stage2Renderer
from vq_models.train.checkpoint import load_weights
from vq_models.train.stage2 import load_stage2_config, train_stage2

torch.set_num_threads(1)

CROP, LABEL, NFRAMES = 32, 16, 12
RED, BLUE, GREEN = (0.9, 0.15, 0.1), (0.1, 0.2, 0.85), (0.1, 0.8, 0.2)


def _labels(i: int) -> np.ndarray:
    """Code 0 left of a boundary that moves with the frame, code 1 right of it (code 2 unused)."""
    lab = np.zeros((LABEL, LABEL), np.uint8)
    lab[:, 5 + i % 6 :] = 1
    return lab


def _image(lab: np.ndarray, colours) -> np.ndarray:
    up = np.kron(lab, np.ones((CROP // LABEL, CROP // LABEL), np.uint8))
    return np.asarray(colours, np.float32)[up]


def make_shot(root, held_out_colours=(GREEN, GREEN)):
    """12 frames; frame position 9 (the held-out one with val_every=10) gets *different* colours, so a
    model that never saw it renders the training colours there."""
    w = ShotWriter(root, CROP, plate={"frames": [1001, 1001 + NFRAMES - 1]})
    ident = CropTransform.from_plate_to_crop(np.eye(2, 3))
    fg = np.zeros((CROP, CROP), np.float32)
    fg[4:28, 4:28] = 1
    roi = np.zeros((CROP, CROP), np.float32)
    roi[12:20, 12:20] = 1
    for i in range(NFRAMES):
        lab = _labels(i)
        img = _image(lab, held_out_colours if i == 9 else (RED, BLUE))
        w.write_frame(1001 + i, img, img, fg, roi, ident)
        write_label_map(root / "stage1" / "labels" / FRAME_NAME.format(1001 + i), lab)
    atomic_write_json(root / "stage1" / "meta.json", {"num_codes": 3})
    return w.finish()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("shot")
    make_shot(root)
    cfg = load_stage2_config("tiny", overrides=["iterations=80", "checkpoint_every=40"])
    out = train_stage2(root, cfg)
    return root, out, cfg


def _region_means(img: np.ndarray, lab: np.ndarray):
    up = np.kron(lab, np.ones((CROP // LABEL, CROP // LABEL), np.uint8))
    inner = np.zeros_like(up, bool)
    inner[6:26, 6:26] = True  # face region away from the crop border
    return img[(up == 0) & inner].mean(0), img[(up == 1) & inner].mean(0)


def test_tiny_training_learns_region_colours(trained):
    root, out, _ = trained
    meta = json.loads((out / "meta.json").read_text())
    assert meta["steps"] == 80 and meta["num_channels"] == 3 and meta["label_size"] == LABEL
    assert meta["render_size"] == 32 and meta["perceptual_backend"] == "none"
    r = Stage2Renderer.load(out)
    frames = list(range(1001, 1001 + NFRAMES))
    pos = 4  # a training frame
    window = np.stack([_labels(pos - 1), _labels(pos), _labels(pos + 1)])
    img = r.render(window)
    assert img.shape == (32, 32, 3) and img.dtype == np.float32
    left, right = _region_means(img, _labels(pos))
    assert np.abs(left - RED).max() < 0.12, left
    assert np.abs(right - BLUE).max() < 0.12, right
    # the TensorBoard losses went down
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    l1 = [e.value for e in acc.Scalars("loss/l1")]
    assert np.mean(l1[-3:]) < 0.5 * np.mean(l1[:3])
    assert "loss/d_bce" in acc.Tags()["scalars"] and "val/ssim" in acc.Tags()["scalars"]
    assert frames[9] in meta["val"]["frames"]
    assert meta["spike_rollbacks"] == []  # a healthy run rolls nothing back (and says so)
    # each code's mean colour over the training frames (held-out frame 9 is green and must not count)
    red, blue, unused = meta["code_colours"]
    assert np.allclose(red, RED, atol=3e-3) and np.allclose(blue, BLUE, atol=3e-3) and unused is None  # 8-bit crops
    luma = r.code_luma()
    assert luma[1] < luma[0] and np.isnan(luma[2])


def test_held_out_frames_never_train(trained):
    root, out, _ = trained
    meta = json.loads((out / "meta.json").read_text())
    val_frames = meta["val"]["frames"]
    assert val_frames == [1010]  # position 9 of 12 with val_every=10
    assert 1010 not in meta["train_frames"] and len(meta["train_frames"]) == NFRAMES - 1
    # the held-out target is green/green; a model that never saw it renders red/blue there
    r = Stage2Renderer.load(out)
    img = r.render(np.stack([_labels(8), _labels(9), _labels(10)]))
    left, right = _region_means(img, _labels(9))
    assert np.abs(left - RED).max() < 0.15 and np.abs(right - BLUE).max() < 0.15
    assert meta["val"]["ssim"] < 0.9  # measured against the (unseen, different) green target


def test_outputs_for_people_and_tools(trained):
    _, out, _ = trained
    from vq_models.io.images import read_image

    preview = read_image(out / "val_preview.png").pixels
    assert preview.shape == (32, 64, 3)  # target | render for the single held-out frame
    left, right = preview[:, :32], preview[:, 32:]
    assert np.abs(left[8:24, 2:4] - GREEN).max() < 0.02  # the target half is the held-out frame
    assert np.abs(right[8:24, 2:4] - RED).max() < 0.2  # the render half shows what the model learned
    flat = load_weights(out / "model.safetensors")
    assert flat["code_to_channel"][:3].tolist() == [0, 1, 2]
    assert any(k.startswith("G.up_blocks.") for k in flat)
    assert (out / "config.yaml").read_text().startswith("render_size: 32")
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_00000040", "step_00000080"]


def test_renderer_rejects_bad_windows(trained):
    _, out, _ = trained
    r = Stage2Renderer.load(out)
    with pytest.raises(InputError, match="expected shape"):
        r.render(np.zeros((2, LABEL, LABEL), np.uint8))
    with pytest.raises(InputError, match="code 7"):
        r.render(np.full((3, LABEL, LABEL), 7, np.uint8))
    batch = r.render_batch(np.stack([np.stack([_labels(i)] * 3) for i in range(3)]))
    assert batch.shape == (3, 32, 32, 3)
    with pytest.raises(InputError, match="missing"):
        Stage2Renderer.load(out.parent / "nowhere")


@pytest.mark.parametrize("augment", [[], ["shift_augment=2"], ["shift_augment=2", "paint_prob=1.0", "paint_radius=3"]])
def test_resume_is_exact(tmp_path, augment):
    root = tmp_path / "shot"
    make_shot(root)
    common = ["checkpoint_every=4", "log_every=1", *augment]
    straight = load_stage2_config("tiny", overrides=["iterations=8", *common])
    train_stage2(root, straight)
    ref = load_weights(root / "stage2" / "model.safetensors")
    # first half, then resume to the end (shifts and painted ellipses are drawn per step, so they repeat too)
    half = load_stage2_config("tiny", overrides=["iterations=4", *common])
    train_stage2(root, half)
    mid = load_weights(root / "stage2" / "model.safetensors")
    assert any(not torch.equal(mid[k], ref[k]) for k in ref)
    train_stage2(root, straight, resume=True)
    got = load_weights(root / "stage2" / "model.safetensors")
    assert json.loads((root / "stage2" / "meta.json").read_text())["steps"] == 8
    for k in ref:
        assert torch.allclose(got[k], ref[k], atol=1e-6, rtol=0), k


def test_prior_groups_train_and_bad_config(tmp_path):
    root = tmp_path / "shot"
    make_shot(root)
    prior = root / "prior.json"
    prior.write_text(json.dumps({"version": 1, "segments": {"left": [0], "right": [1]}}))
    # painting reads the palette per prior group (codes 0 and 1 are one channel each here, code 2 unassigned)
    cfg = load_stage2_config("tiny", overrides=["iterations=2", "log_every=1", "paint_prob=1.0", "paint_radius=3"])
    out = train_stage2(root, cfg, prior_path=prior)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["channel_names"] == ["left", "right", "unassigned"]
    assert meta["code_colours"][2] is None and np.allclose(meta["code_colours"][0], RED, atol=3e-3)
    assert meta["prior"]["segments"] == {"left": [0], "right": [1]}
    with pytest.raises(InputError, match="render_size"):
        load_stage2_config("tiny", overrides=["render_size=48"])
    with pytest.raises(InputError, match="unknown option"):
        load_stage2_config("tiny", overrides=["lamda_l1=1"])
    with pytest.raises(InputError, match="adam_eps must be > 0"):
        load_stage2_config("tiny", overrides=["adam_eps=0"])
    with pytest.raises(InputError, match="l1_beta must be > 0"):
        load_stage2_config("tiny", overrides=["l1_beta=0"])
    with pytest.raises(InputError, match="lambda_ssim must be >= 0"):
        load_stage2_config("tiny", overrides=["lambda_ssim=-1"])
    (root / "stage1" / "meta.json").write_text(json.dumps({"num_codes": 1}))
    with pytest.raises(InputError, match="num_codes 1"):
        train_stage2(root, cfg)


def test_resume_takes_the_new_optimiser_settings(tmp_path):
    """Adam's load_state_dict brings the checkpoint's betas and eps back; a resume with new ones must use them."""
    root = tmp_path / "shot"
    make_shot(root)
    train_stage2(root, load_stage2_config("tiny", overrides=["iterations=4", "checkpoint_every=2"]), progress=False)
    changed = load_stage2_config("tiny", overrides=["iterations=6", "checkpoint_every=2", "adam_eps=1e-4", "beta2=0.99"])
    train_stage2(root, changed, resume=True, progress=False)
    saved = torch.load(root / "stage2" / "checkpoints" / "step_00000006" / "optimizers.pt", weights_only=True)
    for name in ("G", "D"):
        assert all(g["eps"] == 1e-4 and g["betas"][1] == 0.99 for g in saved[name]["param_groups"]), name


def test_ssim_term_joins_the_generator_loss_on_frame_target_pixels(tmp_path):
    """With lambda_ssim > 0 a step adds lambda_ssim x (1 - SSIM) to G's loss (logged as loss/ssim), with
    painted batches on; at 0 the term is absent."""
    from vq_models.shot import Shot
    from vq_models.train.distributed import init_distributed
    from vq_models.train.stage2 import build_stage2_nets, load_stage2_data
    from vq_models.train.stage2_step import train_step

    root = tmp_path / "shot"
    make_shot(root)
    info = init_distributed("cpu")
    for weight in (0.0, 0.7):
        cfg = load_stage2_config("tiny", overrides=[f"lambda_ssim={weight}", "paint_prob=1.0", "paint_radius=3"])
        data = load_stage2_data(Shot.open(root), cfg)
        nets, _ = build_stage2_nets(cfg, data, info)
        scalars = train_step(1, cfg, nets, data.train_set, info, info.device)
        if weight == 0:
            assert "loss/ssim" not in scalars
            continue
        assert 0.0 < scalars["loss/ssim"] <= 2.0
        expected = (cfg.lambda_l1 * scalars["loss/l1"] + weight * scalars["loss/ssim"]
                    + cfg.lambda_adv * scalars.get("loss/g_adv", 0.0))
        assert scalars["loss/g_total"] == pytest.approx(expected, rel=1e-5)
