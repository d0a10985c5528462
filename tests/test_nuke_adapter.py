"""The Nuke adapter and the VQFaceEdit gizmo against the stand-in ``nuke`` module (tests/nuke_standin.py,
which follows Nuke's documented behaviour) and a real render server on the real tiny trained shot.

The gizmo is instantiated from gizmos/VQFaceEdit.gizmo itself, and its output is evaluated the way Nuke
would (Switch → Merge2 over with mix → Read of the pass files), so these tests check the native merge,
error-not-black, stale marking, the request-hash cache, the paint input and the segment knobs end to end.
"""

from __future__ import annotations

import importlib
import re
import sys

import numpy as np
import pytest
from nuke_standin import NukeError, Source, build_gizmo, make_module
from server_fixtures import (  # noqa: F401
    REPO,
    ServerProcess,
    attention_models_dir,
    backend_factory,
    server,
    shot_models_dir,
)

from host_plugin.knobs import FACE_KNOBS, FILL_KNOBS, FLAG_KNOBS, SEGMENT_EDIT_FIELDS, SEGMENT_EDIT_ROWS
from host_plugin.node import EditNode
from vq_models.io.images import ImageData, decode_image_bytes

GIZMO = REPO / "gizmos" / "VQFaceEdit.gizmo"
FRAMES = (1001, 1002, 1003)
PLATE_DW = (4, 2, 80, 90)  # the plate's data window inside the 96² display window


@pytest.fixture
def nk(monkeypatch, tmp_path):
    """A fresh stand-in ``nuke`` (GUI mode, script at tmp/shots/comp.nk, frames 1001-1003) and the adapter."""
    mod = make_module(str(tmp_path / "shots" / "comp.nk"), FRAMES[0], FRAMES[-1], gui=True)
    monkeypatch.setitem(sys.modules, "nuke", mod)
    monkeypatch.syspath_prepend(str(REPO / "host_plugin" / "nuke"))
    sys.modules.pop("vqedit_nuke", None)
    adapter = importlib.import_module("vqedit_nuke")
    adapter._NODES.clear()
    yield mod, adapter
    sys.modules.pop("vqedit_nuke", None)


def _plates(dtype: str = "float", seed: int = 3) -> dict[int, ImageData]:
    rng = np.random.default_rng(seed)
    out = {}
    for f in FRAMES:
        px = rng.uniform(0.01, 1.0, (PLATE_DW[3], PLATE_DW[2], 4)).astype(np.float32)
        if dtype == "half":
            px = px.astype(np.float16).astype(np.float32)
        out[f] = ImageData(px, list("RGBA"), PLATE_DW, (0, 0, 96, 96), colorspace="lin_rec709", bit_depth=dtype)
    return out


def _gizmo(mod, address, model="beta", plates=None):
    g = build_gizmo(mod, GIZMO)
    g["server"].setValue(address)
    g["model"].setValue(model)
    g["feather"].setValue(3.0)
    g.setInput(0, Source(plates or _plates()))
    mod.this_node = g
    return g


def _change(mod, adapter, g, knob, value=None, frame=None):
    """Change a knob as an artist would: the value (or a key), then Nuke's knobChanged callback."""
    if frame is None:
        g[knob].setValue(value)
    else:
        g[knob].setValueAt(value, frame)
    adapter.on_knob_changed(g, g[knob])


def test_gizmo_and_adapter_agree(nk):
    mod, adapter = nk
    text = GIZMO.read_text()
    names = set(re.findall(r"addUserKnob \{\d+ (\w+)", text))
    assert set(FACE_KNOBS) | set(FILL_KNOBS) | set(FLAG_KNOBS) <= names
    assert {f"seg{i}_{f}" for i in range(1, SEGMENT_EDIT_ROWS + 1) for f in SEGMENT_EDIT_FIELDS} <= names
    assert {"server", "model", "model_pick", "view", "feather", "mix", "mode", "output_dir", "status", "exemplar_file",
            "paint_segment", "program_file", "force"} <= names
    assert adapter.REQUEST_KNOBS <= names
    for fn in re.findall(r"vqedit_nuke\.(\w+)\(", text):
        assert callable(getattr(adapter, fn)), fn
    g = build_gizmo(mod, GIZMO)
    # native compositing: the comp view is Nuke's Merge2 over, A = the render pass Read, B = the input
    merge = g.node("RenderMerge")
    assert merge.cls == "Merge2" and merge["operation"].value() == "over" and merge["mix"].expression == "parent.mix"
    assert merge.input(0) is g.node("Input1") and merge.input(1) is g.node("RenderRead")
    switch = g.node("ViewSwitch")
    assert [switch.input(i).name() for i in range(4)] == ["RenderMerge", "RenderRead", "LabelsMerge", "ExemplarRead"]
    assert g["view"].values() == ["comp", "render", "labels", "exemplar"]
    # never black: every Read errors on a missing frame
    for read in ("RenderRead", "LabelsRead", "ExemplarRead"):
        assert g.node(read)["on_error"].value() == "error", read
    assert "PlateWrite" not in g.children  # the plate never leaves Nuke
    assert g.node("PaintWrite").input(0) is g.node("paint")
    assert g["model"].kind == 1  # a string knob: saved with the script whatever Connect found


