"""``vqedit render`` on the real tiny trained shot: composites and RGBA passes, plate bit for bit outside the
alpha, edit-only touches only the alpha, data windows and frame numbers kept, display encoding for PNG,
the ``--server`` path equal to the in-process one, and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from server_fixtures import ServerProcess

from vq_models.cli import main
from vq_models.io.colour import convert
from vq_models.io.images import read_image, write_image
from vq_models.runtime import ShotModel

HALF = dict(atol=2e-3, rtol=2e-3)
FRAMES = (1002, 1004)


@pytest.fixture(scope="module")
def model(tiny_shot: Path) -> ShotModel:
    return ShotModel.load(tiny_shot)


@pytest.fixture(scope="module")
def edits_file(tmp_path_factory, model) -> Path:
    """A real label edit: the most common face code at the first frame becomes another code."""
    labels = model.label_map(FRAMES[0])
    code = int(np.argmax(np.bincount(labels[labels > 0].ravel(), minlength=model.num_codes)))
    program = {"version": 1, "edits": [{"op": "replace", "code": code, "to": code % (model.num_codes - 1) + 1,
                                        "value": 1}]}
    path = tmp_path_factory.mktemp("edits") / "edit.json"
    path.write_text(json.dumps(program))
    return path


def _render(tiny_shot: Path, out: Path, *extra: str) -> None:
    assert main(["render", str(tiny_shot), "--out", str(out), "--frames", f"{FRAMES[0]}-{FRAMES[1]}x2",
                 "--no-progress", *extra]) == 0


def test_identity_render_with_passes(tiny_shot, model, tmp_path, capsys):
    _render(tiny_shot, tmp_path / "out" / "frame.%04d.exr", "--passes", "--feather", "4")
    assert "2 frame(s) (identity)" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").glob("*.exr")) == [f"frame.{f}.exr" for f in FRAMES]
    for f in FRAMES:
        plate = read_image(model.shot.plate["source"] % f)
        comp = read_image(tmp_path / "out" / f"frame.{f:04d}.exr")
        rgba = read_image(tmp_path / "out" / "rgba" / f"frame.{f:04d}.exr")
        assert comp.data_window == plate.data_window and comp.colorspace == "lin_rec709"
        assert rgba.channels == ["R", "G", "B", "A"] and rgba.display_window == plate.display_window
        expect = model.render_frame(f, None, feather=4.0, mode="identity")
        np.testing.assert_allclose(comp.pixels, expect.composite(plate).pixels, **HALF)
        assert rgba.data_window == expect.alpha_box()  # the pass carries the render's bounding box
        np.testing.assert_allclose(rgba.full_frame(), expect.rgba, **HALF)
        outside = rgba.full_frame()[..., 3] == 0
        assert 0.02 < (~outside).mean() < 0.9  # the face, not the whole frame
        assert np.array_equal(comp.pixels[outside], plate.pixels[outside])  # bit for bit
        assert np.abs(comp.pixels[~outside] - plate.pixels[~outside]).max() > 1e-3


def test_edit_only_changes_only_inside_alpha(tiny_shot, model, edits_file, tmp_path):
    _render(tiny_shot, tmp_path / "edit" / "frame.%04d.exr", "--edits", str(edits_file), "--passes")
    _render(tiny_shot, tmp_path / "ident" / "frame.%04d.exr", "--passes")
    for f in FRAMES:
        plate = read_image(model.shot.plate["source"] % f)
        comp = read_image(tmp_path / "edit" / f"frame.{f:04d}.exr")
        alpha = read_image(tmp_path / "edit" / "rgba" / f"frame.{f:04d}.exr").full_frame()[..., 3]
        face = read_image(tmp_path / "ident" / "rgba" / f"frame.{f:04d}.exr").full_frame()[..., 3]
        differs = np.any(comp.pixels != plate.pixels, axis=2)
        assert differs.any() and not differs[alpha == 0].any()
        assert 0 < (alpha > 0).sum() < (face > 0).sum()  # only the edited region, not the whole face


def test_plate_data_window_and_png_display_encoding(tiny_shot, model, tmp_path):
    window = (4, 2, 80, 90)
    for f in FRAMES:
        full = read_image(model.shot.plate["source"] % f).full_frame()
        x, y, w, h = window
        write_image(tmp_path / "plate" / f"p.{f:04d}.exr", full[y:y + h, x:x + w], data_window=window,
                    display_window=tuple(model.plate_info["display_window"]), colorspace="lin_rec709", dtype="float")
    plate_pattern = str(tmp_path / "plate" / "p.%04d.exr")
    _render(tiny_shot, tmp_path / "exr" / "c.%04d.exr", "--plate", plate_pattern)
    _render(tiny_shot, tmp_path / "png" / "c.####.png", "--plate", plate_pattern)
    for f in FRAMES:
        comp = read_image(tmp_path / "exr" / f"c.{f:04d}.exr")
        assert comp.data_window == window and comp.display_window == tuple(model.plate_info["display_window"])
        png = read_image(tmp_path / "png" / f"c.{f:04d}.png")
        assert png.colorspace == "sRGB" and png.bit_depth == "uint8"
        srgb = np.clip(convert(comp.full_frame(), "lin_rec709", "sRGB"), 0, 1)
        np.testing.assert_allclose(png.pixels, srgb, atol=1.5 / 255)


def test_server_render_equals_in_process(tiny_shot, edits_file, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny").symlink_to(tiny_shot.resolve(), target_is_directory=True)
    server = ServerProcess(models, "--workers", "2")
    try:
        _render(tiny_shot, tmp_path / "local" / "f.%04d.exr", "--edits", str(edits_file), "--passes", "--feather", "3")
        _render(tiny_shot, tmp_path / "farm" / "f.%04d.exr", "--edits", str(edits_file), "--passes", "--feather", "3",
                "--server", server.address, "--model", "tiny", "--chunk", "2")
    finally:
        server.stop()
    for f in FRAMES:
        for sub in ("", "rgba/"):
            local = read_image(tmp_path / "local" / f"{sub}f.{f:04d}.exr")
            farm = read_image(tmp_path / "farm" / f"{sub}f.{f:04d}.exr")
            assert farm.data_window == local.data_window and farm.display_window == local.display_window
            np.testing.assert_allclose(farm.pixels, local.pixels, **HALF)
        assert np.abs(local.pixels[..., 3]).max() > 0.5  # the edit really shows in the pass


def test_errors_are_one_line(tiny_shot, tmp_path, capsys):
    def error(*argv: str) -> str:
        assert main(["render", *argv, "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("vqedit render: error:") and "\n" not in err and "Traceback" not in err
        return err

    out = str(tmp_path / "o" / "f.%04d.exr")
    assert "not a shot directory" in error(str(tmp_path / "nowhere"), "--out", out)
    assert "990-1000 not in shot" in error(str(tiny_shot), "--out", out, "--frames", "990-1002")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "edits": [{"op": "replace", "code": 99, "to": 1, "value": 1}]}))
    assert "edits[0].code" in error(str(tiny_shot), "--out", out, "--edits", str(bad))
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    for name in ("shot.json", "transforms.json"):
        shutil.copy(tiny_shot / name, untrained / name)
    assert "no Stage I model" in error(str(untrained), "--out", out)
    assert "frame number" in error(str(tiny_shot), "--out", str(tmp_path / "o" / "f.exr"))
    assert not (tmp_path / "o").exists()  # nothing half-written
    # a write that fails on the background writer still ends the task with one line naming the file
    (tmp_path / "file").write_text("not a folder")
    assert "file/f.1001.exr" in error(str(tiny_shot), "--out", str(tmp_path / "file" / "f.%04d.exr"), "--frames", "1001-1003")
