"""Progress and scalars for long training runs.

A tqdm bar tells the person at the terminal how far along the run is; a TensorBoard event file keeps the
curves for later. Only rank 0 writes (``enabled=False`` elsewhere) so a DDP run has one bar, one log.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

log = logging.getLogger("vqedit.train")


class TrainLogger:
    """tqdm progress bar + ``torch.utils.tensorboard.SummaryWriter``; a one-line summary at close."""

    def __init__(self, log_dir, total_steps: int, desc: str, start_step: int = 0, enabled: bool = True,
                 progress: bool = True):
        self.enabled = bool(enabled)
        self.desc = desc
        self.total_steps = int(total_steps)
        self.start_step = int(start_step)
        self.last_step = int(start_step)
        self.last_scalars: dict[str, float] = {}
        self._t0 = time.monotonic()
        self._writer = None
        self._bar = None
        if not self.enabled:
            return
        # deferred on purpose: TensorBoard's import is heavy (protobuf, its plugins) and only an enabled logger,
        # rank 0, writes events
        from torch.utils.tensorboard import SummaryWriter

        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(log_dir=str(log_dir))
        # progress=False (demo --no-progress, farm logs): no bar, but TensorBoard and the summary line stay
        self._bar = tqdm(total=self.total_steps, initial=self.start_step, desc=desc, dynamic_ncols=True, leave=True,
                         disable=not progress)

    def log(self, step: int, scalars: dict[str, float]) -> None:
        """Record scalars at ``step`` and advance the bar to ``step``."""
        values = {k: float(v) for k, v in scalars.items()}
        self.last_scalars.update(values)
        if not self.enabled:
            self.last_step = max(self.last_step, int(step))
            return
        for key, value in values.items():
            self._writer.add_scalar(key, value, int(step))
        if step > self.last_step:
            self._bar.update(int(step) - self.last_step)
            self.last_step = int(step)
        shown = {k: f"{v:.4g}" for k, v in list(values.items())[:4]}
        self._bar.set_postfix(shown, refresh=False)

    def image(self, step: int, tag: str, img_hwc_uint8) -> None:
        """Log an (H, W, 3) uint8 image (e.g. target | render) for a person to look at."""
        if not self.enabled:
            return
        arr = np.asarray(img_hwc_uint8)
        if arr.dtype != np.uint8:
            arr = (np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        if arr.ndim == 2:
            arr = arr[..., None].repeat(3, axis=2)
        self._writer.add_image(tag, arr, int(step), dataformats="HWC")

    def close(self) -> None:
        """Flush the event file, close the bar and print one summary line."""
        elapsed = time.monotonic() - self._t0
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
        done = self.last_step - self.start_step
        rate = done / elapsed if elapsed > 0 else 0.0
        last = ", ".join(f"{k}={v:.4g}" for k, v in self.last_scalars.items())
        print(f"{self.desc}: {self.last_step}/{self.total_steps} steps in {elapsed:.1f}s ({rate:.2f} it/s); {last}")

    def __enter__(self) -> TrainLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
