"""Fixtures for the render server / client / host tests: model folders and real server processes.

Every model here is the session's real tiny trained shot (``tiny_shot`` in tests/conftest.py), served
by the default loader ``vq_models.runtime:ShotModel.load``. ``alpha`` is a private copy (tests set its
prior), ``beta`` a second copy (two resident models, LRU), ``slow`` a copy served with a render delay
(tests/server_backend.py, only where a test asks for it) and ``broken`` a copy with corrupt weights.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

DEFAULT_BACKEND = "vq_models.runtime:ShotModel.load"
SLOW_BACKEND = "server_backend:load"  # the real loader + a sleep for models holding delay_s.txt


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests"), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


class ServerProcess:
    """A real ``python -m render_server`` subprocess; ``address`` is what clients connect to."""

    def __init__(self, models: Path, *extra: str, bind: str | None = None, connect: str | None = None,
                 backend: str = DEFAULT_BACKEND):
        args = [sys.executable, "-m", "render_server", "--models", str(models), "--backend", backend, *extra]
        if connect:
            args += ["--connect", connect]
        else:
            args += ["--bind", bind or "tcp://127.0.0.1:*"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "listening on" not in line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"server did not start: {line!r} {err[-2000:]}")
        self.address = line.strip().rsplit(" ", 1)[-1]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class BrokerProcess:
    def __init__(self) -> None:
        args = [sys.executable, "-m", "vq_models.cli", "broker", "--frontend", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "frontend" not in line:
            raise RuntimeError(f"broker did not start: {line!r} {self.proc.stderr.read() if self.proc.stderr else ''}")
        parts = line.split()
        self.frontend, self.backend = parts[parts.index("frontend") + 1], parts[parts.index("backend") + 1]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def copy_shot(src: Path, dst: Path) -> Path:
    """A private copy of a trained shot (what a model needs: no checkpoints or TensorBoard logs)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints", "tensorboard", "*.log"))
    return dst


@pytest.fixture(scope="module")
def shot_models_dir(tmp_path_factory: pytest.TempPathFactory, tiny_shot: Path) -> Path:
    """A --models folder: ``alpha`` and ``beta`` (copies of the tiny shot), ``slow`` (render delay 1.5 s
    under SLOW_BACKEND) and ``broken`` (truncated Stage II weights)."""
    root = tmp_path_factory.mktemp("models")
    for name in ("alpha", "beta", "slow", "broken"):
        copy_shot(tiny_shot, root / name)
    (root / "slow" / "delay_s.txt").write_text("1.5")
    weights = root / "broken" / "stage2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    return root


MEDIAPIPE_PREP = {"tool": "mediapipe 0.10.21 face_mesh (478 points)", "contours": "mesh"}  # no eye_centres: irises


def with_prep(shot_dir: Path, prep: dict) -> Path:
    """``shot_dir`` with its shot.json's prep record replaced by ``prep`` (a shot re-prepped, or made stale)."""
    meta_path = shot_dir / "shot.json"
    meta = json.loads(meta_path.read_text())
    meta["prep"] = prep
    meta_path.write_text(json.dumps(meta))
    return shot_dir


@pytest.fixture(scope="module")
def attention_models_dir(tmp_path_factory: pytest.TempPathFactory, tiny_shot: Path) -> Path:
    """A --models folder where three of four folders need attention before rendering: ``fresh`` (the tiny
    shot), ``stale`` (a copy whose prep record says MediaPipe aligned its crops on the irises), ``untrained``
    (the shot's shot.json alone) and ``empty`` (no shot at all)."""
    root = tmp_path_factory.mktemp("attention")
    copy_shot(tiny_shot, root / "fresh")
    with_prep(copy_shot(tiny_shot, root / "stale"), dict(MEDIAPIPE_PREP))
    (root / "untrained").mkdir()
    shutil.copy2(tiny_shot / "shot.json", root / "untrained" / "shot.json")
    (root / "empty").mkdir()
    return root


@pytest.fixture(scope="module")
def backend_factory():
    """In-process loader, the server's default, for reference renders: ``backend_factory(model_dir)``."""
    from vq_models.runtime import ShotModel

    return ShotModel.load


@pytest.fixture(scope="module")
def server(shot_models_dir: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(shot_models_dir, "--workers", "2", "--max-message-mb", "4")
    yield proc
    proc.stop()
    time.sleep(0.05)
