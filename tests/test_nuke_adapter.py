"""The Nuke adapter against a small recording stand-in of the ``nuke`` module, with a real server.

Nuke cannot run here; the stand-in implements only what the adapter calls (knobs with ``valueAt``,
``execute`` of the internal Write node, ``message``) and records the calls. The gizmo file is checked
against the adapter: every knob the adapter reads exists, every button calls a real adapter function.
"""

from __future__ import annotations

import importlib
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from server_fixtures import REPO, backend_factory, server, shot_models_dir  # noqa: F401

from host_plugin.node import FACE_KNOBS, FILL_KNOBS, composite_over
from vq_models.io.images import read_image, write_image

GIZMO = REPO / "gizmos" / "VQFaceEdit.gizmo"


class Knob:
    def __init__(self, value=None, keys=None):
        self._value, self.keys, self.values, self.executed = value, keys, [], 0

    def value(self):
        return self._value

    def valueAt(self, frame):  # noqa: N802 - Nuke's API name
        if self.keys:
            fs, vs = zip(*sorted(self.keys.items()), strict=True)
            return float(np.interp(frame, fs, vs))
        return self._value

    def setValue(self, v):  # noqa: N802
        self._value = v

    def setValues(self, vs):  # noqa: N802
        self.values = list(vs)
        self._value = self.values[0] if self.values else ""

    def execute(self):
        self.executed += 1


class Node:
    def __init__(self, name, knobs, children=None):
        self._name, self._knobs, self._children = name, knobs, children or {}

    def __getitem__(self, k):
        return self._knobs[k]

    def knobs(self):
        return self._knobs

    def name(self):
        return self._name

    def node(self, n):
        return self._children[n]


@pytest.fixture
def fake_nuke(monkeypatch, tmp_path):
    mod = types.ModuleType("nuke")
    mod.calls = []
    mod.env = {"gui": True}
    mod.plates = {}

    def execute(node, first, last):
        mod.calls.append(("execute", node.name(), first, last))
        p = mod.plates[first]
        path = Path(node["file"].value().replace("####", f"{first:04d}"))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, p, data_window=(4, 2, 80, 90), display_window=(0, 0, 96, 96), dtype="float",
                    colorspace="lin_rec709")

    mod.execute = execute
    mod.message = lambda text: mod.calls.append(("message", text))
    mod.frame = lambda: 2
    mod.pluginAddPath = lambda p: mod.calls.append(("pluginAddPath", p))
    monkeypatch.setitem(sys.modules, "nuke", mod)
    monkeypatch.syspath_prepend(str(REPO / "host_plugin" / "nuke"))
    sys.modules.pop("vqedit_nuke", None)
    yield mod
    sys.modules.pop("vqedit_nuke", None)


def _gizmo_node(address, tmp_path, model="beta"):
    knobs = {
        "server": Knob(address), "model": Knob(model), "feather": Knob(3.0), "mix": Knob(1.0), "mode": Knob("identity"),
        "output": Knob(str(tmp_path / "out" / "comp.####.exr")), "status": Knob(""), "exemplar_file": Knob(""),
        "eye_open_left": Knob(1.0), "eye_open_right": Knob(1.0), "gaze_x": Knob(0.0), "gaze_y": Knob(0.0),
        "teeth": Knob(1.0, keys={1001: 1.0, 1003: 0.0}), "mouth_open": Knob(1.0), "brows": Knob(0.0),
        "teeth_fill_upper": Knob(""), "teeth_fill_lower": Knob(""),
    }
    children = {
        "PlateWrite": Node("PlateWrite", {"file": Knob(str(tmp_path / "plate" / "plate.####.exr"))}),
        "RenderRead": Node("RenderRead", {"file": Knob(""), "first": Knob(0), "last": Knob(0), "reload": Knob()}),
    }
    return Node("VQFaceEdit1", knobs, children)


def test_gizmo_and_adapter_agree(fake_nuke):
    text = GIZMO.read_text()
    names = set(re.findall(r"addUserKnob \{\d+ (\w+)", text))
    assert set(FACE_KNOBS) | set(FILL_KNOBS) <= names
    assert {"server", "model", "feather", "mix", "mode", "output", "status", "exemplar_file"} <= names
    assert {"connect", "load_exemplar", "render_range"} <= names
    adapter = importlib.import_module("vqedit_nuke")
    for fn in re.findall(r"vqedit_nuke\.(\w+)\(", text):
        assert callable(getattr(adapter, fn)), fn
    assert "name PlateWrite" in text and "name RenderRead" in text and text.rstrip().endswith("end_group")


def test_init_registers_gizmo_path(fake_nuke):
    init = REPO / "host_plugin" / "nuke" / "init.py"
    exec(compile(init.read_text(), str(init), "exec"), {"__file__": str(init)})
    assert ("pluginAddPath", str(REPO / "gizmos")) in fake_nuke.calls


def test_connect_knobs_and_render_range(fake_nuke, server, tmp_path, shot_models_dir, backend_factory):  # noqa: F811
    adapter = importlib.import_module("vqedit_nuke")
    node = _gizmo_node(server.address, tmp_path)
    assert "beta" in adapter.on_connect(node)
    assert "beta" in node["model"].values and node["status"].value().startswith("connected")
    node["model"].setValue("beta")

    knobs = adapter.knobs_at(node, 1002)
    assert knobs.face["teeth"] == pytest.approx(0.5) and knobs.model == "beta"
    prog = adapter.edit_node(node, 1002).program_at(1002)
    assert prog["edits"] == [{"op": "teeth", "which": "both", "value": 0.5}]
    node["teeth_fill_lower"].setValue("tongue")
    prog = adapter.edit_node(node, 1002).program_at(1002)
    assert prog["edits"] == [{"op": "teeth", "which": "both", "value": 0.5, "fill": {"lower": "tongue"}}]
    node["teeth_fill_lower"].setValue("")

    rng = np.random.default_rng(3)
    fake_nuke.plates = {f: rng.uniform(0, 1, (90, 80, 3)).astype(np.float32) for f in (1001, 1002)}
    written = adapter.render_range(node, 1001, 1001)  # frame 1001: teeth knob neutral → identity render
    assert [c for c in fake_nuke.calls if c[0] == "execute"] == [("execute", "PlateWrite", 1001, 1001)]
    out = read_image(written[0])
    model = backend_factory(shot_models_dir / "beta")
    fr = model.render_frame(1001, None, feather=3.0)
    expect = composite_over(fr.rgba, fr.rgba_window, fake_nuke.plates[1001], (4, 2, 80, 90))
    assert not np.allclose(out.pixels, fake_nuke.plates[1001])
    np.testing.assert_allclose(out.pixels, expect, atol=2e-3, rtol=2e-3)
    assert node.node("RenderRead")["file"].value() == node["output"].value()
    assert node.node("RenderRead")["reload"].executed == 1


def test_errors_shown_in_gui_and_raised_in_terminal(fake_nuke, tmp_path):
    adapter = importlib.import_module("vqedit_nuke")
    adapter.CONNECT_TIMEOUT = 0.5
    node = _gizmo_node("tcp://127.0.0.1:9", tmp_path)  # nothing listens there
    assert adapter.on_connect(node) == []
    assert fake_nuke.calls[-1][0] == "message" and "no reply" in fake_nuke.calls[-1][1]
    assert "no reply" in node["status"].value()
    fake_nuke.env["gui"] = False  # nuke -t: a farm task must fail loudly
    with pytest.raises(RuntimeError, match="VQFaceEdit1"):
        adapter.on_connect(node)
