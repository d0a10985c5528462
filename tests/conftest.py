"""Shared test fixtures. Tests run for real: real files, real sockets on loopback, real training steps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

REPO = Path(__file__).resolve().parents[1]
CLIPS = REPO.parent / "shared" / "clips"


@pytest.fixture(scope="session")
def clips_dir() -> Path:
    """The real talking-head clips in ../shared/clips (skipped, saying why, where absent)."""
    if not (CLIPS / "lp_d0.mp4").is_file():
        pytest.skip(f"real clips not found at {CLIPS} (../shared/clips is only present beside the repo)")
    return CLIPS
