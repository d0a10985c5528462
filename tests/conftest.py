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


# --- a real, tiny, trained shot ---------------------------------------------------------------------
TINY_FRAMES = 16
TINY_PLATE = 96
TINY_CROP = 64
TINY_STAGE2_ITERS = 12


def build_tiny_shot(root: Path) -> Path:
    """synth → prep (with the synthetic tracking) → Stage I tiny → Stage II tiny → prior --auto, through
    the real ``vqedit`` command line in this process. Returns the shot directory (``root/shot``)."""
    import torch

    from vq_models.cli import main

    torch.set_num_threads(2)
    synth, shot = root / "synth", root / "shot"
    steps = [
        ["synth", str(synth), "--frames", str(TINY_FRAMES), "--size", str(TINY_PLATE), "--no-progress"],
        ["prep", str(synth / "plate" / "frame.%04d.exr"), "--tracking", str(synth / "tracking.json"),
         "--out", str(shot), "--size", str(TINY_CROP)],
        ["train", str(shot), "--stage", "1", "--preset", "tiny"],
        ["train", str(shot), "--stage", "2", "--preset", "tiny", "--iters", str(TINY_STAGE2_ITERS)],
        ["prior", str(shot), "--auto"],
    ]
    for argv in steps:
        rc = main(argv)
        if rc != 0:
            raise RuntimeError(f"building the tiny shot: `vqedit {' '.join(argv)}` exited {rc}")
    return shot


@pytest.fixture(scope="session")
def tiny_shot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ONE real tiny trained shot per test session (16 frames, 96² plate, 64² crops, Stage I + II tiny,
    auto prior), built once and shared by every test that asks for it. Treat it as read-only: tests that
    change it (e.g. the prior) copy it first.

    ``VQEDIT_TEST_TINY_SHOT=DIR`` reuses (or, when DIR is empty, builds once into) a shot kept between
    sessions — for development only; a normal run always trains a fresh one.
    """
    keep = os.environ.get("VQEDIT_TEST_TINY_SHOT")
    if keep:
        root = Path(keep)
        if (root / "shot" / "stage2" / "meta.json").is_file() and (root / "shot" / "prior.json").is_file():
            return root / "shot"
        root.mkdir(parents=True, exist_ok=True)
        return build_tiny_shot(root)
    return build_tiny_shot(tmp_path_factory.mktemp("tiny_shot"))
