"""Checkpoints that survive a killed job and resume a run at the exact step.

Why this layout: module weights go to safetensors (no pickle, loadable anywhere); optimiser states and
RNG states go through ``torch.save`` but are read back with ``weights_only=True`` so a checkpoint can
never execute code. A checkpoint is a folder ``step_00001234`` written under a temporary name and
renamed into place, so readers only ever see complete checkpoints.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from vq_models.errors import InputError
from vq_models.io.atomic import atomic_path

_STEP_DIR = re.compile(r"^step_(\d{8,})$")


def _flatten(tensors_or_modules: dict[str, Any]) -> dict[str, Tensor]:
    """Turn ``{"G": module, "codebook": tensor}`` into ``{"G.conv.weight": ..., "codebook": ...}``."""
    flat: dict[str, Tensor] = {}
    for name, value in tensors_or_modules.items():
        if isinstance(value, nn.Module):
            for key, tensor in value.state_dict().items():
                flat[f"{name}.{key}"] = tensor
        elif isinstance(value, Tensor):
            flat[name] = value
        else:
            raise TypeError(f"save_weights: {name!r} is neither a module nor a tensor")
    # safetensors refuses shared/non-contiguous storage: give every entry its own contiguous copy.
    return {k: v.detach().cpu().contiguous().clone() for k, v in flat.items()}


def save_weights(path: str | Path, tensors_or_modules: dict[str, Any]) -> None:
    """Write modules/tensors to one safetensors file atomically (module keys prefixed ``name.``)."""
    flat = _flatten(tensors_or_modules)
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp))


def load_weights(path: str | Path) -> dict[str, Tensor]:
    """Read a safetensors file into a flat ``{key: tensor}`` dict (CPU)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: weights file not found")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise InputError(f"{path}: cannot read weights ({str(exc).splitlines()[0]})") from None


def split_weights(flat: dict[str, Tensor], name: str) -> dict[str, Tensor]:
    """The entries of ``flat`` that belong to module ``name``, with the ``name.`` prefix removed."""
    prefix = f"{name}."
    return {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        # numpy's legacy state is (name, keys uint32[624], pos, has_gauss, cached_gaussian).
        "numpy_keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
        "numpy_meta": [str(np_state[0]), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        # python's state is (version, tuple of 625 ints, gauss_next); stored as plain lists/ints.
        "python": [int(py_state[0]), torch.tensor(py_state[1], dtype=torch.int64), py_state[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, pos, has_gauss, cached = state["numpy_meta"]
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state((name, keys, int(pos), int(has_gauss), float(cached)))
    version, internal, gauss_next = state["python"]
    random.setstate((int(version), tuple(int(x) for x in internal.tolist()), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointManager:
    """Saves, finds and restores training checkpoints in one folder, keeping the newest ``keep``."""

    def __init__(self, directory: str | Path, keep: int = 2):
        self.directory = Path(directory)
        self.keep = max(1, int(keep))

    def _checkpoints(self) -> list[tuple[int, Path]]:
        if not self.directory.is_dir():
            return []
        found = []
        for child in self.directory.iterdir():
            m = _STEP_DIR.match(child.name)
            if m and child.is_dir() and (child / "state.json").is_file():
                found.append((int(m.group(1)), child))
        return sorted(found)

    def save(
        self,
        step: int,
        modules: dict[str, nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
        state: dict | None = None,
    ) -> Path:
        """Write checkpoint ``step`` atomically and prune old ones; returns its folder."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"step_{int(step):08d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp_step_{int(step):08d}_", dir=self.directory))
        try:
            save_weights(tmp / "modules.safetensors", dict(modules))
            torch.save({k: opt.state_dict() for k, opt in optimizers.items()}, tmp / "optimizers.pt")
            torch.save(_rng_state(), tmp / "rng.pt")
            # state.json last: its presence marks a complete checkpoint.
            (tmp / "state.json").write_text(json.dumps({"step": int(step), "state": state or {}}, indent=2))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for _, old in self._checkpoints()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def latest(self) -> Path | None:
        """The newest complete checkpoint folder, or None."""
        found = self._checkpoints()
        return found[-1][1] if found else None

    def load(
        self,
        path: str | Path,
        modules: dict[str, nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
    ) -> tuple[int, dict]:
        """Restore weights, optimiser states and RNG states from ``path``; returns ``(step, state)``."""
        path = Path(path)
        if not (path / "state.json").is_file():
            raise InputError(f"{path}: not a complete checkpoint (no state.json)")
        flat = load_weights(path / "modules.safetensors")
        for name, module in modules.items():
            part = split_weights(flat, name)
            if not part:
                raise InputError(f"{path}: checkpoint has no weights for module {name!r}")
            try:
                module.load_state_dict(part)
            except RuntimeError as exc:
                raise InputError(f"{path}: weights for {name!r} do not fit the model ({str(exc).splitlines()[0]})") from None
        opt_states = torch.load(path / "optimizers.pt", map_location="cpu", weights_only=True)
        for name, opt in optimizers.items():
            if name not in opt_states:
                raise InputError(f"{path}: checkpoint has no optimiser state for {name!r}")
            opt.load_state_dict(opt_states[name])
        _set_rng_state(torch.load(path / "rng.pt", map_location="cpu", weights_only=True))
        meta = json.loads((path / "state.json").read_text())
        return int(meta["step"]), dict(meta.get("state") or {})
