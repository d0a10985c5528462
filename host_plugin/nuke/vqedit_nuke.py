"""Nuke adapter for the VQFaceEdit gizmo: knobs → EditNode, plate frames out, renders back in.

Deliberately thin: it reads knob values (``valueAt(frame)`` for anything animatable), writes the
gizmo's input through its internal ``PlateWrite`` node, hands pixels to :class:`host_plugin.node.EditNode`
and points the internal ``RenderRead`` node at the written composites. Every decision that can be
tested without Nuke lives in the core. Works in the GUI and under ``nuke -t`` (farm): errors go to
``nuke.message`` and the gizmo's ``status`` knob in the GUI, and are raised in terminal mode so the farm
task fails loudly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import nuke  # type: ignore[import-not-found]  # only importable inside Nuke (or the test stand-in)

from host_plugin.client import RenderClient
from host_plugin.node import FACE_KNOBS, FILL_KNOBS, EditKnobs, EditNode, Plate
from vq_models.errors import VQEditError
from vq_models.io.atomic import atomic_write_bytes
from vq_models.io.images import ImageData, read_image, write_image

_NODES: dict[str, EditNode] = {}  # one EditNode (and client) per gizmo instance
CONNECT_TIMEOUT = 5.0  # seconds the Connect button waits: an artist should not stare at a frozen UI


def _gui() -> bool:
    return bool(getattr(nuke, "env", {}).get("gui", False))


def report(node: Any, text: str, error: bool = False) -> None:
    """Show ``text`` on the gizmo's status knob, and in a dialog for errors (GUI) / raise (terminal)."""
    if "status" in node.knobs():
        node["status"].setValue(text)
    if error:
        if _gui():
            nuke.message(f"VQFaceEdit: {text}")
        else:
            raise RuntimeError(f"VQFaceEdit {node.name()}: {text}")


def knobs_at(node: Any, frame: float) -> EditKnobs:
    """The gizmo's knob values at ``frame`` as the core's :class:`EditKnobs`."""
    face: dict[str, Any] = {k: float(node[k].valueAt(frame)) for k in FACE_KNOBS if k in node.knobs()}
    face.update({k: str(node[k].value()) for k in FILL_KNOBS if k in node.knobs()})
    return EditKnobs(
        server=str(node["server"].value()),
        model=str(node["model"].value()),
        face=face,
        feather=float(node["feather"].valueAt(frame)),
        mix=float(node["mix"].valueAt(frame)),
        mode=str(node["mode"].value()) if "mode" in node.knobs() else "identity",
    )


def edit_node(node: Any, frame: float) -> EditNode:
    """The gizmo's EditNode with knobs refreshed for ``frame`` (client kept across calls)."""
    core = _NODES.get(node.name())
    if core is None:
        core = _NODES[node.name()] = EditNode()
    core.knobs = knobs_at(node, frame)
    return core


def on_connect(node: Any | None = None) -> list[str]:
    """'Connect' button: ping the server and fill the model menu."""
    node = node or nuke.thisNode()
    try:
        client = RenderClient(str(node["server"].value()), timeout=CONNECT_TIMEOUT, retries=0)
        try:
            info = client.info()
            names = [m["name"] for m in client.list_models()]
        finally:
            client.close()
    except VQEditError as exc:
        report(node, str(exc), error=True)
        return []
    node["model"].setValues(names)
    report(node, f"connected: {info['device']}, {len(names)} model(s)")
    return names


def on_load_exemplar(node: Any | None = None) -> str:
    """'Load exemplar' button: fetch the model's exemplar PNG and show it in the gizmo's Read node."""
    node = node or nuke.thisNode()
    frame = nuke.frame()
    try:
        core = edit_node(node, frame)
        png = core.client.exemplar(core.knobs.model)
    except VQEditError as exc:
        report(node, str(exc), error=True)
        return ""
    path = Path(tempfile.gettempdir()) / "vqedit" / f"{node.name()}_{core.knobs.model}_exemplar.png"
    atomic_write_bytes(path, png)
    node["exemplar_file"].setValue(str(path))
    report(node, f"exemplar: {path.name}")
    return str(path)


def render_range(node: Any | None = None, first: int | None = None, last: int | None = None) -> list[str]:
    """'Render range' button (and ``nuke -t`` farm entry): plate frames out, composites back in."""
    node = node or nuke.thisNode()
    first = int(first if first is not None else nuke.root().firstFrame())
    last = int(last if last is not None else nuke.root().lastFrame())
    out_pattern = str(node["output"].value())
    plate_write = node.node("PlateWrite")
    plate_pattern = str(plate_write["file"].value())
    written: list[str] = []
    try:
        for frame in range(first, last + 1):
            nuke.execute(plate_write, frame, frame)
            plate_img = read_image(_frame_path(plate_pattern, frame))
            plate = Plate(plate_img.pixels, plate_img.data_window, plate_img.display_window, plate_img.colorspace)
            res = edit_node(node, frame).evaluate(frame, plate)
            path = _frame_path(out_pattern, frame)
            write_image(path, ImageData(res.image, list("RGBA"[: res.image.shape[2]]), res.data_window,
                                        res.display_window, colorspace=res.colorspace or plate.colorspace), dtype="half")
            written.append(str(path))
    except VQEditError as exc:
        report(node, f"frame {frame}: {exc}", error=True)
        return written
    read = node.node("RenderRead")
    read["file"].setValue(out_pattern)
    read["first"].setValue(first)
    read["last"].setValue(last)
    read["reload"].execute()
    report(node, f"rendered {first}-{last}")
    return written


def _frame_path(pattern: str, frame: int) -> Path:
    import re

    name = re.sub(r"#+", lambda m: f"%0{len(m.group(0))}d", pattern)
    return Path(name % frame if "%" in name else name)


def register() -> None:
    """Called by menu.py: the Nodes toolbar entry; safe to call twice."""
    toolbar = nuke.menu("Nodes")
    menu = toolbar.addMenu("vqedit")
    menu.addCommand("VQFaceEdit", "nuke.createNode('VQFaceEdit')")


__all__ = ["knobs_at", "edit_node", "on_connect", "on_load_exemplar", "render_range", "register", "report"]
