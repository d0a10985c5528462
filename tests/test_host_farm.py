"""EditNode and the headless farm render through a real server (serving the real tiny trained shot) equal
the in-process render + composite; the host-side compositing wrapper keeps the plate bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from server_fixtures import backend_factory, server, shot_models_dir  # noqa: F401

from host_plugin.client import RenderClient
from host_plugin.farm import parse_frames, render_range, split_chunks
from host_plugin.knobs import value_at
from host_plugin.node import EditKnobs, EditNode, Plate, composite_over
from vq_models.errors import InputError
from vq_models.io.images import ImageData, read_image, write_image

HALF = dict(atol=2e-3, rtol=2e-3)
PLATE_WINDOW = (4, 2, 80, 90)  # a data window inside the 96² display window


@pytest.fixture(scope="module")
def model(shot_models_dir, backend_factory):  # noqa: F811
    return backend_factory(shot_models_dir / "beta")


@pytest.fixture(scope="module")
def program(model):
    """A keyframed real label edit: the most common face code becomes another from the second frame on."""
    labels = model.label_map(model.frames[0])
    code = int(np.argmax(np.bincount(labels[labels > 0].ravel(), minlength=model.num_codes)))
    f0, f1 = model.frames[:2]
    return {"version": 1, "edits": [{"op": "replace", "code": code, "to": code % (model.num_codes - 1) + 1,
                                     "keys": [[f0, 0.0], [f1, 1.0]], "interp": "step"}]}


def _plate(seed: int, model, window=PLATE_WINDOW) -> Plate:
    px = np.random.default_rng(seed).uniform(0, 2, (window[3], window[2], 3)).astype(np.float32)
    return Plate(px, window, tuple(model.plate_info["display_window"]), "lin_rec709")


def _in_process(model, frame, plate: Plate, program, mix=1.0, feather=3.0, mode="identity"):
    fr = model.render_frame(frame, program, feather=feather, mode=mode)
    return composite_over(fr.rgba, fr.rgba_window, plate.pixels, plate.data_window, mix)


def test_composite_keeps_plate_outside_alpha():
    plate = np.random.default_rng(1).uniform(0, 5, (10, 12, 4)).astype(np.float32)
    render = np.zeros((6, 6, 4), np.float32)
    render[2:4, 2:4] = [0.2, 0.3, 0.4, 0.5]
    out = composite_over(render, (3, 1, 6, 6), plate, (0, 0, 12, 10), mix=1.0)
    untouched = np.ones((10, 12), bool)
    untouched[3:5, 5:7] = False
    assert np.array_equal(out[untouched], plate[untouched])  # bit for bit
    assert np.array_equal(out[..., 3], plate[..., 3])  # the plate's own alpha is the plate's
    np.testing.assert_allclose(out[3, 5, :3], [0.2, 0.3, 0.4] + 0.5 * plate[3, 5, :3], rtol=1e-6)
    half = composite_over(render, (3, 1, 6, 6), plate, (0, 0, 12, 10), mix=0.5)
    np.testing.assert_allclose(half[3, 5, :3], 0.5 * np.array([0.2, 0.3, 0.4]) + 0.75 * plate[3, 5, :3], rtol=1e-6)


def _merge_over_reference(render, rwin, plate, pwin, mix):
    """Merge (over) written out pixel by pixel in float32, the plate selected wherever the alpha is 0."""
    out = plate.copy()
    c = min(3, plate.shape[2])
    for y in range(plate.shape[0]):
        for x in range(plate.shape[1]):
            ry, rx = y + pwin[1] - rwin[1], x + pwin[0] - rwin[0]
            if not (0 <= ry < render.shape[0] and 0 <= rx < render.shape[1]):
                continue
            px = render[ry, rx].astype(np.float32)
            a = px[3] * np.float32(mix)
            if a > 0:
                blend = plate[y, x, :c].astype(np.float32) * (np.float32(1) - a) + px[:c] * np.float32(mix)
                out[y, x, :c] = blend.astype(plate.dtype)
    return out


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("plate_dtype", [np.float32, np.float16])
@pytest.mark.parametrize("payload_dtype", [np.float16, np.float32])
def test_composite_over_matches_merge_for_every_layout(channels, plate_dtype, payload_dtype):
    """The vectorised host composite (rows flattened over all plate channels, half floats through a table)
    equals Merge over pixel by pixel for 1/3/4-channel plates, half and float payloads and plates, mix, a
    render box hanging off the plate's data window, and keeps -0.0 and the plate's alpha bit for bit."""
    rng = np.random.default_rng(channels)
    render = rng.uniform(0, 1, (9, 7, 4)).astype(np.float32)
    render[..., 3] = np.where(rng.uniform(0, 1, (9, 7)) < 0.3, 0.0, render[..., 3])
    render[..., :3] *= render[..., 3:]
    render = render.astype(payload_dtype)
    plate = rng.uniform(-1, 2, (10, 12, channels)).astype(plate_dtype)
    plate[0, :] = -0.0  # a graded plate may hold negative zeros: outside the alpha they stay negative
    for rwin, pwin in (((3, 1, 7, 9), (0, 0, 12, 10)), ((-2, 4, 7, 9), (1, 2, 12, 10))):
        for mix in (1.0, 0.4):
            got = composite_over(render, rwin, plate, pwin, mix)
            want = _merge_over_reference(render, rwin, plate, pwin, mix)
            assert got.dtype == plate.dtype and got.tobytes() == want.tobytes(), (rwin, mix)


def test_composite_over_in_row_bands_equals_one_band(monkeypatch):
    """A box big enough for the thread pool gives the same bytes as one band on one thread."""
    import host_plugin.node as node

    rng = np.random.default_rng(5)
    render = rng.uniform(0, 1, (420, 400, 4)).astype(np.float16)
    plate = rng.uniform(0, 1, (512, 512, 3)).astype(np.float32)
    monkeypatch.setattr(node, "_COMPOSITE_THREADS", 2)
    banded = composite_over(render, (50, 40, 400, 420), plate, (0, 0, 512, 512), 0.8)
    monkeypatch.setattr(node, "_COMPOSITE_THREADS", 1)
    assert banded.tobytes() == composite_over(render, (50, 40, 400, 420), plate, (0, 0, 512, 512), 0.8).tobytes()


def test_host_composite_equals_the_cli_composite(model, program):
    """The host wrapper (premultiplied render + windows) and FrameRender.composite (the CLI) agree."""
    frame = model.frames[2]
    plate = _plate(9, model)
    fr = model.render_frame(frame, program, feather=3.0, mode="edit-only")
    host = composite_over(fr.rgba, fr.rgba_window, plate.pixels, plate.data_window)
    cli = fr.composite(ImageData(plate.pixels, ["R", "G", "B"], plate.data_window, plate.display_window,
                                 colorspace="lin_rec709"))
    assert cli.data_window == PLATE_WINDOW
    np.testing.assert_allclose(host, cli.pixels, atol=1e-5)
    dx, dy = PLATE_WINDOW[:2]
    outside = fr.alpha[dy:dy + PLATE_WINDOW[3], dx:dx + PLATE_WINDOW[2]] == 0
    assert outside.any() and (~outside).any()
    assert np.array_equal(cli.pixels[outside], plate.pixels[outside])


def test_value_at_interpolates_and_holds():
    anim = {"keys": [[10, 0.0], [20, 1.0]]}
    assert value_at(anim, 5) == 0.0 and value_at(anim, 15) == 0.5 and value_at(anim, 30) == 1.0
    assert value_at(3.0, 99) == 3.0


def test_node_evaluate_equals_in_process(server, model, program):  # noqa: F811
    f0, f1, f2 = model.frames[:3]
    node = EditNode(EditKnobs(server=server.address, model="beta", edits=program["edits"], feather=3.0,
                              mix={"keys": [[f0, 1.0], [f2, 0.5]]}))
    try:
        for frame in (f0, f1, f2):
            plate = _plate(frame, model)
            res = node.evaluate(frame, plate)
            mix = value_at(node.knobs.mix, frame)
            assert res.data_window == PLATE_WINDOW
            np.testing.assert_allclose(res.image, _in_process(model, frame, plate, program, mix), **HALF)
            assert not np.array_equal(res.image, plate.pixels)  # the face really was rendered in
        assert res.changed.any()  # the keyframed replace is on from the second frame
        assert not node.evaluate(f0, _plate(1, model)).changed.any()
    finally:
        node.close()


def test_node_face_knobs_make_a_valid_program():
    node = EditNode(EditKnobs(model="beta", face={"eye_open_left": {"keys": [[1, 1.0], [11, 0.0]]}, "gaze_x": 0.2}))
    prog = node.program_at(6)
    ops = {e["op"]: e for e in prog["edits"]}
    assert ops["eye_open"]["value"] == pytest.approx(0.5) and ops["gaze"]["value"] == [0.2, 0.0]
    assert EditNode(EditKnobs(model="beta", face={"eye_open_left": 1.0})).program_at(1) is None
    # the thin node does not import the models: the server validates (bad_program), with the same parser
    from vq_models.edits.program import parse_program

    with pytest.raises(InputError, match="out of range"):
        parse_program(EditNode(EditKnobs(model="beta", face={"eye_open_left": 9.0})).program_at(1))
    with pytest.raises(InputError, match="unknown"):
        EditNode(EditKnobs(model="beta", face={"nostrils": 1.0})).program_at(1)


def test_teeth_fill_knobs_become_the_teeth_edits_per_row_fill():
    knobs = {"teeth": 0.0, "teeth_fill_upper": " 12 ", "teeth_fill_lower": "tongue"}
    (teeth,) = EditNode(EditKnobs(model="beta", face=knobs)).program_at(1)["edits"]
    assert teeth["op"] == "teeth" and teeth["fill"] == {"upper": 12, "lower": "tongue"}
    (teeth,) = EditNode(EditKnobs(model="beta", face={"teeth": 0.5, "teeth_fill_lower": ""})).program_at(1)["edits"]
    assert "fill" not in teeth  # an empty knob keeps the prior's default
    assert EditNode(EditKnobs(model="beta", face={"teeth_fill_upper": "12"})).program_at(1) is None  # no teeth edit
    from vq_models.edits.program import parse_program

    with pytest.raises(InputError, match=r"fill\.upper.*unknown segment 'gums'"):
        parse_program(EditNode(EditKnobs(model="beta", face={"teeth": 0.0, "teeth_fill_upper": "gums"})).program_at(1))


def test_pull_checkboxes_ask_their_ops_to_move_the_frames_own_part():
    """pull_lids adds ``"pull": true`` to both eyes' eye_open edits, pull_lip to mouth_open; neither touches
    other ops, neither sends an edit on its own, and any checkbox spelling a host sends is read (or named)."""
    from vq_models.edits.program import parse_program

    knobs = {"eye_open_left": 0.6, "eye_open_right": 0.7, "mouth_open": 1.3, "teeth": 0.0, "pull_lids": True}
    prog = EditNode(EditKnobs(model="beta", face=knobs)).program_at(1)
    pulled = {(e["op"], e.get("eye")): e.get("pull", False) for e in prog["edits"]}
    assert pulled == {("eye_open", "left"): True, ("eye_open", "right"): True, ("mouth_open", None): False,
                      ("teeth", None): False}
    for lip in (1, "on", "true", 1.0):  # OFX sends an int, a program file may say true/on
        (mouth,) = EditNode(EditKnobs(model="beta", face={"mouth_open": 1.3, "pull_lip": lip})).program_at(1)["edits"]
        assert mouth == {"op": "mouth_open", "value": 1.3, "pull": True}
    (mouth,) = EditNode(EditKnobs(model="beta", face={"mouth_open": 1.3, "pull_lip": 0})).program_at(1)["edits"]
    assert "pull" not in mouth
    assert EditNode(EditKnobs(model="beta", face={"pull_lids": True, "pull_lip": True})).program_at(1) is None
    parse_program(prog)  # the server's parser takes what the knobs make
    with pytest.raises(InputError, match="pull_lip knob: 'maybe'"):
        EditNode(EditKnobs(model="beta", face={"mouth_open": 1.3, "pull_lip": "maybe"})).program_at(1)


def test_gaze_from_the_shot_checkbox_asks_gaze_to_borrow():
    """gaze_borrow adds ``"borrow": true`` to the gaze edit and to nothing else; alone it sends nothing."""
    from vq_models.edits.program import parse_program

    face = {"gaze_x": -0.2, "eye_open_left": 0.5, "pull_lids": True, "gaze_borrow": "on"}
    prog = EditNode(EditKnobs(model="beta", face=face)).program_at(1)
    by_op = {e["op"]: e for e in prog["edits"]}
    assert by_op["gaze"] == {"op": "gaze", "eye": "both", "value": [-0.2, 0.0], "borrow": True}
    assert by_op["eye_open"].get("pull") is True and "borrow" not in by_op["eye_open"]
    assert parse_program(prog).edits[-1].params["borrow"] is True  # the server's parser takes it
    (plain,) = EditNode(EditKnobs(model="beta", face={"gaze_x": -0.2})).program_at(1)["edits"]
    assert "borrow" not in plain
    assert EditNode(EditKnobs(model="beta", face={"gaze_borrow": True})).program_at(1) is None


def test_mouth_from_the_shot_checkbox_asks_mouth_open_to_borrow():
    """mouth_borrow adds ``"borrow": true`` to the mouth_open edit only, beside its pull; alone it sends nothing."""
    from vq_models.edits.program import parse_program

    face = {"mouth_open": 1.6, "gaze_x": 0.1, "pull_lip": True, "mouth_borrow": True}
    prog = EditNode(EditKnobs(model="beta", face=face)).program_at(1)
    by_op = {e["op"]: e for e in prog["edits"]}
    assert by_op["mouth_open"] == {"op": "mouth_open", "value": 1.6, "pull": True, "borrow": True}
    assert "borrow" not in by_op["gaze"]
    parsed = {e.op: e for e in parse_program(prog).edits}
    assert parsed["mouth_open"].params["borrow"] is True  # the server's parser takes it
    assert EditNode(EditKnobs(model="beta", face={"mouth_borrow": True})).program_at(1) is None


def test_farm_render_range_equals_in_process(server, model, program, tmp_path):  # noqa: F811
    frames = model.frames[:3]
    plates = {f: _plate(10 + f, model) for f in frames}
    for f, p in plates.items():
        write_image(tmp_path / f"plate.{f:04d}.exr", p.pixels, data_window=p.data_window,
                    display_window=p.display_window, dtype="float", colorspace="lin_rec709")
    span = f"{frames[0]}-{frames[-1]}"
    report = render_range(server.address, "beta", span, str(tmp_path / "out" / "{pass}.%04d.exr"), program=program,
                          feather=3.0, chunk=2, passes=("comp", "render"), plate_source=str(tmp_path / "plate.%04d.exr"),
                          progress=False)
    assert report.frames == frames and report.chunks == 2 and len(report.outputs["comp"]) == 3
    for f in frames:
        comp = read_image(tmp_path / "out" / f"comp.{f:04d}.exr")
        assert comp.data_window == PLATE_WINDOW and comp.display_window == plates[f].display_window
        np.testing.assert_allclose(comp.pixels, _in_process(model, f, plates[f], program), **HALF)
        render = read_image(tmp_path / "out" / f"render.{f:04d}.exr")
        np.testing.assert_allclose(render.full_frame(), model.render_frame(f, program, feather=3.0).rgba, **HALF)


class _CountingClient(RenderClient):
    """A real client that records how many requests were on the wire as each new one was sent."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outstanding, self.seen_at_submit = 0, []

    def submit(self, op, **fields):
        self.seen_at_submit.append(self.outstanding)
        self.outstanding += 1
        return super().submit(op, **fields)

    def result(self, rid):
        reply = super().result(rid)
        self.outstanding -= 1
        return reply


