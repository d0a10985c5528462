"""The demo's render server: a real ``vqedit serve`` subprocess on a free loopback port.

The demo drives the product the way a studio does (host → server over ZeroMQ), so it starts the same
server an artist's machine would, reads the resolved address from its one ready line, sends its log to
``OUT/logs/render_server.log`` and stops it with SIGTERM (the graceful path), checking it exits cleanly.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from vq_models.errors import VQEditError


class DemoServer:
    """``with DemoServer(models_dir, log_path) as srv: srv.address``."""

    def __init__(self, models_dir: Path, log_path: Path, start_timeout: float = 180.0, threads: int = 2):
        self.models_dir = Path(models_dir)
        self.log_path = Path(log_path)
        self.start_timeout = start_timeout
        self.threads = threads
        self.address = ""
        self.proc: subprocess.Popen[str] | None = None
        self._log = None
        self.returncode: int | None = None

    def start(self) -> str:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w", encoding="utf-8")
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(self.threads))
        args = [sys.executable, "-m", "vq_models.cli", "serve", "--models", str(self.models_dir),
                "--bind", "tcp://127.0.0.1:*", "--workers", "1", "--grace", "20"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env)
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
                if self._log is not None and not self._log.closed:
                    self._log.write(line)
                    self._log.flush()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise VQEditError(f"render server exited with code {self.proc.returncode} before listening "
                                      f"(see {self.log_path})") from None
                continue
            if "listening on" in line:
                self.address = line.strip().rsplit(" ", 1)[-1]
                return self.address
        self.stop()
        raise VQEditError(f"render server did not start within {self.start_timeout:.0f} s (see {self.log_path})")

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait, then kill if it hangs; returns the exit code (0 = clean shutdown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.returncode = self.proc.returncode
        if self._log is not None and not self._log.closed:
            time.sleep(0.05)  # let the pump thread write the last lines
            self._log.close()
        return self.returncode

    def __enter__(self) -> DemoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