def test_init_registers_gizmo_path(nk):
    mod, _ = nk
    init = REPO / "host_plugin" / "nuke" / "init.py"
    exec(compile(init.read_text(), str(init), "exec"), {"__file__": str(init)})
    assert ("pluginAddPath", str(REPO / "gizmos")) in mod.calls


def test_file_knobs_are_read_evaluated(nk, tmp_path):
    mod, adapter = nk
    g = build_gizmo(mod, GIZMO)
    assert g["output_dir"].value().startswith("[file dirname")  # what value() gives in Nuke: the TCL text
    assert adapter.pass_path(g, "render", 1002) == tmp_path / "shots" / "vqedit" / "VQFaceEdit1" / "render" / "render.1002.exr"
    program = tmp_path / "shots" / "edits.json"
    program.parent.mkdir(parents=True)
    program.write_text('{"version": 1, "edits": [{"op": "mouth_open", "value": 1.2}]}')
    g["program_file"].setValue("[file dirname [value root.name]]/edits.json")
    g["model"].setValue("beta")
    knobs = adapter.knobs_at(g, 1002)
    assert knobs.program_file == str(program)
    assert adapter.edit_node(g, 1002).program_at(1002)["edits"] == [{"op": "mouth_open", "value": 1.2}]


def test_pull_checkboxes_reach_the_program(nk):
    """The gizmo's Boolean knobs (Nuke gives 0/1 from valueAt) become the edits' ``pull`` fields."""
    mod, adapter = nk
    g = build_gizmo(mod, GIZMO)
    g["model"].setValue("beta")
    for knob in FLAG_KNOBS:
        assert g[knob].kind == 6 and not g[knob].value()  # a checkbox, off as the gizmo is created
    g["eye_open_left"].setValue(0.6)
    g["mouth_open"].setValue(1.4)
    assert not any("pull" in e for e in adapter.edit_node(g, 1001).program_at(1001)["edits"])
    g["pull_lids"].setValue(True)
    edits = adapter.edit_node(g, 1001).program_at(1001)["edits"]
    assert {e["op"]: e.get("pull", False) for e in edits} == {"eye_open": True, "mouth_open": False}
    assert "pull_lids" in adapter.REQUEST_KNOBS and "pull_lip" in adapter.REQUEST_KNOBS  # a change re-renders


def test_connect_fills_the_picker_and_the_model_string_persists(nk, server):  # noqa: F811
    mod, adapter = nk
    g = _gizmo(mod, server.address, model="")
    names = adapter.on_connect(g)
    assert "beta" in names and g["model_pick"].values() == names
    assert g["model"].value() == names[0] and g["status"].value().startswith("connected")
    g["model_pick"].setValue("beta")
    adapter.on_knob_changed(g, g["model_pick"])
    assert g["model"].value() == "beta"
    # a script opened on a farm machine: nobody pressed Connect, the string knob still names the model
    g2 = _gizmo(mod, server.address, model="beta")
    adapter.on_create(g2)
    assert g2["model_pick"].values() == ["beta"] and adapter.knobs_at(g2, 1001).model == "beta"


def test_connect_says_which_shots_need_attention(nk, attention_models_dir):  # noqa: F811
    """Connect reports the server's warnings: the picked shot's whole message, the others by name."""
    mod, adapter = nk
    attention = ServerProcess(attention_models_dir)
    try:
        g = _gizmo(mod, attention.address, model="stale")
        adapter.on_connect(g)
        status = g["status"].value()
        assert status.startswith("connected") and "stale: " in status and "iris centres" in status
        g["model"].setValue("fresh")
        adapter.on_connect(g)
        status = g["status"].value()
        assert "iris centres" not in status and "needing attention: empty, stale, untrained" in status
    finally:
        attention.stop()


