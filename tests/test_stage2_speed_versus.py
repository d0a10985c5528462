"""benchmarks/stage2_speed.py --versus: two step configs timed on one network in alternating blocks."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "stage2_speed.py"
_spec = importlib.util.spec_from_file_location("stage2_speed", _PATH)
speed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(speed)


def _args(tmp_path: Path, versus: list[str]) -> argparse.Namespace:
    return argparse.Namespace(preset="tiny", overrides=["lambda_adv=0"], versus=versus, threads=1, out=str(tmp_path / "shot"),
                              frames=12, label_size=32, device="cpu", iterations=2, blocks=2)


def test_versus_times_both_configs_and_reports_their_ratio(tmp_path: Path):
    report = speed.versus(_args(tmp_path, ["lambda_ssim=1.0"]))
    base, other = report["seconds_per_step"]["base"], report["seconds_per_step"]["versus"]
    assert base > 0 and other > 0
    assert report["ratio_versus_to_base"] == pytest.approx(other / base, rel=0.01)
    assert report["blocks"] == 2 and report["versus"] == ["lambda_ssim=1.0"]


def test_versus_refuses_knobs_that_change_the_networks(tmp_path: Path):
    with pytest.raises(SystemExit, match="ch_max"):
        speed.versus(_args(tmp_path, ["ch_max=64"]))
