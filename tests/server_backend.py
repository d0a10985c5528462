"""The real shot model with an artificial delay, for the two server tests that need a long request.

A tiny trained model renders in milliseconds, too fast to show that ``ping`` is not queued behind a
render or that SIGTERM answers in-flight requests. ``load`` is the real ``ShotModel.load``; a model
folder holding ``delay_s.txt`` gets that many seconds of sleep added to each ``render_window`` call.
Nothing else is faked.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from vq_models.runtime import ShotModel


def load(shot_dir: str | Path, device: str = "cpu") -> Any:
    model = ShotModel.load(shot_dir, device)
    marker = Path(shot_dir) / "delay_s.txt"
    if marker.is_file():
        delay = float(marker.read_text())
        render = model.render_window

        def slow_render_window(labels: Any) -> Any:
            time.sleep(delay)
            return render(labels)

        model.render_window = slow_render_window  # type: ignore[method-assign]
    return model
