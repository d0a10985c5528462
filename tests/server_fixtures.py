"""Fixtures for the render server / client / host tests: model folders and real server processes.

The model backend sits behind one fixture pair (``backend_spec`` / ``shot_models_dir``): today a
deterministic numpy stand-in (tests/server_backend.py); at integration the lead points them at a tiny
trained shot and ``vq_models.runtime:ShotModel.load``.
"""

from __future__ import annotations

import os
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

import server_backend  # noqa: E402

BACKEND_SPEC = "server_backend:load"


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

    def __init__(self, models: Path, *extra: str, bind: str | None = None, connect: str | None = None):
        args = [sys.executable, "-m", "render_server", "--models", str(models), "--backend", BACKEND_SPEC, *extra]
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


@pytest.fixture(scope="module")
def shot_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A --models folder with two small models (``alpha``, ``beta``) and a broken one."""
    root = tmp_path_factory.mktemp("models")
    server_backend.write_model(root / "alpha")
    server_backend.write_model(root / "beta", num_codes=8, frames=[1, 2, 3], plate={
        "width": 40, "height": 30, "display_window": [0, 0, 40, 30], "data_window": [4, 2, 30, 24],
        "colorspace": "lin_rec709", "pixel_aspect": 1.0}, crop_box=[6, 4, 16])
    server_backend.write_model(root / "slow", delay_s=1.5)
    server_backend.write_model(root / "broken", broken=True)
    return root


@pytest.fixture(scope="module")
def backend_factory():
    """In-process loader with the same backend the server uses (for in-process reference renders)."""
    return server_backend.load


@pytest.fixture(scope="module")
def server(shot_models_dir: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(shot_models_dir, "--workers", "2", "--max-message-mb", "4")
    yield proc
    proc.stop()
    time.sleep(0.05)
