"""The Stage II spike probe (benchmarks/stage2_spike_probe.py) replays a run from its checkpoint exactly,
scores batches without moving the weights when frozen, and finds loss jumps by the spike guard's rule."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from test_stage2 import make_shot

from vq_models.train.checkpoint import load_weights, split_weights
from vq_models.train.stage2 import load_stage2_config, train_stage2

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "stage2_spike_probe.py"
_spec = importlib.util.spec_from_file_location("stage2_spike_probe", _PATH)
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe") / "shot"
    make_shot(root)
    cfg = load_stage2_config("tiny", overrides=["iterations=8", "checkpoint_every=4", "keep_checkpoints=3",
                                                "shift_augment=2", "paint_prob=1.0", "paint_radius=3"])
    train_stage2(root, cfg, progress=False)
    return root


def _g(root: Path, step: int) -> dict[str, torch.Tensor]:
    flat = load_weights(root / "stage2" / "checkpoints" / f"step_{step:08d}" / "modules.safetensors")
    return split_weights(flat, "G")


def test_replay_repeats_the_run(run):
    records, nets = probe.replay(run, 4, range(5, 9), [], top=2)
    assert [r["step"] for r in records] == [5, 6, 7, 8]
    assert all(len(r["top_updates"]) == 2 and r["top_updates"][0][1] > 0 for r in records)
    want = _g(run, 8)
    got = nets.G.state_dict()
    for k in want:
        assert torch.allclose(got[k], want[k], atol=1e-6, rtol=0), k


def test_overrides_beat_the_checkpoints_optimiser_settings(run):
    _, nets = probe.replay(run, 4, range(5, 6), ["adam_eps=1e-5", "beta2=0.99"])
    for opt in nets.optimizers.values():
        assert all(g["eps"] == 1e-5 and g["betas"][1] == 0.99 for g in opt.param_groups)


def test_frozen_scores_without_moving(run):
    records, nets = probe.replay(run, 8, range(5, 9), [], frozen=True)
    assert all(r["g_loss"] > 0 for r in records)
    assert all(r["top_updates"][0][1] == 0 for r in records)
    want = _g(run, 8)
    for k, v in nets.G.state_dict().items():
        assert torch.equal(v, want[k]), k


def test_find_spikes_uses_the_running_mean():
    losses = [1.0, 1.1, 0.9, 9.0, 1.0, 3.0]
    records = [{"step": i + 1, "g_loss": v, "top_updates": [("w", float(i))]} for i, v in enumerate(losses)]
    spikes = probe.find_spikes(records, factor=4.0)
    assert [s["step"] for s in spikes] == [4]
    assert spikes[0]["top_updates_step_before"] == [("w", 2.0)]
    assert spikes[0]["reference"] == pytest.approx(0.9995, abs=1e-3)
