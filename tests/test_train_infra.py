"""Shared training infrastructure: checkpoints, TensorBoard logging, torchrun DDP."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from vq_models.errors import InputError
from vq_models.train.checkpoint import CheckpointManager, load_weights, save_weights
from vq_models.train.distributed import all_reduce_mean, init_distributed, wrap_ddp
from vq_models.train.logging import TrainLogger

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


def _model_and_opt(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    return model, opt


def _train_step(model, opt):
    x = torch.randn(5, 4)
    loss = model(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def test_checkpoint_round_trip_restores_weights_optimizer_and_rng(tmp_path):
    model, opt = _model_and_opt()
    for _ in range(3):
        _train_step(model, opt)
    mgr = CheckpointManager(tmp_path / "ck", keep=2)
    path = mgr.save(3, {"net": model}, {"adam": opt}, {"note": "hello", "best": 1.5})
    assert mgr.latest() == path
    # continue the original run: 2 more steps + random draws from all three generators
    ref_losses = [_train_step(model, opt) for _ in range(2)]
    ref_draws = (torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)])
    ref_w = {k: v.clone() for k, v in model.state_dict().items()}

    torch.manual_seed(123)
    np.random.seed(7)
    random.seed(9)
    model2, opt2 = _model_and_opt(seed=99)
    step, state = mgr.load(path, {"net": model2}, {"adam": opt2})
    assert step == 3 and state == {"note": "hello", "best": 1.5}
    losses = [_train_step(model2, opt2) for _ in range(2)]
    draws = (torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)])
    assert losses == ref_losses
    assert draws == ref_draws
    for k, v in model2.state_dict().items():
        assert torch.equal(v, ref_w[k]), k


def test_checkpoint_keeps_newest_and_ignores_partial(tmp_path):
    model, opt = _model_and_opt()
    mgr = CheckpointManager(tmp_path, keep=2)
    for step in (10, 20, 30):
        mgr.save(step, {"net": model}, {"adam": opt})
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert names == ["step_00000020", "step_00000030"]
    # a crashed save leaves at most a hidden temp folder or a folder without state.json: never picked
    (tmp_path / "step_00000040").mkdir()
    (tmp_path / "step_00000040" / "modules.safetensors").write_bytes(b"partial")
    (tmp_path / ".tmp_step_00000050_x").mkdir()
    assert mgr.latest() == tmp_path / "step_00000030"


def test_checkpoint_save_failure_leaves_nothing_visible(tmp_path):
    model, opt = _model_and_opt()
    mgr = CheckpointManager(tmp_path, keep=2)
    with pytest.raises(TypeError):
        mgr.save(5, {"net": model}, {"adam": opt}, {"bad": object()})  # not json-able: fails mid-save
    assert mgr.latest() is None
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_load_rejects_wrong_model(tmp_path):
    model, opt = _model_and_opt()
    path = CheckpointManager(tmp_path).save(1, {"net": model}, {"adam": opt})
    other = nn.Linear(3, 3)
    with pytest.raises(InputError, match="do not fit"):
        CheckpointManager(tmp_path).load(path, {"net": other}, {})
    with pytest.raises(InputError, match="no weights for module 'gen'"):
        CheckpointManager(tmp_path).load(path, {"gen": model}, {})


def test_save_and_load_weights_flatten_prefixes(tmp_path):
    model, _ = _model_and_opt()
    code = torch.arange(6, dtype=torch.float32).view(2, 3)
    save_weights(tmp_path / "w.safetensors", {"G": model, "codebook": code})
    flat = load_weights(tmp_path / "w.safetensors")
    assert set(flat) == {"G.0.weight", "G.0.bias", "G.2.weight", "G.2.bias", "codebook"}
    assert torch.equal(flat["codebook"], code)
    assert torch.equal(flat["G.2.weight"], model[2].weight.detach())
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="bad.safetensors"):
        load_weights(tmp_path / "bad.safetensors")


def test_train_logger_writes_scalars_and_images(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TrainLogger(tmp_path / "tb", total_steps=5, desc="unit")
    for step in range(1, 6):
        logger.log(step, {"loss/g": 1.0 / step, "lr": 0.5})
    img = np.zeros((8, 12, 3), np.uint8)
    img[:, :6, 0] = 255
    logger.image(5, "val/preview", img)
    logger.close()
    assert "unit: 5/5 steps" in capsys.readouterr().out
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    events = acc.Scalars("loss/g")
    assert [e.step for e in events] == [1, 2, 3, 4, 5]
    assert events[3].value == pytest.approx(0.25)
    imgs = acc.Images("val/preview")
    assert imgs[0].width == 12 and imgs[0].height == 8


def test_train_logger_disabled_writes_nothing(tmp_path):
    logger = TrainLogger(tmp_path / "tb", total_steps=3, desc="off", enabled=False)
    logger.log(1, {"a": 1.0})
    logger.close()
    assert not (tmp_path / "tb").exists()


def test_single_process_distributed_helpers_are_identity(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    info = init_distributed("cpu")
    assert (info.rank, info.world_size, info.is_main) == (0, 1, True)
    model = nn.Linear(2, 2)
    assert wrap_ddp(model, info) is model
    t = torch.tensor([1.0, 3.0])
    assert torch.equal(all_reduce_mean(t, info), t)


DDP_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from torch import nn
    from vq_models.train.distributed import init_distributed, wrap_ddp, all_reduce_mean, barrier, cleanup
    torch.set_num_threads(1)
    info = init_distributed("cpu")
    torch.manual_seed(0)
    model = wrap_ddp(nn.Linear(3, 1), info)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(100 + info.rank)  # different data per rank: DDP must still keep weights in sync
    for _ in range(4):
        x = torch.randn(8, 3)
        loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
        opt.zero_grad(); loss.backward(); opt.step()
    mean_rank = all_reduce_mean(torch.tensor([float(info.rank)]), info).item()
    barrier(info)
    w = [p.detach().flatten().tolist() for p in model.parameters()]
    out = os.path.join(sys.argv[1], f"rank{info.rank}.json")
    json.dump({"w": w, "world": info.world_size, "mean_rank": mean_rank}, open(out, "w"))
    cleanup(info)
    """
)


