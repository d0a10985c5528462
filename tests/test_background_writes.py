"""The farm render's background writer: order kept, a bounded queue, failures raised where the caller sees
them, and a caller's own error never lost behind queued writes."""

from __future__ import annotations

import threading
import time

import pytest

from vq_models.io.background import BackgroundWrites


def test_writes_run_in_order_off_the_callers_thread():
    done, threads = [], set()

    def write(i):
        time.sleep(0.01)
        threads.add(threading.current_thread().name)
        done.append(i)

    with BackgroundWrites(depth=2) as writes:
        for i in range(6):
            writes.submit(write, i)
    assert done == list(range(6))
    assert threads and all(name.startswith("vqedit-write") for name in threads)


def test_the_queue_is_bounded():
    """depth=1: one write runs while the caller renders; the next submit waits for it, so at most two
    frames are held."""
    release = threading.Event()
    started = []

    def write(i):
        started.append(i)
        release.wait(5)

    writes = BackgroundWrites(depth=1)
    writes.submit(write, 0)
    assert not release.is_set() and writes.pending() == 1  # the caller goes on while frame 0 is written
    second = threading.Thread(target=writes.submit, args=(write, 1))
    second.start()
    time.sleep(0.2)
    assert second.is_alive() and started == [0]  # waits for frame 0
    release.set()
    second.join(5)
    assert not second.is_alive()
    writes.close()
    assert started == [0, 1]


def test_a_failed_write_raises_at_the_next_submit_or_at_close():
    def fail(i):
        raise OSError(f"disk full at {i}")

    writes = BackgroundWrites(depth=1)
    writes.submit(fail, 0)
    with pytest.raises(OSError, match="disk full at 0"):
        writes.submit(lambda: None)
        writes.submit(lambda: None)
    writes.close()
    last = BackgroundWrites()
    last.submit(fail, 7)
    with pytest.raises(OSError, match="disk full at 7"):
        last.close()


def test_the_callers_error_wins_and_queued_writes_finish():
    done = []
    with pytest.raises(KeyError, match="render failed"):
        with BackgroundWrites(depth=2) as writes:
            writes.submit(lambda: (time.sleep(0.05), done.append(1)))
            writes.submit(lambda: (_ for _ in ()).throw(OSError("later")))
            raise KeyError("render failed")
    assert done == [1]
    with pytest.raises(ValueError):
        BackgroundWrites(depth=0)