def test_render_range_merges_natively_bit_exact_outside_alpha(nk, server, shot_models_dir, backend_factory):  # noqa: F811
    mod, adapter = nk
    model = backend_factory(shot_models_dir / "beta")
    for depth in ("float", "half"):
        plates = _plates(depth, seed=5 if depth == "half" else 6)
        g = _gizmo(mod, server.address, plates=plates)
        g["output_dir"].setValue(str(mod.root()["name"].evaluate()).replace("comp.nk", f"out_{depth}"))
        g["seg1_segment"].setValue("skin")  # the tiny shot's prior knows skin and background
        g["seg1_translate_x"].setValueAt(0.0, 1001)
        g["seg1_translate_x"].setValueAt(2.0, 1003)
        written = adapter.render_range(g, 1001, 1002)
        assert len(written) == 4 and g["status"].value().startswith("rendered 1001-1002"), g["status"].value()
        assert not mod.calls or all(c[0] != "message" for c in mod.calls)
        for frame in (1001, 1002):
            data = adapter.pass_path(g, "render", frame).read_bytes()
            reply = EditNode(adapter.knobs_at(g, frame)).fetch_pass(frame)  # the same request, fetched again
            assert decode_image_bytes(data).data_window == decode_image_bytes(reply.exr).data_window
            out = mod.render(g, frame)  # the gizmo's output as Nuke computes it
            plate = plates[frame].pixels
            render = decode_image_bytes(data)
            alpha = np.zeros(plate.shape[:2], np.float32)
            rx, ry, rw, rh = render.data_window
            bx, by = PLATE_DW[:2]
            alpha[ry - by:ry - by + rh, rx - bx:rx - bx + rw] = render.pixels[..., 3]
            outside = alpha == 0
            assert outside.any() and (~outside).any()
            assert np.array_equal(out.pixels[outside].view(np.uint32), plate[outside].view(np.uint32)), depth
            assert np.array_equal(out.pixels[..., 3], plate[..., 3])  # the input's alpha is the input's
            prog = adapter.edit_node(g, frame).program_at(frame)
            fr = model.render_frame(frame, prog, feather=3.0)
            expect = fr.composite(ImageData(plate, list("RGBA"), PLATE_DW, (0, 0, 96, 96), colorspace="lin_rec709"))
            np.testing.assert_allclose(out.pixels, expect.pixels, atol=2e-3, rtol=2e-3)
        g["mix"].setValue(0.0)
        assert np.array_equal(mod.render(g, 1001).pixels, plates[1001].pixels)  # mix is the Merge's mix
        g["view"].setValue("render")
        assert mod.render(g, 1001).data_window == decode_image_bytes(adapter.pass_path(g, "render", 1001).read_bytes()).data_window


def test_unrendered_and_failed_frames_are_errors_not_black(nk, server, tmp_path):  # noqa: F811
    mod, adapter = nk
    g = _gizmo(mod, server.address)
    with pytest.raises(NukeError, match="Read error"):
        mod.render(g, 1001)  # never rendered
    adapter.render_range(g, 1001, 1001)
    mod.render(g, 1001)
    # frame 1001 now fails (a program the server rejects): its old pass goes, the viewer errors
    _change(mod, adapter, g, "seg1_segment", "no_such_segment")
    _change(mod, adapter, g, "seg1_dilate", 2.0)
    adapter.render_range(g, 1001, 1001)
    assert mod.calls[-1][0] == "message" and "bad_program" in mod.calls[-1][1]
    assert "1 frame(s) failed" in g["status"].value() and g["label"].value() == "stale"
    assert not adapter.pass_path(g, "render", 1001).exists()
    with pytest.raises(NukeError, match="Read error"):
        mod.render(g, 1001)
    mod.env["gui"] = False  # nuke -t: no dialog (the stand-in's nuke.message raises there), the task fails
    with pytest.raises(RuntimeError, match="VQFaceEdit1: 1 frame"):
        adapter.render_range(g, 1001, 1001)
    g["server"].setValue("tcp://127.0.0.1:9")  # nothing listens there
    adapter.CONNECT_TIMEOUT = 0.5
    with pytest.raises(RuntimeError, match="VQFaceEdit1: .*no reply"):
        adapter.on_connect(g)