@pytest.mark.timeout(120)
def test_torchrun_ddp_two_ranks_keep_identical_weights(tmp_path):
    script = tmp_path / "ddp_steps.py"
    script.write_text(DDP_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    torchrun = Path(sys.executable).parent / "torchrun"
    for attempt in range(2):
        proc = subprocess.run(
            [str(torchrun), "--nproc_per_node=2", "--standalone", str(script), str(tmp_path)],
            env=env, capture_output=True, text=True, timeout=55,
        )
        # Gloo's worker threads can abort a rank at interpreter exit after destroy_process_group (a known
        # upstream teardown race, pytorch/pytorch#190489 and PR #179291); seen twice in this project's suite runs
        # on a loaded 2-core box. One rerun for that signature only; anything else fails at once.
        if proc.returncode == 0 or "terminate called without an active exception" not in proc.stderr or attempt:
            break
    assert proc.returncode == 0, proc.stderr[:3000] + "\n...\n" + proc.stderr[-2000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["world"] == r1["world"] == 2
    assert r0["mean_rank"] == pytest.approx(0.5)
    assert r0["w"] == r1["w"]
    torch.manual_seed(0)
    init_w = nn.Linear(3, 1).weight.flatten().tolist()
    assert r0["w"][0] != init_w  # training actually moved the weights


def test_train_logger_without_progress_keeps_tensorboard_but_draws_no_bar(tmp_path, capsys):
    logger = TrainLogger(tmp_path / "tb", total_steps=3, desc="quietbar", progress=False)
    for step in (1, 2, 3):
        logger.log(step, {"a": float(step)})
    logger.close()
    assert "it/s" not in capsys.readouterr().err  # the summary line may name the run; no bar is drawn
    assert any((tmp_path / "tb").glob("events.out.tfevents.*"))
    loud = TrainLogger(tmp_path / "tb2", total_steps=3, desc="loudbar")
    loud.log(3, {"a": 1.0})
    loud.close()
    assert "it/s" in capsys.readouterr().err
