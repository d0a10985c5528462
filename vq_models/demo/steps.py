"""The demo's step runner: one line per step saying what it does and how long it took, one log per step.

A newcomer must be able to tell *which* step broke and *where to look*, so every step runs inside
:meth:`StepRunner.step`: log records (and a failure's traceback) go to ``OUT/logs/NAME.log``, and any
exception becomes :class:`DemoStepFailed` whose one-line message is
``demo: step N (name) failed: REASON (log: PATH)``.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vq_models.errors import VQEditError


class DemoStepFailed(VQEditError):
    """A demo step failed; the message names the step, the reason and the step's log."""

    def __init__(self, number: int, name: str, reason: str, log_path: Path):
        self.number = number
        self.name = name
        self.reason = reason
        self.log_path = log_path
        super().__init__(f"demo: step {number} ({name}) failed: {reason} (log: {log_path})")


def _reason(exc: BaseException) -> str:
    """One line: a user error's own message, else the exception type and its first line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, VQEditError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class StepRunner:
    """Numbered steps with timing and per-step log files under ``log_dir``."""

    log_dir: Path
    total: int
    echo: bool = True
    timings: dict[str, float] = field(default_factory=dict)
    _number: int = 0

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def say(self, text: str) -> None:
        if self.echo:
            print(text, flush=True)

    @contextlib.contextmanager
    def step(self, name: str, what: str) -> Iterator[logging.Logger]:
        """Run one step: announce it, capture its logging in its log file, time it, wrap failures."""
        self._number += 1
        number = self._number
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_path(name)
        path.write_text(f"step {number}/{self.total} {name}: {what}\n", encoding="utf-8")
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        handler.setLevel(logging.DEBUG)
        root = logging.getLogger()
        root.addHandler(handler)
        log = logging.getLogger(f"vqedit.demo.{name}")
        self.say(f"[{number}/{self.total}] {name}: {what}")
        t0 = time.perf_counter()
        try:
            yield log
        except BaseException as exc:
            seconds = time.perf_counter() - t0
            handler.flush()
            with path.open("a", encoding="utf-8") as fh:  # the traceback goes to the log, not the console
                fh.write(f"failed after {seconds:.1f} s:\n{''.join(traceback.format_exception(exc))}")
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise DemoStepFailed(number, name, _reason(exc), path) from exc
        finally:
            handler.flush()
            root.removeHandler(handler)
            handler.close()
        seconds = time.perf_counter() - t0
        self.timings[name] = round(seconds, 2)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"done in {seconds:.1f} s\n")
        self.say(f"      {name} done in {seconds:.1f} s")