def test_farm_window_slides_across_chunks(server, model, tmp_path):  # noqa: F811
    """The next chunk's frames go on the wire while the last one's are still out: after the first window fills,
    every request is sent with ``chunk - 1`` others in flight, never into a drained window."""
    frames = model.frames[:5]
    client = _CountingClient(server.address, 60.0, 0)
    try:
        report = render_range(client, "beta", frames, str(tmp_path / "r.%04d.exr"), chunk=2, passes=("render",),
                              progress=False)
    finally:
        client.close()
    assert report.frames == frames and report.chunks == 3
    assert client.seen_at_submit == [0, 1, 1, 1, 1]
    assert all((tmp_path / f"r.{f:04d}.exr").stat().st_size > 0 for f in frames)


@pytest.mark.parametrize("depth", ["float", "half"])
def test_farm_writes_the_plates_pixel_type_bit_exact_outside_alpha(server, model, program, tmp_path, depth):  # noqa: F811
    """A 32-bit float plate comes back float, a half plate half; outside the alpha, bit for bit."""
    frames = model.frames[1:3]
    for f in frames:
        p = _plate(30 + f, model)
        write_image(tmp_path / f"plate.{f:04d}.exr", p.pixels, data_window=p.data_window,
                    display_window=p.display_window, dtype=depth, colorspace="lin_rec709")
    render_range(server.address, "beta", frames, str(tmp_path / "out" / "comp.%04d.exr"), program=program,
                 feather=3.0, mode="edit-only", passes=("comp",), plate_source=str(tmp_path / "plate.%04d.exr"),
                 progress=False)
    for f in frames:
        plate = read_image(tmp_path / f"plate.{f:04d}.exr")
        comp = read_image(tmp_path / "out" / f"comp.{f:04d}.exr")
        assert plate.bit_depth == comp.bit_depth == depth
        fr = model.render_frame(f, program, feather=3.0, mode="edit-only")
        dx, dy, dw, dh = PLATE_WINDOW
        outside = fr.alpha[dy:dy + dh, dx:dx + dw] == 0
        assert outside.any() and (~outside).any()
        assert np.array_equal(comp.pixels[outside].view(np.uint32), plate.pixels[outside].view(np.uint32))
        np.testing.assert_allclose(comp.pixels, _in_process(model, f, Plate(plate.pixels, PLATE_WINDOW,
                                   plate.display_window), program, mode="edit-only"), **HALF)


