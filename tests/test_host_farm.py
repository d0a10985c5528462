"""EditNode and the headless farm render through a real server equal the in-process render + composite."""

from __future__ import annotations

import numpy as np
import pytest
from server_fixtures import backend_factory, server, shot_models_dir  # noqa: F401

from host_plugin.farm import parse_frames, render_range, split_chunks
from host_plugin.node import EditKnobs, EditNode, Plate, composite_over, value_at
from render_server.exr import read_exr, write_exr
from vq_models.errors import InputError

PROGRAM = {"version": 1, "edits": [{"op": "replace", "code": 4, "to": 6, "keys": [[1, 0.0], [2, 1.0]], "interp": "step"}]}


def _plate(seed: int, window=(4, 2, 30, 24)) -> Plate:
    px = np.random.default_rng(seed).uniform(0, 2, (window[3], window[2], 3)).astype(np.float32)
    return Plate(px, window, (0, 0, 40, 30), "lin_rec709")


def _in_process(model, frame, plate: Plate, mix=1.0, feather=3.0, program=PROGRAM):
    fr = model.render_frame(frame, program, feather=feather, mode="identity")
    return composite_over(fr.rgba, fr.data_window, plate.pixels, plate.data_window, mix)


def test_composite_keeps_plate_outside_alpha():
    plate = np.random.default_rng(1).uniform(0, 5, (10, 12, 4)).astype(np.float32)
    render = np.zeros((6, 6, 4), np.float32)
    render[2:4, 2:4] = [0.2, 0.3, 0.4, 0.5]
    out = composite_over(render, (3, 1, 6, 6), plate, (0, 0, 12, 10), mix=1.0)
    untouched = np.ones((10, 12), bool)
    untouched[3:5, 5:7] = False
    assert np.array_equal(out[untouched], plate[untouched])  # bit for bit
    np.testing.assert_allclose(out[3, 5, :3], [0.2, 0.3, 0.4] + 0.5 * plate[3, 5, :3], rtol=1e-6)
    half = composite_over(render, (3, 1, 6, 6), plate, (0, 0, 12, 10), mix=0.5)
    np.testing.assert_allclose(half[3, 5, :3], 0.5 * np.array([0.2, 0.3, 0.4]) + 0.75 * plate[3, 5, :3], rtol=1e-6)


def test_value_at_interpolates_and_holds():
    anim = {"keys": [[10, 0.0], [20, 1.0]]}
    assert value_at(anim, 5) == 0.0 and value_at(anim, 15) == 0.5 and value_at(anim, 30) == 1.0
    assert value_at(3.0, 99) == 3.0


def test_node_evaluate_equals_in_process(server, shot_models_dir, backend_factory):  # noqa: F811
    model = backend_factory(shot_models_dir / "beta")
    node = EditNode(EditKnobs(server=server.address, model="beta", edits=PROGRAM["edits"], feather=3.0,
                              mix={"keys": [[1, 1.0], [3, 0.5]]}))
    try:
        for frame in (1, 2, 3):
            plate = _plate(frame)
            res = node.evaluate(frame, plate)
            mix = value_at(node.knobs.mix, frame)
            expect = _in_process(model, frame, plate, mix)
            assert res.data_window == (4, 2, 30, 24)
            np.testing.assert_allclose(res.image, expect, rtol=1e-3, atol=1e-3)
        assert res.changed.any()  # keyframed replace is on from frame 2
        assert not node.evaluate(1, _plate(1)).changed.any()
    finally:
        node.close()


def test_node_face_knobs_make_a_valid_program():
    node = EditNode(EditKnobs(model="beta", face={"eye_open_left": {"keys": [[1, 1.0], [11, 0.0]]}, "gaze_x": 0.2}))
    prog = node.program_at(6)
    ops = {e["op"]: e for e in prog["edits"]}
    assert ops["eye_open"]["value"] == pytest.approx(0.5) and ops["gaze"]["value"] == [0.2, 0.0]
    assert EditNode(EditKnobs(model="beta", face={"eye_open_left": 1.0})).program_at(1) is None
    with pytest.raises(InputError):
        EditNode(EditKnobs(model="beta", face={"eye_open_left": 9.0})).program_at(1)  # out of range 0..1
    with pytest.raises(InputError, match="unknown"):
        EditNode(EditKnobs(model="beta", face={"nostrils": 1.0})).program_at(1)


def test_farm_render_range_equals_in_process(server, shot_models_dir, backend_factory, tmp_path):  # noqa: F811
    model = backend_factory(shot_models_dir / "beta")
    plates = {f: _plate(10 + f) for f in (1, 2, 3)}
    for f, p in plates.items():
        write_exr(tmp_path / f"plate.{f:04d}.exr", p.pixels, ("R", "G", "B"), p.data_window, p.display_window, half=False)
    report = render_range(server.address, "beta", "1-3", str(tmp_path / "out" / "{pass}.%04d.exr"), program=PROGRAM,
                          feather=3.0, chunk=2, passes=("comp", "render"), plate_source=str(tmp_path / "plate.%04d.exr"),
                          progress=False)
    assert report.frames == [1, 2, 3] and report.chunks == 2 and len(report.outputs["comp"]) == 3
    for f in (1, 2, 3):
        comp = read_exr(tmp_path / "out" / f"comp.{f:04d}.exr")
        assert comp.data_window == (4, 2, 30, 24) and comp.display_window == (0, 0, 40, 30)
        expect = _in_process(model, f, plates[f])
        np.testing.assert_allclose(comp.pixels, expect, rtol=2e-3, atol=2e-3)  # half-float precision
        render = read_exr(tmp_path / "out" / f"render.{f:04d}.exr")
        np.testing.assert_allclose(render.pixels, model.render_frame(f, PROGRAM, feather=3.0).rgba, atol=2e-3)


def test_frame_ranges_and_bad_arguments(tmp_path):
    assert parse_frames("1001-1005,1010") == [1001, 1002, 1003, 1004, 1005, 1010]
    assert parse_frames("1-9x4") == [1, 5, 9]
    assert split_chunks(list(range(1001, 1026)), 10)[-1] == list(range(1021, 1026))
    with pytest.raises(InputError, match="1001-"):
        parse_frames("1001-")
    with pytest.raises(InputError, match="plate"):
        render_range("tcp://127.0.0.1:9", "m", "1-2", str(tmp_path / "x.%04d.exr"), passes=("comp",))
    with pytest.raises(InputError, match="pass"):
        render_range("tcp://127.0.0.1:9", "m", "1-2", str(tmp_path / "x.%04d.exr"), passes=("comp", "render"), plate_source="p")


def test_ofx_bridge_renders_like_the_node(server, shot_models_dir, backend_factory):  # noqa: F811
    from host_plugin.ofx import bridge

    assert {p["name"] for p in bridge.PARAMS} >= {"server", "model", "feather", "mix", "teeth"}
    params = {p["name"]: p["default"] for p in bridge.PARAMS} | {"server": server.address, "model": "beta", "feather": 3.0}
    src = np.random.default_rng(5).uniform(0, 1, (30, 40, 4)).astype(np.float32)
    out = bridge.render("inst1", params, 2.0, src, (0, 0, 40, 30))
    fr = backend_factory(shot_models_dir / "beta").render_frame(2, None, feather=3.0)
    np.testing.assert_allclose(out, composite_over(fr.rgba, fr.data_window, src, (0, 0, 40, 30)), atol=2e-3)
    bridge._NODES["inst1"].close()
