"""Loss-spike rollback for a training loop: restore a recent healthy snapshot and lower the learning rate.

Why: late in a Stage II run the generator's loss is tiny and Adam's second-moment estimate small; one
unlucky batch can then throw the weights far enough that the loss jumps 50x, and with the learning rate
already decaying the run never climbs back (measured: benchmarks/RESULTS.md, spike_factor). Clipping the gradient norm does not stop it: Adam
rescales the clipped gradient. Large-model practice is to go back to a checkpoint from before the spike
and continue more carefully; this does that in memory, every few hundred steps, at the cost of a copy of
the weights and optimiser state.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["SpikeGuard", "Rollback", "SETTING_RULES"]

# Valid ranges of the guard's settings, one definition for the class and Stage II's config check.
SETTING_RULES: dict[str, tuple[Any, str]] = {
    "factor": (lambda v: v == 0 or v > 1, "must be 0 (off) or > 1"),
    "every": (lambda v: v >= 1, "must be >= 1 step"),
    "backoff": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "warmup": (lambda v: v >= 0, "must be >= 0 steps"),
    "decay": (lambda v: 0 < v < 1, "must be in (0, 1)"),
}


@dataclass
class Rollback:
    """One rollback: at ``step`` the loss was ``loss`` against a running mean ``reference``; the weights
    went back to those of ``restored_step`` and every learning rate was multiplied by ``lr_factor``
    from then on (cumulative)."""

    step: int
    loss: float
    reference: float
    restored_step: int
    lr_factor: float

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "loss": self.loss, "reference": self.reference,
                "restored_step": self.restored_step, "lr_factor": self.lr_factor}


@dataclass
class SpikeGuard:
    """Watch one scalar loss per step; on a spike, restore modules and optimisers from a snapshot.

    ``factor``: a step whose loss exceeds ``factor`` × the running mean of healthy steps is a spike
    (0 turns the guard off). ``every``: steps between snapshots; two are kept and a rollback goes to the
    older, so a snapshot taken as the trouble began is never the one restored. ``backoff``: multiplier
    applied to the learning rates after each rollback. ``warmup``: steps before spikes are looked for
    (early losses fall fast and are noisy). ``decay``: of the running mean.
    """

    factor: float = 8.0
    every: int = 100
    backoff: float = 0.5
    warmup: int = 100
    decay: float = 0.95
    lr_factor: float = 1.0
    rollbacks: list[Rollback] = field(default_factory=list)
    _mean: float | None = None
    _snapshots: deque = field(default_factory=lambda: deque(maxlen=2))

    def __post_init__(self) -> None:
        for name, (valid, rule) in SETTING_RULES.items():
            if not valid(getattr(self, name)):
                raise ValueError(f"{name} {rule}, got {getattr(self, name)}")

    @property
    def enabled(self) -> bool:
        return self.factor > 0

    @property
    def reference(self) -> float | None:
        """The running mean of healthy losses a spike is measured against (None before the first)."""
        return self._mean

    def is_spike(self, step: int, loss: float) -> bool:
        """The rule alone, without acting on it: a non-finite loss, or after ``warmup`` one above ``factor``
        × the running mean (the spike probe in benchmarks/ applies it to replayed losses)."""
        return (not math.isfinite(loss)) or (
            step > self.warmup and self._mean is not None and loss > self.factor * self._mean)

    def observe(self, loss: float) -> None:
        """Fold a healthy step's loss into the running mean."""
        self._mean = loss if self._mean is None else self.decay * self._mean + (1.0 - self.decay) * loss

    def step(self, step: int, loss: float, modules: Mapping[str, nn.Module],
             optimisers: Mapping[str, torch.optim.Optimizer]) -> bool:
        """Call after the optimiser step with that step's loss (the same value on every rank). Returns
        True when it rolled back (the weights now are an earlier snapshot's)."""
        if not self.enabled:
            return False
        spike = self.is_spike(step, loss)
        if spike and self._snapshots:
            restored_step, state = self._snapshots[0]
            for name, module in modules.items():
                module.load_state_dict(state["modules"][name])
            for name, opt in optimisers.items():
                opt.load_state_dict(state["optimisers"][name])
            self.lr_factor *= self.backoff
            self.rollbacks.append(Rollback(step, float(loss), float(self._mean or float("nan")), restored_step,
                                           self.lr_factor))
            self._snapshots.clear()
            self._snapshots.append((restored_step, state))
            return True
        if spike:  # nothing to go back to yet: leave the running mean alone
            return False
        self.observe(loss)
        if step % self.every == 0:
            self._snapshots.append((step, {
                "modules": {k: copy.deepcopy(m.state_dict()) for k, m in modules.items()},
                "optimisers": {k: copy.deepcopy(o.state_dict()) for k, o in optimisers.items()},
            }))
        return False
