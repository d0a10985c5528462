"""Flush-to-zero for training, and the guarantee that it is off again afterwards.

Why: late in training, tiny activations become denormal floats and slow CPU convolutions several-fold, so
the trainers turn flush-to-zero on. It is a process-wide CPU flag, and MediaPipe's XNNPack graphs, built
later in the same process (prep in the demo), fail to prepare under it; so every trainer entry point
turns it off again on the way out, however the run ends.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import torch

P = ParamSpec("P")
R = TypeVar("R")


def turns_flush_to_zero_off_after(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a training entry point: flush-to-zero is off again when it returns or raises."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_flush_denormal(False)

    return wrapper
