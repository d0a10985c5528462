"""Loss-spike rollback: snapshots, restoring the older one, learning-rate backoff, config checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vq_models.errors import InputError
from vq_models.train.spike_guard import SpikeGuard

torch.set_num_threads(1)


def _train_steps(guard: SpikeGuard, model: nn.Module, opt: torch.optim.Optimizer, losses: list[float],
                 first_step: int = 1) -> list[dict[str, torch.Tensor]]:
    """One real Adam step per entry, reporting the given loss to the guard; the weights after each step."""
    seen = []
    for i, loss in enumerate(losses):
        step = first_step + i
        opt.zero_grad()
        model(torch.ones(1, 2)).sum().backward()
        opt.step()
        guard.step(step, loss, {"G": model}, {"G": opt})
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
    return seen


def test_a_spike_restores_the_older_snapshot_and_halves_the_learning_rate():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    guard = SpikeGuard(factor=8.0, every=2, backoff=0.5, warmup=2)
    weights = _train_steps(guard, model, opt, [1.0, 1.0, 1.1, 0.9, 1.0, 1.0, 50.0])
    # snapshots at steps 2, 4 and 6 (two kept: 4 and 6); the spike at step 7 goes back to step 4's weights
    assert len(guard.rollbacks) == 1
    r = guard.rollbacks[0]
    assert (r.step, r.restored_step, r.lr_factor) == (7, 4, 0.5) and r.loss == 50.0 and 0.9 < r.reference < 1.1
    for k, v in model.state_dict().items():
        assert torch.equal(v, weights[3][k])
        assert not torch.equal(v, weights[5][k])  # step 6: the newer snapshot, not the one restored
    assert opt.state_dict()["state"][0]["step"] == 4  # the optimiser's moments went back too
    # a second spike right away goes back to the same snapshot and halves again
    _train_steps(guard, model, opt, [60.0], first_step=8)
    assert [x.restored_step for x in guard.rollbacks] == [4, 4] and guard.lr_factor == 0.25
    assert guard.rollbacks[1].to_json()["lr_factor"] == 0.25


def test_healthy_noise_nan_and_warmup():
    model = nn.Linear(2, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    guard = SpikeGuard(factor=8.0, every=5, warmup=10)
    # early losses falling fast from a high start, then batch noise of 3x: never a spike
    _train_steps(guard, model, opt, [100.0, 40.0, 10.0, 3.0, 1.0] + [1.0, 3.0, 0.5, 2.5, 1.0] * 4)
    assert guard.rollbacks == [] and guard.lr_factor == 1.0
    _train_steps(guard, model, opt, [math.nan], first_step=26)  # a NaN is always a spike
    assert len(guard.rollbacks) == 1 and all(torch.isfinite(p).all() for p in model.parameters())
    off = SpikeGuard(factor=0.0)
    assert not off.enabled and not off.step(500, 1e9, {"G": model}, {"G": opt})


def test_bad_settings_are_refused():
    for kwargs in ({"factor": 1.0}, {"factor": -2.0}, {"every": 0}, {"backoff": 0.0}, {"backoff": 1.5}, {"warmup": -1},
                   {"decay": 0.0}, {"decay": 1.0}):
        with pytest.raises(ValueError):
            SpikeGuard(**kwargs)
    from vq_models.train.stage2 import load_stage2_config

    for override in ("spike_factor=0.5", "spike_snapshot_every=0", "spike_lr_backoff=2", "spike_warmup=-1",
                     "spike_decay=1.0"):
        with pytest.raises(InputError, match=override.split("=")[0]):
            load_stage2_config("tiny", overrides=[override])
    assert load_stage2_config("cpu").spike_factor == 8.0
