"""Writes on a background thread, so a farm render encodes frame N while it renders frame N+1."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class BackgroundWrites:
    """Runs write calls in order on one background thread, at most ``depth`` waiting at a time.

    Why: writing a compressed 4K EXR costs about as much as rendering the frame, and OpenImageIO releases the
    GIL while it encodes, so the next frame's read and render overlap the write. ``depth`` bounds the
    frames held in memory. A failed write raises at the next :meth:`submit` or at :meth:`close`, so a farm
    task fails on it (every write is atomic: no half-written file is left)."""

    def __init__(self, depth: int = 1):
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.depth = int(depth)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vqedit-write")
        self._pending: deque[Future[Any]] = deque()

    def submit(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue ``write(*args, **kwargs)``; waits while more than ``depth`` writes are queued."""
        self._pending.append(self._pool.submit(write, *args, **kwargs))
        while len(self._pending) > self.depth:
            self._pending.popleft().result()

    def pending(self) -> int:
        """Writes queued or running."""
        return sum(not f.done() for f in self._pending)

    def close(self) -> None:
        """Wait for every queued write; the first failure raises."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> BackgroundWrites:
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        if exc_type is None:
            self.close()
            return
        # the caller failed: let queued writes finish (each is atomic), keep the caller's error
        for future in self._pending:
            future.exception()
        self._pending.clear()
        self._pool.shutdown(wait=True)
