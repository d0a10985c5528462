"""`vqedit synth` end to end: real EXR/PNG/JSON files, frame numbers, colour, determinism, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vq_models.cli import main
from vq_models.io.colour import convert
from vq_models.io.images import read_header, read_image, read_label_map
from vq_models.synth import PARTS, WHATIFS, performance, render
from vq_models.tracking import load_tracking

ARGS = ["--frames", "3", "--size", "64", "--seed", "4", "--no-progress"]


@pytest.fixture(scope="module")
def shot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "shot"
    assert main(["synth", str(out), *ARGS]) == 0
    return out


def test_writes_linear_half_exrs_numbered_from_1001(shot_dir: Path) -> None:
    plates = sorted(p.name for p in (shot_dir / "plate").glob("*.exr"))
    assert plates == ["frame.1001.exr", "frame.1002.exr", "frame.1003.exr"]
    header = read_header(shot_dir / "plate" / "frame.1002.exr")
    assert header.bit_depth == "half"
    img = read_image(shot_dir / "plate" / "frame.1002.exr")
    assert img.colorspace == "lin_rec709" and img.pixels.shape == (64, 64, 3)
    expected = render(performance(3, seed=4)[1], 64)
    # scene-linear: back to sRGB it is the drawn frame (within half precision)
    np.testing.assert_allclose(convert(img.pixels, "lin_rec709", "sRGB"), expected.rgb, atol=4e-3)
    assert img.pixels.mean() < expected.rgb.mean()  # linear is darker than display-referred values
    assert np.array_equal(read_label_map(shot_dir / "labels" / "frame.1002.png"), expected.labels)


def test_parts_tracking_whatifs_and_preview(shot_dir: Path) -> None:
    parts = json.loads((shot_dir / "parts.json").read_text())
    assert parts == {"version": 1, "parts": {name: i for i, name in enumerate(PARTS)}}
    assert parts["parts"]["tongue"] == 14 and parts["parts"]["pupils"] == 7
    tracking = load_tracking(shot_dir / "tracking.json")
    assert tracking.frame_numbers == [1001, 1002, 1003] and tracking.image_size == (64, 64)
    assert set(tracking[1001].contours) >= {"face_oval", "left_eye", "lips_inner", "right_iris"}
    for name in WHATIFS:
        folder = shot_dir / "whatif" / name
        assert sorted(p.name for p in folder.glob("*.exr")) == [
            "frame.1001.exr",
            "frame.1002.exr",
            "frame.1003.exr",
        ]
        labels = read_label_map(folder / "labels" / "frame.1001.png")
        assert labels.shape == (64, 64)
    closed = read_label_map(shot_dir / "whatif" / "eyes_closed" / "labels" / "frame.1001.png")
    assert not np.isin(closed, (5, 6, 7)).any()
    preview = read_image(shot_dir / "preview.png").pixels
    assert preview.shape[0] == 3 * 64 and preview.std() > 0.05
    states = json.loads((shot_dir / "states.json").read_text())
    assert set(states["frames"]) == {"1001", "1002", "1003"} and "eye_open" in states["frames"]["1001"]


def test_same_seed_gives_identical_files(shot_dir: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert main(["synth", str(again), *ARGS]) == 0
    files = sorted(p.relative_to(shot_dir) for p in shot_dir.rglob("*") if p.is_file())
    assert len(files) > 20
    for rel in files:
        assert (again / rel).read_bytes() == (shot_dir / rel).read_bytes(), rel


def test_start_frame_and_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["synth", str(tmp_path / "s"), "--frames", "1", "--size", "48", "--start", "7", "--no-progress"])
        == 0
    )
    assert (tmp_path / "s" / "plate" / "frame.0007.exr").is_file()
    assert "frames/s" in capsys.readouterr().out
    assert main(["synth", str(tmp_path / "t"), "--frames", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "vqedit synth: error: --frames 0: need at least 1 frame"
    assert main(["synth", str(tmp_path / "t"), "--size", "8"]) == 2
    assert "--size 8" in capsys.readouterr().err
