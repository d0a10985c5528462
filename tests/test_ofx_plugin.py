"""The compiled VQFaceEdit OpenFX plug-in, built here with CMake and driven by a headless ctypes OFX host
(tests/ofx_host/host.py) against a real render server serving the session's tiny trained shot.

What is checked: the bundle's layout and exports; describe and describe-in-context for both contexts
(clips, parameters named and ranged like the gizmo's knobs, pages); renders at 8-bit and float from two
instances equal ``vqedit render --server`` for the same frame and knobs (1/255 at 8-bit, half precision at
float), with Source pixels outside the render's alpha returned bit for bit, in both row orders and with
bounds that do not start at 0; errors (stopped server, unknown model, frame outside the shot) come back as
a failed status plus a one-line persistent message within the timeout; a killed bridge is restarted; no
process is left after unload.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from server_fixtures import MEDIAPIPE_PREP, ServerProcess, attention_models_dir, copy_shot, with_prep  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "ofx_host"))

from host import OfxHost  # noqa: E402

from host_plugin.knobs import (  # noqa: E402
    FACE_KNOBS,
    FILL_KNOBS,
    FLAG_KNOBS,
    SEGMENT_EDIT_FIELDS,
    SEGMENT_EDIT_ROWS,
    edits_from_face_knobs,
    edits_from_segment_rows,
)
from host_plugin.node import EditKnobs, EditNode, PaintMatte, Plate  # noqa: E402
from host_plugin.ofx.params import FACE_UI, FLAG_UI, PARAMS, SEGMENT_UI  # noqa: E402
from host_plugin.ofx.pixels import linear_to_srgb  # noqa: E402
from vq_models.face.topology import EYE_CENTRES  # noqa: E402

FILTER, GENERAL = "OfxImageEffectContextFilter", "OfxImageEffectContextGeneral"
HALF = dict(atol=2e-3, rtol=2e-3)
FEATHER = 3.0


# --- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ofx_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle, built once per session with CMake into a temporary build tree (what `make ofx` runs).
    ``VQEDIT_TEST_OFX_BUNDLE=DIR`` tests an already built bundle instead (e.g. a sanitizer build)."""
    if os.environ.get("VQEDIT_TEST_OFX_BUNDLE"):
        return Path(os.environ["VQEDIT_TEST_OFX_BUNDLE"])
    if shutil.which("cmake") is None or shutil.which("c++") is None:
        pytest.fail("cmake and a C++ compiler are needed to build the OpenFX plug-in")
    build = tmp_path_factory.mktemp("ofx_build")
    for cmd in (["cmake", "-S", str(REPO / "host_plugin" / "ofx"), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                 f"-DVQEDIT_PYTHON={sys.executable}"],
                ["cmake", "--build", str(build), "-j", "2"]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return build / "VQFaceEdit.ofx.bundle"


@pytest.fixture(scope="session")
def ofx_binary(ofx_bundle: Path) -> Path:
    return ofx_bundle / "Contents" / "Linux-x86-64" / "VQFaceEdit.ofx"


# The tiny shot's automatic prior names only skin and background; the face knobs need eyes and a mouth.
# This prior names some of its 8 codes so that every knob used here validates and edits real pixels.
FACE_PRIOR = {"version": 1, "num_codes": 8, "segments": {
    "skin": [1, 2], "eye_whites": [3], "irises": [4], "pupils": [5], "upper_teeth": [6], "mouth_interior": [7],
    "background": [0]}}


@pytest.fixture(scope="module")
def ofx_shot(tmp_path_factory: pytest.TempPathFactory, tiny_shot: Path) -> Path:
    """A private copy of the tiny shot, served as ``alpha``, with :data:`FACE_PRIOR`."""
    shot_dir = copy_shot(tiny_shot, tmp_path_factory.mktemp("ofx_models") / "alpha")
    (shot_dir / "prior.json").write_text(json.dumps(FACE_PRIOR))
    return shot_dir


@pytest.fixture(scope="module")
def ofx_server(ofx_shot: Path):
    proc = ServerProcess(ofx_shot.parent, "--workers", "1")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def shot(ofx_shot: Path) -> dict:
    return json.loads((ofx_shot / "shot.json").read_text())


def bridge_children() -> list[int]:
    """Live bridge processes whose parent is this test process."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _parent(entry) == os.getpid() and "host_plugin.ofx.bridge" in _cmdline(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def gone(pids: list[int]) -> bool:
    """Every one of ``pids`` has exited and was reaped (a zombie still has its /proc entry)."""
    return all(not Path(f"/proc/{pid}").exists() for pid in pids)


def plate_frame(shot: dict, frame: int) -> np.ndarray:
    from vq_models.io.images import read_image

    return np.asarray(read_image(shot["plate"]["source"] % frame).pixels, np.float32)


def cli_render(tiny_shot: Path, server: ServerProcess, frame: int, knobs: dict, out: Path, mode: str,
               program: list | None = None) -> Path:
    """`vqedit render --server` of one frame with the program the knobs make (the reference)."""
    from vq_models.cli import main

    edits = out.parent / f"{out.stem}.edits.json"
    edits.parent.mkdir(parents=True, exist_ok=True)
    edits.write_text(json.dumps({"version": 1, "edits": program or edits_from_face_knobs(knobs)}))
    rc = main(["render", str(tiny_shot), "--server", server.address, "--model", "alpha", "--frames", str(frame),
               "--edits", str(edits), "--feather", str(FEATHER), "--mode", mode, "--out", str(out),
               "--no-progress"])
    assert rc == 0
    return Path(str(out) % frame)


def reference_frame(tiny_shot: Path, frame: int, knobs: dict, mode: str) -> Any:
    """The shot model's own render of the program the knobs make (no server, no host)."""
    from vq_models.runtime import ShotModel

    model = ShotModel.load(tiny_shot)
    program = {"version": 1, "edits": edits_from_face_knobs(knobs)}
    return model.render_frame(frame, program, feather=FEATHER, mode=mode)


def reference_alpha(tiny_shot: Path, frame: int, knobs: dict, mode: str) -> np.ndarray:
    return reference_frame(tiny_shot, frame, knobs, mode).alpha


def new_host(binary: Path) -> OfxHost:
    host = OfxHost(str(binary), project=(96, 96))
    assert host.load() == 0
    host.describe()
    host.describe_in_context(FILTER)
    host.describe_in_context(GENERAL)
    return host


def configure(host: OfxHost, inst: int, server: str, knobs: dict, **extra) -> None:
    for name, value in {"server": server, "model": "alpha", "feather": FEATHER, **knobs, **extra}.items():
        host.set_param(inst, name, value)


# --- the bundle and its description -----------------------------------------------------------------------
def test_bundle_layout_and_exports(ofx_bundle, ofx_binary):
    assert ofx_binary.is_file()
    plist = (ofx_bundle / "Contents" / "Info.plist").read_text()
    assert "<string>org.vqedit.VQFaceEdit</string>" in plist and "<string>VQFaceEdit.ofx</string>" in plist
    assert (ofx_bundle / "Contents" / "Resources").is_dir()
    nm = subprocess.run(["nm", "-D", "--defined-only", str(ofx_binary)], capture_output=True, text=True, check=True)
    exported = sorted(line.split()[-1] for line in nm.stdout.splitlines() if line.strip())
    assert exported == ["OfxGetNumberOfPlugins", "OfxGetPlugin"]  # nothing else for a host to bind to
    ldd = subprocess.run(["ldd", str(ofx_binary)], capture_output=True, text=True, check=True).stdout
    assert "python" not in ldd.lower() and "zmq" not in ldd and "stdc++" not in ldd


def test_describe_and_describe_in_context(ofx_binary):
    host = OfxHost(str(ofx_binary))
    assert host.plugin.pluginApi == b"OfxImageEffectPluginAPI" and host.plugin.apiVersion == 1
    assert host.plugin.pluginIdentifier == b"org.vqedit.VQFaceEdit"
    assert host.load() == 0
    props = host.describe().props.values
    assert props["OfxPropLabel"] == ["VQFaceEdit"] and props["OfxImageEffectPluginPropGrouping"] == ["vqedit"]
    assert props["OfxImageEffectPropSupportedContexts"] == [FILTER, GENERAL]
    assert props["OfxImageEffectPropSupportedPixelDepths"] == ["OfxBitDepthByte", "OfxBitDepthShort", "OfxBitDepthFloat"]
    assert props["OfxImageEffectPropSupportsTiles"] == [0] and props["OfxImageEffectPropSupportsMultiResolution"] == [1]
    assert props["OfxImageEffectPluginRenderThreadSafety"] == ["OfxImageEffectRenderInstanceSafe"]

    filt, gen = host.describe_in_context(FILTER), host.describe_in_context(GENERAL)
    assert sorted(filt.clips) == ["Output", "Source"]
    assert sorted(gen.clips) == ["Output", "Paint", "Source"]
    paint = gen.clips["Paint"].props.values
    assert paint["OfxImageClipPropOptional"] == [1] and paint["OfxImageClipPropIsMask"] == [1]
    for clip in ("Source", "Output"):
        assert gen.clips[clip].props.values["OfxImageEffectPropSupportedComponents"] == [
            "OfxImageComponentRGBA", "OfxImageComponentRGB"]

    names = [n for n in gen.param_order if gen.params[n].kind != "OfxParamTypePage"]
    assert names == [p.name for p in PARAMS]  # one table: the generated C++ follows params.py
    for must in ("server", "model", "frame_offset", "driver", "driver_strength", "driver_frame_offset", *FACE_KNOBS, *FILL_KNOBS, "feather", "mix", "mode", "colorspace",
                 "paint_segment"):
        assert must in names
    for knob, (_, neutral) in FACE_KNOBS.items():
        p = gen.params[knob]
        assert p.kind == "OfxParamTypeDouble" and p.props.get("OfxParamPropAnimates") == 1
        assert p.props.get("OfxParamPropDefault") == neutral
        assert (p.props.get("OfxParamPropMin"), p.props.get("OfxParamPropMax")) == FACE_UI[knob][:2]
        assert p.props.get("OfxParamPropHint")
    for knob in FLAG_KNOBS:  # checkboxes, off
        p = gen.params[knob]
        assert p.kind == "OfxParamTypeBoolean" and p.props.get("OfxParamPropDefault") == 0
        assert p.props.get("OfxPropLabel") == FLAG_UI[knob][0] and p.props.get("OfxParamPropHint") == FLAG_UI[knob][1]
    assert gen.params["mode"].props.values["OfxParamPropChoiceOption"] == ["identity", "edit-only"]
    assert gen.params["frame_offset"].kind == "OfxParamTypeInteger"
    assert gen.params["server"].kind == "OfxParamTypeString"
    assert gen.params["server"].props.get("OfxParamPropCacheInvalidation") == "OfxParamInvalidateAll"
    pages = {n: gen.params[n].props.values.get("OfxParamPropPageChild", []) for n in gen.param_order
             if gen.params[n].kind == "OfxParamTypePage"}
    assert set(pages) == {"Face", "Render", "Segments", "Driver", "Paint"} and sorted(sum(pages.values(), [])) == sorted(names)
    assert gen.props.values["OfxPluginPropParamPageOrder"] == ["Face", "Render", "Segments", "Driver", "Paint"]
    rows = [n for n in names if n.startswith("seg")]
    assert rows == [f"seg{i}_{f}" for i in range(1, SEGMENT_EDIT_ROWS + 1) for f in SEGMENT_EDIT_FIELDS]
    assert host.unload() == 0


def test_face_ranges_match_the_gizmo():
    """The OFX sliders and the Nuke gizmo's knobs share names and ranges (gizmo ``R lo hi``)."""
    gizmo = (REPO / "gizmos" / "VQFaceEdit.gizmo").read_text()
    for knob, (lo, hi, _label, _hint) in FACE_UI.items():
        m = re.search(r"addUserKnob \{7 " + knob + r" .*? R (-?[\d.]+) (-?[\d.]+)\}", gizmo)
        assert m, f"{knob} not in the gizmo"
        assert (float(m.group(1)), float(m.group(2))) == (lo, hi)
    assert set(FACE_UI) == set(FACE_KNOBS)
    for knob, (label, hint) in FLAG_UI.items():  # Boolean knobs (6), off unless a value line says otherwise
        assert re.search(r'addUserKnob \{6 ' + knob + ' l "' + label + '" -STARTLINE t "' + re.escape(hint) + r'"\}', gizmo), knob
        assert not re.search(r"^ " + knob + " ", gizmo, re.M), knob
    assert set(FLAG_UI) == set(FLAG_KNOBS)
    for name, (lo, hi, _label, _hint) in SEGMENT_UI.items():
        if isinstance(SEGMENT_EDIT_FIELDS[name], str):
            assert re.search(r"addUserKnob \{1 seg1_" + name + " ", gizmo), name
            continue
        m = re.search(r"addUserKnob \{7 seg1_" + name + r" .*? R (-?[\d.]+) (-?[\d.]+)\}", gizmo)
        assert m and (float(m.group(1)), float(m.group(2))) == (lo, hi), name


# --- renders ----------------------------------------------------------------------------------------------
def test_renders_equal_vqedit_render_at_float_and_8bit(ofx_binary, ofx_server, ofx_shot, shot, tmp_path):
    tiny_shot = ofx_shot
    frames = shot["frames"]
    f_float, f_byte = frames[2], frames[5]
    knobs_float = {"eye_open_left": 0.5, "gaze_x": 0.2, "pull_lids": True}  # eye_open_left animated: 0.5 half-way
    knobs_byte = {"teeth": 0.0, "mouth_open": 1.3}
    ref_float = cli_render(tiny_shot, ofx_server, f_float, knobs_float, tmp_path / "float" / "c.%04d.exr", "identity")
    ref_byte = cli_render(tiny_shot, ofx_server, f_byte, knobs_byte, tmp_path / "byte" / "c.%04d.png", "identity")
    from vq_models.io.images import read_image

    host = new_host(ofx_binary)
    a = host.create_instance(FILTER)
    b = host.create_instance(GENERAL)  # the second instance, Paint left unconnected
    try:
        # A: float RGB, y-up rows, host time 1 = shot frame f_float through frame_offset, animated knob
        plate = plate_frame(shot, f_float)[..., :3]
        configure(host, a, ofx_server.address, {"gaze_x": 0.2, "pull_lids": True}, frame_offset=f_float - 1)
        host.set_param(a, "eye_open_left", keys={0.0: 1.0, 2.0: 0.0})
        host.connect(a, "Source", plate)
        st, out = host.render(a, 1.0)
        assert st == 0, host.persistent_message(a)
        assert host.persistent_message(a) is None
        ref = read_image(ref_float)
        assert ref.data_window == (0, 0, 96, 96)
        np.testing.assert_allclose(out, ref.pixels[..., :3], **HALF)
        alpha = reference_alpha(tiny_shot, f_float, knobs_float, "identity")
        assert (alpha > 0).sum() > 100 and not np.array_equal(out, plate)
        assert np.array_equal(out[alpha == 0], plate[alpha == 0])  # bit for bit outside the alpha
        unpulled = reference_frame(tiny_shot, f_float, {**knobs_float, "pull_lids": False}, "identity")
        unpulled = unpulled.composite(read_image(shot["plate"]["source"] % f_float)).pixels[..., :3]
        assert np.abs(unpulled - out).max() > 0.02  # the checkbox reached the server: its lid differs

        # B: 8-bit sRGB RGBA, top-down memory (negative rowBytes), bounds not at 0 (a crop of the frame)
        lin = plate_frame(shot, f_byte)[..., :3]
        src8 = np.clip(np.rint(linear_to_srgb(lin) * 255), 0, 255).astype(np.uint8)
        src8 = np.concatenate([src8, np.full(src8.shape[:2] + (1,), 200, np.uint8)], -1)
        rows, cols = slice(6, 94), slice(4, 84)  # y-down rows 6..93 = OFX rows 2..89
        configure(host, b, ofx_server.address, knobs_byte, frame_offset=f_byte - 10)
        host.connect(b, "Source", src8[rows, cols], origin=(4, 2), negative_rows=True)
        host.connect(b, "Paint", np.zeros((120, 120, 1), np.uint8), origin=(-10, -10))  # larger, empty
        assert host.region_of_definition(b, 10.0) == (0, [4.0, 2.0, 84.0, 90.0])  # the Source's, not the Paint's
        assert host.clip_preferences(b)[1]["OfxImageClipPropComponents_Output"] == ["OfxImageComponentRGBA"]
        assert host.clip_preferences(a)[1]["OfxImageClipPropComponents_Output"] == ["OfxImageComponentRGB"]
        assert host.is_identity(b, 10.0)[0] == 14  # mix 1: a render is needed (kOfxStatReplyDefault)
        st, out8 = host.render(b, 10.0, out_negative_rows=True)
        assert st == 0, host.persistent_message(b)
        ref8 = read_image(ref_byte)
        ref8 = np.clip(np.rint(ref8.pixels[..., :3] * 255), 0, 255).astype(np.int32)[rows, cols]
        assert np.abs(out8[..., :3].astype(np.int32) - ref8).max() <= 1  # within 1/255
        alpha8 = reference_alpha(tiny_shot, f_byte, knobs_byte, "identity")[rows, cols]
        assert np.array_equal(out8[alpha8 == 0], src8[rows, cols][alpha8 == 0])
        assert np.array_equal(out8[..., 3], src8[rows, cols, 3])  # the Source's own alpha
        assert not np.array_equal(out8, src8[rows, cols])

        # A again at another time: the animated knob is read at that time (1.0 → eye open → other pixels)
        st, out_open = host.render(a, 0.0)
        assert st == 0 and not np.array_equal(out_open, out)
        bridges = bridge_children()
        assert len(bridges) == 1  # one bridge serves both instances
    finally:
        assert host.destroy_instance(a) == 0 and host.destroy_instance(b) == 0
        assert host.unload() == 0
    assert bridge_children() == [] and gone(bridges)


def test_16bit_proxy_scale_and_mix(ofx_binary, ofx_server, shot):
    """16-bit at render scale 0.5 (a proxy render: half-size images) with mix 0.5: the server's full-size
    pass is brought onto the half-size grid; outside it the Source comes back bit for bit."""
    f = shot["frames"][3]
    lin = plate_frame(shot, f)[..., :3]
    half = lin.reshape(48, 2, 48, 2, 3).mean(axis=(1, 3))
    src16 = np.clip(np.rint(linear_to_srgb(half) * 65535), 0, 65535).astype(np.uint16)
    host = new_host(ofx_binary)
    inst = host.create_instance(FILTER)
    try:
        configure(host, inst, ofx_server.address, {}, frame_offset=0, mix=0.5)
        host.connect(inst, "Source", src16)
        st, out = host.render(inst, float(f), scale=0.5)
        assert st == 0, host.persistent_message(inst)
        changed = (out != src16).any(-1)
        assert 20 < changed.sum() < 48 * 48 * 0.8  # the face region, at half size
        assert np.array_equal(host.render(inst, float(f), scale=0.5)[1], out)  # deterministic
        # against the full-size render of the full-size plate, averaged 2×2: the proxy is in the right place
        host.connect(inst, "Source", lin)
        st, big = host.render(inst, float(f))
        assert st == 0, host.persistent_message(inst)
        small = linear_to_srgb(big.reshape(48, 2, 48, 2, 3).mean(axis=(1, 3)))
        diff = np.abs(out / 65535.0 - small)
        assert diff.mean() < 0.002 and np.percentile(diff, 99) < 0.01
        moved = np.abs(out / 65535.0 - np.roll(small, 3, axis=0))
        assert moved[changed].mean() > 10 * diff[changed].mean()  # (a flipped or shifted proxy would fail)
        host.connect(inst, "Source", src16)
        host.set_param(inst, "mix", 0.0)
        st, args = host.is_identity(inst, float(f))
        assert st == 0 and args["OfxPropName"] == ["Source"]  # mix 0: the host may skip the render
        st, none = host.render(inst, float(f), scale=0.5)
        assert st == 0 and np.array_equal(none, src16)  # mix 0: the Source, bit for bit
    finally:
        host.destroy_instance(inst)
        host.unload()


def test_segment_edit_rows_equal_vqedit_render(ofx_binary, ofx_server, ofx_shot, shot, tmp_path):
    """The segment-edit parameters (seg<row>_<field>, animated) make the program the gizmo's rows make."""
    f = shot["frames"][7]
    rows = [{"segment": "skin", "translate_x": 2.0, "replace_with": ""},  # skin: always on screen
            {"segment": "eye_whites", "replace_with": "skin"}]
    ref = cli_render(ofx_shot, ofx_server, f, {}, tmp_path / "seg" / "c.%04d.exr", "edit-only",
                     program=edits_from_segment_rows(rows, f))
    from vq_models.io.images import read_image

    plate = plate_frame(shot, f)[..., :3]
    host = new_host(ofx_binary)
    inst = host.create_instance(FILTER)
    try:
        configure(host, inst, ofx_server.address, {}, mode="edit-only", seg1_segment="skin",
                  seg2_segment="eye_whites", seg2_replace_with="skin")
        host.set_param(inst, "seg1_translate_x", keys={float(f - 1): 0.0, float(f + 1): 4.0})  # 2.0 at f
        host.connect(inst, "Source", plate)
        st, out = host.render(inst, float(f))
        assert st == 0, host.persistent_message(inst)
        np.testing.assert_allclose(out, read_image(ref).pixels[..., :3], **HALF)
        assert not np.array_equal(out, plate)
    finally:
        host.destroy_instance(inst)
        host.unload()


def test_paint_clip_paints_labels_like_the_node(ofx_binary, ofx_server, ofx_shot, shot):
    """General context with the Paint clip: an empty matte renders as without Paint; a matte without
    paint_segment fails in one line naming it; with paint_segment the render equals EditNode.evaluate
    given the same matte (issue 16's paint support) and differs from the unpainted one."""
    f = shot["frames"][4]
    plate = plate_frame(shot, f)[..., :3]
    alpha = reference_alpha(ofx_shot, f, {}, "identity")
    ys, xs = np.nonzero(alpha > 0.5)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    matte = np.zeros((96, 96, 1), np.uint8)  # y-down, an Alpha-only clip
    matte[cy - 6:cy + 6, cx - 8:cx + 8] = 255
    host = new_host(ofx_binary)
    inst = host.create_instance(GENERAL)
    try:
        configure(host, inst, ofx_server.address, {}, frame_offset=0)
        host.connect(inst, "Source", plate)
        st, plain = host.render(inst, float(f))
        assert st == 0, host.persistent_message(inst)
        host.connect(inst, "Paint", np.zeros((96, 96, 4), np.float32))
        st, empty = host.render(inst, float(f))
        assert st == 0 and np.array_equal(empty, plain)
        host.connect(inst, "Paint", matte)
        st, _ = host.render(inst, float(f))
        assert st == 1 and "paint_segment" in (host.persistent_message(inst) or "")
        host.set_param(inst, "paint_segment", "upper_teeth")
        st, painted = host.render(inst, float(f))
        assert st == 0, host.persistent_message(inst)
        assert not np.array_equal(painted, plain)
        node = EditNode(EditKnobs(server=ofx_server.address, model="alpha", feather=FEATHER,
                                  paint_segment="upper_teeth"))
        try:
            ref = node.evaluate(f, Plate(plate, (0, 0, 96, 96), (0, 0, 96, 96)),
                                paint=PaintMatte(matte=matte[..., 0].astype(np.float32) / 255, window=(0, 0, 96, 96)))
        finally:
            node.close()
        np.testing.assert_allclose(painted, ref.image, **HALF)
    finally:
        host.destroy_instance(inst)
        host.unload()


# --- errors and the bridge's life ---------------------------------------------------------------------------
def test_errors_reach_the_artist_in_one_line(ofx_binary, ofx_server, tiny_shot, shot, tmp_path):
    plate = plate_frame(shot, shot["frames"][0])
    host = new_host(ofx_binary)
    inst = host.create_instance(FILTER)
    try:
        host.connect(inst, "Source", plate)
        configure(host, inst, ofx_server.address, {}, timeout=2.0)
        host.set_param(inst, "model", "nosuch")
        st, out = host.render(inst, float(shot["frames"][0]), fill=0.25)
        msg = host.persistent_message(inst) or ""
        assert st == 1 and "nosuch" in msg and "\n" not in msg
        host.set_param(inst, "model", "alpha")
        st, _ = host.render(inst, 5.0)  # frame 5 is not in the shot (1001-1016)
        msg = host.persistent_message(inst) or ""
        assert st == 1 and "5" in msg and "bad_frame" in msg
        st, _ = host.render(inst, float(shot["frames"][0]))
        assert st == 0 and host.persistent_message(inst) is None  # a good render clears the message

        # a stopped server: a failed status and a message naming it, within the timeout (2 tries of 2 s)
        models = tmp_path / "models"
        copy_shot(tiny_shot, models / "alpha")
        doomed = ServerProcess(models, "--workers", "1")
        host.set_param(inst, "server", doomed.address)
        assert host.render(inst, float(shot["frames"][0]))[0] == 0
        doomed.stop()
        t0 = time.monotonic()
        st, _ = host.render(inst, float(shot["frames"][1]))
        elapsed = time.monotonic() - t0
        msg = host.persistent_message(inst) or ""
        assert st == 1 and doomed.address in msg and "no reply" in msg
        assert elapsed < 2 * 2.0 + 5.0
    finally:
        host.destroy_instance(inst)
        host.unload()


def test_a_shot_to_reprep_renders_with_the_hosts_warning(ofx_binary, attention_models_dir, shot,  # noqa: F811
                                                          monkeypatch):
    """The server's warning about a shot (crops aligned on the irises) reaches the host as a persistent
    *warning*, the frame rendered; a shot without one renders with no message; and once the shot is re-prepped
    in place while the host runs, the warning goes (the bridge asks `load` again after its
    ``VQEDIT_OFX_SHOT_INFO_TTL``, here 0.2 s)."""
    monkeypatch.setenv("VQEDIT_OFX_SHOT_INFO_TTL", "0.2")
    server = ServerProcess(attention_models_dir, "--workers", "1")
    frame = shot["frames"][0]
    host = new_host(ofx_binary)
    inst = host.create_instance(FILTER)
    try:
        host.connect(inst, "Source", plate_frame(shot, frame))
        configure(host, inst, server.address, {"gaze_x": 0.2}, model="stale", frame_offset=frame - 1)
        st, out = host.render(inst, 1.0)
        msg = host.persistent_message(inst) or ""
        assert st == 0 and "iris centres" in msg and "vqedit prep" in msg and "\n" not in msg
        assert host.messages[-1][0] == "OfxMessageWarning"
        host.set_param(inst, "model", "fresh")
        st, fresh = host.render(inst, 1.0)
        assert st == 0 and host.persistent_message(inst) is None
        np.testing.assert_array_equal(out, fresh)  # the same weights: the warning changed nothing drawn
        host.set_param(inst, "model", "stale")
        assert host.render(inst, 1.0)[0] == 0 and "iris centres" in (host.persistent_message(inst) or "")
        with_prep(attention_models_dir / "stale", {**MEDIAPIPE_PREP, "eye_centres": EYE_CENTRES})
        time.sleep(0.3)
        assert host.render(inst, 1.0)[0] == 0 and host.persistent_message(inst) is None
    finally:
        with_prep(attention_models_dir / "stale", dict(MEDIAPIPE_PREP))
        host.destroy_instance(inst)
        host.unload()
        server.stop()


def test_killed_bridge_is_restarted_and_nothing_outlives_unload(ofx_binary, ofx_server, shot):
    f = shot["frames"][6]
    plate = plate_frame(shot, f)
    host = new_host(ofx_binary)
    inst = host.create_instance(FILTER)
    configure(host, inst, ofx_server.address, {"eye_open_right": 0.0}, frame_offset=0)
    host.connect(inst, "Source", plate)
    st, first = host.render(inst, float(f))
    assert st == 0, host.persistent_message(inst)
    (pid,) = bridge_children()
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    st, again = host.render(inst, float(f))
    assert st == 0, host.persistent_message(inst)
    np.testing.assert_array_equal(again, first)
    (new_pid,) = bridge_children()  # one live bridge, a new one; the dead one was reaped
    assert new_pid != pid and gone([pid])
    assert host.destroy_instance(inst) == 0 and host.unload() == 0
    assert bridge_children() == [] and gone([new_pid])  # the bridge exited and was reaped at unload


def _alive(pid: int) -> bool:
    """Running (a zombie has exited: only its parent has not collected it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


HOST_SCRIPT = """
import sys, numpy as np
sys.path[:0] = [{repo!r}, {tests!r}]
from host import OfxHost
host = OfxHost({binary!r})
host.load(); host.describe(); host.describe_in_context("OfxImageEffectContextFilter")
inst = host.create_instance("OfxImageEffectContextFilter")
for k, v in (("server", {server!r}), ("model", "alpha"), ("frame_offset", {frame})):
    host.set_param(inst, k, v)
host.connect(inst, "Source", np.zeros((96, 96, 3), np.float32))
print(host.render(inst, 0.0)[0], flush=True)
sys.stdin.read()  # stay until killed
"""


def test_bridge_exits_with_the_host_and_when_idle(ofx_binary, ofx_server, shot, tmp_path, monkeypatch):
    """A host killed without unloading leaves no bridge behind (it reads EOF); an idle bridge exits on its
    own and the next render starts a new one."""
    script = tmp_path / "host_proc.py"
    script.write_text(HOST_SCRIPT.format(repo=str(REPO), tests=str(REPO / "tests" / "ofx_host"),
                                         binary=str(ofx_binary), server=ofx_server.address, frame=shot["frames"][0]))
    proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "0"
        children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == proc.pid]
        (bridge,) = [pid for pid in children if "host_plugin.ofx.bridge" in _cmdline(pid)]
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 10
        while _alive(bridge) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(bridge)
    finally:
        if proc.poll() is None:
            proc.kill()

    monkeypatch.setenv("VQEDIT_OFX_IDLE", "1")
    host = new_host(ofx_binary)
    inst = host.create_instance(FILTER)
    try:
        configure(host, inst, ofx_server.address, {}, frame_offset=0)
        host.connect(inst, "Source", plate_frame(shot, shot["frames"][0]))
        assert host.render(inst, float(shot["frames"][0]))[0] == 0
        (first,) = bridge_children()
        time.sleep(2.5)
        assert not _alive(first)  # idled out
        st, _ = host.render(inst, float(shot["frames"][0]))
        assert st == 0, host.persistent_message(inst)
        (second,) = bridge_children()
        assert second != first and gone([first])
    finally:
        host.destroy_instance(inst)
        host.unload()
    assert bridge_children() == [] and gone([second])


def _parent(entry: Path) -> int:
    try:
        stat = (entry / "stat").read_text()
    except OSError:
        return -1
    return int(stat[stat.rindex(")") + 2:].split()[1])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_instances_render_from_two_threads(ofx_binary, ofx_server, shot):
    """Instance-safe as declared: two instances rendered at once from two host threads give what they
    give one after the other (they queue on the one bridge)."""
    import threading

    frames = shot["frames"][8], shot["frames"][9]
    host = new_host(ofx_binary)
    insts = [host.create_instance(FILTER), host.create_instance(GENERAL)]
    try:
        for inst, frame, knobs in zip(insts, frames, ({"eye_open_left": 0.0}, {"mouth_open": 1.5}), strict=True):
            configure(host, inst, ofx_server.address, knobs, frame_offset=frame)
            host.connect(inst, "Source", plate_frame(shot, frame))
        alone = [host.render(inst, 0.0) for inst in insts]
        assert [st for st, _ in alone] == [0, 0]
        results: dict[int, list] = {0: [], 1: []}

        def work(i: int) -> None:
            for _ in range(3):
                results[i].append(host.render(insts[i], 0.0))

        threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for i in (0, 1):
            assert len(results[i]) == 3
            for st, out in results[i]:
                assert st == 0 and np.array_equal(out, alone[i][1])
    finally:
        for inst in insts:
            host.destroy_instance(inst)
        host.unload()


def test_vqedit_python_names_the_bridge_interpreter(ofx_binary, ofx_server, shot, monkeypatch, tmp_path):
    """$VQEDIT_PYTHON picks the bridge's interpreter; one that cannot start is a one-line error naming it."""
    missing = tmp_path / "no-such-python"
    monkeypatch.setenv("VQEDIT_PYTHON", str(missing))
    host = new_host(ofx_binary)
    inst = host.create_instance(FILTER)
    try:
        configure(host, inst, ofx_server.address, {}, frame_offset=0)
        host.connect(inst, "Source", plate_frame(shot, shot["frames"][0]))
        t0 = time.monotonic()
        st, _ = host.render(inst, float(shot["frames"][0]))
        msg = host.persistent_message(inst) or ""
        assert st == 1 and str(missing) in msg and "VQEDIT_PYTHON" in msg and time.monotonic() - t0 < 10
        broken = tmp_path / "python-broken"  # starts, but cannot run the bridge (as a Python without numpy)
        broken.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named numpy' >&2\nexit 1\n")
        broken.chmod(0o755)
        monkeypatch.setenv("VQEDIT_PYTHON", str(broken))
        t0 = time.monotonic()
        st, _ = host.render(inst, float(shot["frames"][0]))
        msg = host.persistent_message(inst) or ""
        assert st == 1 and "exited at start" in msg and str(broken) in msg and time.monotonic() - t0 < 10
        wrapper = tmp_path / "python-wrapper"
        marker = tmp_path / "used"
        wrapper.write_text(f"#!/bin/sh\ntouch {marker}\nexec {sys.executable} \"$@\"\n")
        wrapper.chmod(0o755)
        monkeypatch.setenv("VQEDIT_PYTHON", str(wrapper))
        st, _ = host.render(inst, float(shot["frames"][0]))
        assert st == 0 and marker.exists()
    finally:
        host.destroy_instance(inst)
        host.unload()
