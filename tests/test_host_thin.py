"""The thin host package on its own: a fresh venv with only ``pip install ./host_plugin`` (pyzmq + msgpack)
imports every host module and talks to a real server; with the ``pixels`` extra (numpy) it composites.
And the 3.9 check: Nuke 14 ships Python 3.9, so host_plugin must not use newer syntax or library features.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from server_fixtures import REPO, backend_factory, server, shot_models_dir  # noqa: F401

from vq_models.io.images import ImageData, decode_image_bytes, encode_exr_bytes

HOST = REPO / "host_plugin"
BANNED = ("numpy", "torch", "OpenImageIO", "cv2", "vq_models", "render_server", "PIL", "yaml")
HOST_MODULES = (
    "host_plugin", "host_plugin.client", "host_plugin.node", "host_plugin.protocol", "host_plugin.errors",
    "host_plugin.keys", "host_plugin.modes", "host_plugin.curve", "host_plugin.files", "host_plugin.render_cache",
    "host_plugin.farm", "host_plugin.nuke", "vqedit_nuke",
)

THIN_SCRIPT = r'''
import importlib, importlib.util, json, os, sys, types
args = json.loads(sys.argv[1])
absent = {m: importlib.util.find_spec(m) is None for m in args["banned"]}
nuke = types.ModuleType("nuke")  # the adapter imports nuke at the top; Nuke provides it
nuke.env = {"gui": False}
sys.modules["nuke"] = nuke
import host_plugin
sys.path.insert(0, os.path.join(os.path.dirname(host_plugin.__file__), "nuke"))  # what NUKE_PATH does
for name in args["modules"]:
    importlib.import_module(name)
from host_plugin.files import atomic_write_bytes
from host_plugin.node import EditKnobs, EditNode, PaintMatte
from host_plugin.render_cache import request_digest
node = EditNode(EditKnobs(server=args["address"], model="beta", mode="edit-only", feather=2.0, timeout=60, retries=0,
                          segment_edits=[{"segment": "skin", "translate_x": 1.0}]))
info = node.client.info()
models = [m["name"] for m in node.client.list_models()]
frame = args["frame"]
render = node.fetch_pass(frame)
atomic_write_bytes(args["out"] + "/render.exr", render.exr)
node.knobs.paint_segment = "0"
with open(args["paint"], "rb") as fh:
    painted = node.fetch_pass(frame, "labels", paint=PaintMatte(exr=fh.read()))
atomic_write_bytes(args["out"] + "/labels.exr", painted.exr)
print(json.dumps({
    "absent": absent, "version": list(sys.version_info[:2]), "protocol": info["protocol"], "models": models,
    "data_window": list(render.data_window), "digest": request_digest(node.request_fields(frame)),
    "loaded": sorted(m for m in args["banned"] if m in sys.modules), "file": host_plugin.__file__,
}))
'''

PIXELS_SCRIPT = r'''
import json, sys
import numpy as np
args = json.loads(sys.argv[1])
import host_plugin.ofx.bridge  # noqa: F401 - the OFX bridge passes pixels: numpy is its one extra
from host_plugin.node import EditKnobs, EditNode
node = EditNode(EditKnobs(server=args["address"], model="beta", feather=2.0, timeout=60, retries=0))
plate = np.load(args["plate"])
res = node.evaluate(args["frame"], plate)  # format "half": no EXR decoding on the thin side
np.save(args["out"] + "/comp.npy", res.image)
np.save(args["out"] + "/render.npy", res.render)
print(json.dumps({"render_window": list(res.render_window),
                  "loaded": sorted(m for m in ("torch", "OpenImageIO", "cv2", "vq_models") if m in sys.modules)}))
'''


def _run(python: Path, script: str, args: dict, cwd: Path) -> dict:
    proc = subprocess.run([str(python), "-c", script, json.dumps(args)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def thin_venv(tmp_path_factory) -> Path:
    """A venv holding only ``pip install ./host_plugin`` (a copy of the folder: the build leaves the tree
    clean) and what it depends on."""
    root = tmp_path_factory.mktemp("thin")
    src = root / "src" / "host_plugin"
    shutil.copytree(HOST, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info", "src", "*.cpp", "*.h"))
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    py = root / "venv" / "bin" / "python"
    pip = subprocess.run([str(py), "-m", "pip", "install", "-q", str(src)], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-3000:]
    return py


def test_thin_venv_imports_every_host_module_and_talks_to_a_real_server(
        thin_venv, server, tmp_path, shot_models_dir, backend_factory):  # noqa: F811
    model = backend_factory(shot_models_dir / "beta")
    frame = model.frames[3]
    matte = np.zeros((96, 96, 4), np.float32)
    matte[40:70, 30:66, 3] = 1.0
    paint = tmp_path / "paint.exr"
    paint.write_bytes(encode_exr_bytes(ImageData(matte, list("RGBA"), (0, 0, 96, 96), (0, 0, 96, 96)), dtype="half"))
    out = _run(thin_venv, THIN_SCRIPT, {"banned": list(BANNED), "modules": list(HOST_MODULES), "address": server.address,
                                        "frame": frame, "out": str(tmp_path), "paint": str(paint)}, tmp_path)
    assert all(out["absent"].values()), out["absent"]  # none of torch, numpy, OpenImageIO, cv2, the models
    assert out["loaded"] == [] and "site-packages" in out["file"]
    assert out["protocol"] == 1 and "beta" in out["models"]
    prog = {"version": 1, "edits": [{"op": "translate", "segment": "skin", "value": [1.0, 0.0]}]}
    fr = model.render_frame(frame, prog, feather=2.0, mode="edit-only")
    got = decode_image_bytes((tmp_path / "render.exr").read_bytes())
    assert list(got.data_window) == out["data_window"] == list(fr.rgba_image().data_window)
    np.testing.assert_allclose(got.pixels, fr.rgba_image().pixels, atol=2e-3)
    labels = decode_image_bytes((tmp_path / "labels.exr").read_bytes())
    assert labels.pixels[..., 3].max() == 1.0
    # the thin side's request hash is the full side's: one cache, whichever Python wrote it
    from host_plugin.node import EditKnobs, EditNode
    from host_plugin.render_cache import request_digest

    node = EditNode(EditKnobs(server=server.address, model="beta", mode="edit-only", feather=2.0,
                              segment_edits=[{"segment": "skin", "translate_x": 1.0}]))
    assert request_digest(node.request_fields(frame)) == out["digest"]


def test_pixels_extra_composites_without_the_models(thin_venv, server, tmp_path, shot_models_dir, backend_factory):  # noqa: F811
    pip = subprocess.run([str(thin_venv), "-m", "pip", "install", "-q", "numpy"], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-3000:]
    model = backend_factory(shot_models_dir / "beta")
    frame = model.frames[5]
    plate = np.random.default_rng(9).uniform(0, 1, (96, 96, 3)).astype(np.float32)
    np.save(tmp_path / "plate.npy", plate)
    out = _run(thin_venv, PIXELS_SCRIPT, {"address": server.address, "frame": frame, "plate": str(tmp_path / "plate.npy"),
                                          "out": str(tmp_path)}, tmp_path)
    assert out["loaded"] == []
    comp = np.load(tmp_path / "comp.npy")
    render = np.load(tmp_path / "render.npy")
    alpha = np.zeros((96, 96), np.float32)
    x, y, w, h = out["render_window"]
    alpha[y:y + h, x:x + w] = render[..., 3]
    assert (alpha == 0).any() and (alpha > 0).any()
    assert np.array_equal(comp[alpha == 0], plate[alpha == 0])
    expect = model.render_frame(frame, None, feather=2.0).composite(ImageData(plate, list("RGB"), (0, 0, 96, 96), (0, 0, 96, 96),
                                                                                colorspace="lin_rec709"))
    np.testing.assert_allclose(comp, expect.pixels, atol=2e-3)


def _runtime_unions(path: Path) -> list[str]:
    """``X | Y`` between types outside annotations (3.10+ at run time; annotations are strings here)."""
    tree = ast.parse(path.read_text())
    annotations = set()
    for node in ast.walk(tree):
        for ann in [getattr(node, "annotation", None), getattr(node, "returns", None)]:
            if ann is not None:
                annotations.update(id(n) for n in ast.walk(ann))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) and id(node) not in annotations:
            for side in (node.left, node.right):
                name = side.id if isinstance(side, ast.Name) else side.attr if isinstance(side, ast.Attribute) else None
                if (isinstance(side, ast.Constant) and side.value is None) or (name and (name[0].isupper() or name in
                                                                                   ("int", "str", "float", "bytes", "bool", "list", "dict", "tuple"))):
                    bad.append(f"{path.name}:{node.lineno}")
    return bad


def test_host_plugin_is_python_3_9_code(tmp_path):
    """vermin finds 3.10+ syntax and library features (match, zip(strict=), ...); the AST check finds
    run-time ``X | Y`` unions; ruff checks host_plugin as py39 code in `make test` (pyproject)."""
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent))
    assert vermin, "vermin is a dev dependency (pyproject [dev], scripts/bootstrap.sh)"
    files = sorted(str(p) for p in HOST.rglob("*.py") if "build" not in p.parts)
    proc = subprocess.run([vermin, "-t=3.9-", "--violations", "--no-tips", "--no-parse-comments", *files],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    bad = [b for f in files for b in _runtime_unions(Path(f))]
    assert bad == [], bad
    probe = "def f(x):\n    match x:\n        case 1:\n            return zip([1], [2], strict=True)\n"
    (tmp_path / "probe.py").write_text(probe)  # the check itself can fail
    assert subprocess.run([vermin, "-t=3.9-", "--violations", "--no-tips", str(tmp_path / "probe.py")],
                          capture_output=True).returncode != 0