def test_stale_marking_and_the_request_cache(nk, server, monkeypatch):  # noqa: F811
    mod, adapter = nk
    g = _gizmo(mod, server.address)
    sent: list[tuple[int, str]] = []
    real = EditNode.fetch_pass

    def spy(self, frame, pass_name="render", paint=None, fields=None):
        sent.append((frame, pass_name))
        return real(self, frame, pass_name, paint, fields)

    monkeypatch.setattr(EditNode, "fetch_pass", spy)
    g["seg1_segment"].setValue("skin")  # a row at its neutral values sends no edit
    adapter.render_range(g, 1001, 1003)
    assert sorted(sent) == sorted((f, p) for f in FRAMES for p in ("render", "labels"))
    assert g["tile_color"].value() == adapter.TILE and g["label"].value() == ""
    mtimes = {f: adapter.pass_path(g, "render", f).stat().st_mtime_ns for f in FRAMES}
    sent.clear()
    adapter.render_range(g, 1001, 1003)  # nothing changed: no render request at all
    assert sent == [] and "0 pass file(s) written, 6 unchanged" in g["status"].value()
    assert {f: adapter.pass_path(g, "render", f).stat().st_mtime_ns for f in FRAMES} == mtimes
    _change(mod, adapter, g, "mix", 0.5)  # the Merge's mix: no new request, not stale
    assert g["label"].value() == ""
    g["seg1_translate_x"].setValueAt(0.0, 1001)
    g["seg1_translate_x"].setValueAt(0.0, 1002)
    _change(mod, adapter, g, "seg1_translate_x", 2.0, frame=1003)  # keys: only frame 1003's request changes
    assert g["label"].value() == "stale" and g["tile_color"].value() == adapter.STALE_TILE
    assert "seg1_translate_x changed" in g["status"].value()
    adapter.render_range(g, 1001, 1003)
    assert sorted(sent) == [(1003, "labels"), (1003, "render")]
    assert g["label"].value() == "" and g["tile_color"].value() == adapter.TILE
    sent.clear()
    g["force"].setValue(True)
    adapter.render_range(g, 1001, 1001)
    assert sorted(sent) == [(1001, "labels"), (1001, "render")]


def test_progress_with_cancel(nk, server):  # noqa: F811
    mod, adapter = nk
    g = _gizmo(mod, server.address)
    mod.cancel_after = 1  # the artist presses cancel after the first frame
    written = adapter.render_range(g, 1001, 1003)
    assert len(written) == 2 and adapter.pass_path(g, "render", 1001).exists()
    assert not adapter.pass_path(g, "render", 1002).exists()
    assert g["status"].value().startswith("cancelled at frame 1002") and g["label"].value() == "stale"
    assert mod.tasks[-1].messages == ["frame 1001"] and mod.tasks[-1].progress == [0]


def test_paint_input_and_segment_knobs_reach_the_server(nk, server, shot_models_dir, backend_factory):  # noqa: F811
    mod, adapter = nk
    model = backend_factory(shot_models_dir / "beta")
    g = _gizmo(mod, server.address)
    g["mode"].setValue("edit-only")
    frame = 1002
    # a matte over the mouth (the tracked outer lips mapped to the plate), painted with code 0
    lips = model.regions(frame)["lips_outer"]
    ys, xs = np.nonzero(lips)
    s = model.shot.crop_size / model.label_size
    pts = model.shot.transform(frame).to_plate((np.stack([xs, ys], 1) + 0.5) * s - 0.5)
    (x0, y0), (x1, y1) = np.floor(pts.min(0)).astype(int), np.ceil(pts.max(0)).astype(int)
    matte = np.zeros((96, 96, 4), np.float32)
    matte[y0:y1 + 1, x0:x1 + 1, 3] = 1.0
    paint = ImageData(matte, list("RGBA"), (0, 0, 96, 96), (0, 0, 96, 96), colorspace="lin_rec709")
    g.setInput(1, Source({f: paint for f in FRAMES}))
    adapter.render_range(g, frame, frame)
    assert mod.calls[-1][0] == "message" and "paint_segment knob" in mod.calls[-1][1]  # connected, no segment
    _change(mod, adapter, g, "paint_segment", "0")
    _change(mod, adapter, g, "seg1_segment", "skin")
    _change(mod, adapter, g, "seg1_translate_x", 1.0)
    adapter.render_range(g, frame, frame)
    assert ("execute", "PaintWrite", frame, frame) in mod.calls
    assert g["status"].value().startswith("rendered"), g["status"].value()
    labels = decode_image_bytes(adapter.pass_path(g, "labels", frame).read_bytes())
    # the same request in process: the program from the segment row, then the matte painted with code 0
    from vq_models.edits.matte import apply_matte, matte_to_label_mask

    prog = {"version": 1, "edits": [{"op": "translate", "segment": "skin", "value": [1.0, 0.0]}]}
    base, _ = model.edited_labels(frame, prog)
    mask = matte_to_label_mask(matte[..., 3], (0, 0, 96, 96), model.shot.transform(frame), model.shot.crop_size, model.label_size)
    assert mask.any()
    painted = apply_matte(base, mask, 0, model.prior(), model.num_codes)
    fr = model.render_frame(frame, prog, feather=3.0, mode="edit-only", labels=painted)
    render = decode_image_bytes(adapter.pass_path(g, "render", frame).read_bytes())
    np.testing.assert_allclose(render.pixels, fr.rgba_image().pixels, atol=2e-3)
    assert labels.pixels[..., 3].max() == 1.0  # the label view covers the face crop
    g["view"].setValue("labels")
    assert mod.render(g, frame).data_window == PLATE_DW