def test_frame_ranges_and_bad_arguments(tmp_path):
    assert parse_frames("1001-1005,1010") == [1001, 1002, 1003, 1004, 1005, 1010]
    assert parse_frames("1-9x4") == [1, 5, 9]
    assert parse_frames([3, 1, 3]) == [1, 3]
    assert split_chunks(list(range(1001, 1026)), 10)[-1] == list(range(1021, 1026))
    with pytest.raises(InputError, match="1001-"):
        parse_frames("1001-")
    with pytest.raises(InputError, match="plate"):
        render_range("tcp://127.0.0.1:9", "m", "1-2", str(tmp_path / "x.%04d.exr"), passes=("comp",))
    with pytest.raises(InputError, match="pass"):
        render_range("tcp://127.0.0.1:9", "m", "1-2", str(tmp_path / "x.%04d.exr"), passes=("comp", "render"), plate_source="p")


def test_ofx_bridge_renders_like_the_node(server, model):  # noqa: F811
    from host_plugin.ofx import bridge

    assert {p["name"] for p in bridge.PARAMS} >= {"server", "model", "feather", "mix", "teeth", "teeth_fill_upper"}
    params = {p["name"]: p["default"] for p in bridge.PARAMS} | {"server": server.address, "model": "beta", "feather": 3.0}
    w, h = model.plate_info["width"], model.plate_info["height"]
    src = np.random.default_rng(5).uniform(0, 1, (h, w, 4)).astype(np.float32)
    frame = model.frames[1]
    out = bridge.render("inst1", params, float(frame), src, (0, 0, w, h))
    fr = model.render_frame(frame, None, feather=3.0)
    np.testing.assert_allclose(out, composite_over(fr.rgba, fr.rgba_window, src, (0, 0, w, h)), **HALF)
    assert np.array_equal(out[fr.alpha == 0], src[fr.alpha == 0])
    bridge._NODES["inst1"].close()
