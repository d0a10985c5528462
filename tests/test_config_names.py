"""One name per knob across both trainers: the shared names, and Stage I's old names still read (config
files, a model's saved config.yaml, --set) with a deprecation message."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from vq_models.config import apply_mapping, load_config, save_config
from vq_models.errors import InputError
from vq_models.train.stage1_config import STAGE1_PRESETS, Stage1Config
from vq_models.train.stage2_config import Stage2Config

SHARED = ("iterations", "lambda_gp", "perceptual", "perceptual_backbone", "batch_size", "seed", "log_every",
          "checkpoint_every")


def test_both_trainers_use_the_same_names_for_the_same_knobs():
    s1 = {f.name for f in dataclasses.fields(Stage1Config)}
    s2 = {f.name for f in dataclasses.fields(Stage2Config)}
    assert set(SHARED) <= s1 & s2
    assert not {"iters", "r1_gamma", "perceptual_net", "perceptual_weights"} & (s1 | s2)


def test_old_stage1_names_are_read_with_a_deprecation_message(caplog):
    with caplog.at_level(logging.WARNING, logger="vqedit.config"):
        old = load_config(STAGE1_PRESETS, "tiny", overrides=["iters=7", "r1_gamma=10", "perceptual_net=vgg",
                                                             "perceptual_weights=/w/vgg.pth"])
    assert (old.iterations, old.lambda_gp, old.perceptual, old.perceptual_backbone) == (7, 5.0, "vgg", "/w/vgg.pth")
    assert "override.iters is deprecated" in caplog.text and "lambda_gp = 5.0" in caplog.text
    new = load_config(STAGE1_PRESETS, "tiny", overrides=["iterations=7", "lambda_gp=5", "perceptual=vgg",
                                                         "perceptual_backbone=/w/vgg.pth"])
    assert old == new


def test_a_config_yaml_saved_under_the_old_names_loads(tmp_path):
    path = tmp_path / "config.yaml"
    save_config(STAGE1_PRESETS["cpu"], path)
    text = path.read_text().replace("iterations:", "iters:").replace("lambda_gp: 5.0", "r1_gamma: 10.0")
    path.write_text(text)
    from vq_models.config import read_config_file

    assert apply_mapping(Stage1Config(), read_config_file(path)) == STAGE1_PRESETS["cpu"]


def test_old_and_new_name_together_is_an_error():
    with pytest.raises(InputError, match="iters: given together with its new name 'iterations'"):
        load_config(STAGE1_PRESETS, "tiny", overrides=["iters=3", "iterations=4"])


def test_old_names_train_bit_for_bit_like_the_new_ones(tmp_path):
    """The rename changed no behaviour: r1_gamma=γ trains exactly like lambda_gp=γ/2 (same weights, bit for bit)."""
    import sys
    from pathlib import Path

    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from stage1_shot import make_shot

    from vq_models.train.checkpoint import load_weights
    from vq_models.train.stage1 import train_stage1

    torch.set_num_threads(1)
    weights = []
    for name, overrides in (("old", ["iters=2", "r1_gamma=10", "perceptual_net=alex"]),
                            ("new", ["iterations=2", "lambda_gp=5", "perceptual=alex"])):
        root = tmp_path / name
        make_shot(root, frames=(1, 2, 3))
        out = train_stage1(root, load_config(STAGE1_PRESETS, "tiny", overrides=overrides), progress=False)
        weights.append(load_weights(out / "model.safetensors"))
    old, new = weights
    assert old.keys() == new.keys() and all(torch.equal(old[k], new[k]) for k in old)
