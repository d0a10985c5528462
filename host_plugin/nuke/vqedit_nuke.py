"""Nuke adapter for the VQFaceEdit gizmo: knobs → EditNode requests → pass files that Nuke reads natively.

The gizmo's Python never touches plate pixels. For each frame it asks the render server for the
premultiplied RGBA render pass (and the labels pass), writes the EXR bytes to disk as the server sent
them (atomically), and the gizmo's own ``RenderRead`` → ``Merge2`` (over, mix) puts them over the input:
outside the render's alpha the output is the input bit for bit, at any bit depth, because Nuke does the
merge. ``RenderRead`` errors on a missing frame, and a failed frame's file is deleted, so an unrendered
or failed frame is a Nuke error on that frame, never black and never an old render.

Knobs are read with ``valueAt(frame)`` (animated), ``value()`` (plain text) and, for file knobs,
``evaluate()`` (TCL expanded: ``value()`` would return ``[file dirname [value root.name]]/...``). A knob
change that alters the request marks the node stale (status line, orange tile, ``stale`` label) until
the next render; the request-hash cache (:mod:`host_plugin.render_cache`) renders only frames whose
request changed. Works in the GUI (``nuke.ProgressTask`` with cancel, errors in a dialog) and under
``nuke -t`` (no dialogs: errors are raised so the farm task fails).

Needs pyzmq and msgpack in Nuke's Python, nothing else (no numpy, no OpenImageIO).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nuke  # type: ignore[import-not-found]  # only importable inside Nuke (or the test stand-in)

from host_plugin.client import RenderClient, ServerUnavailable
from host_plugin.errors import VQEditError
from host_plugin.files import atomic_write_bytes
from host_plugin.knobs import (
    DRIVER_KNOBS,
    FACE_KNOBS,
    FILL_KNOBS,
    FLAG_KNOBS,
    SEGMENT_EDIT_FIELDS,
    SEGMENT_EDIT_ROWS,
)
from host_plugin.node import EditKnobs, EditNode, PaintMatte
from host_plugin.render_cache import RequestCache, request_digest

_NODES: dict[str, EditNode] = {}  # one EditNode (and client) per gizmo instance
CONNECT_TIMEOUT = 5.0  # seconds the Connect button waits: an artist should not stare at a frozen UI
TILE = 0x5F8FBFFF  # the gizmo's own colour
STALE_TILE = 0xD9822BFF  # orange: the passes on disk were made with other knob values
PASSES = ("render", "labels")

# Knobs whose change alters a render request (everything else: mix is the Merge's, view the Switch's ...).
REQUEST_KNOBS = frozenset(
    ["model", "feather", "mode", "paint_segment", "program_file", *FACE_KNOBS, *FILL_KNOBS, *FLAG_KNOBS, *DRIVER_KNOBS]
    + [f"seg{i}_{f}" for i in range(1, SEGMENT_EDIT_ROWS + 1) for f in SEGMENT_EDIT_FIELDS]
)


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


def mark_stale(node: Any, stale: bool, text: str = "") -> None:
    """Show on the node whether its passes on disk still match its knobs (tile colour, label, status)."""
    node["tile_color"].setValue(STALE_TILE if stale else TILE)
    node["label"].setValue("stale" if stale else "")
    if text:
        node["status"].setValue(text)


def _text(node: Any, name: str) -> str:
    return str(node[name].value()) if name in node.knobs() else ""


def _file(node: Any, name: str) -> str:
    """A file knob's path with its TCL expanded (``evaluate()``; ``value()`` is the unexpanded text)."""
    return str(node[name].evaluate() or "").strip() if name in node.knobs() else ""


def knobs_at(node: Any, frame: float) -> EditKnobs:
    """The gizmo's knob values at ``frame`` as the core's :class:`EditKnobs`."""
    names = node.knobs()
    face: dict[str, Any] = {k: float(node[k].valueAt(frame)) for k in FACE_KNOBS if k in names}
    face.update({k: _text(node, k) for k in FILL_KNOBS if k in names})
    face.update({k: bool(node[k].valueAt(frame)) for k in FLAG_KNOBS if k in names})  # Boolean_Knob: 0/1
    rows = []
    for i in range(1, SEGMENT_EDIT_ROWS + 1):
        if f"seg{i}_segment" not in names:
            continue
        rows.append({f: _text(node, f"seg{i}_{f}") if isinstance(neutral, str) else float(node[f"seg{i}_{f}"].valueAt(frame))
                     for f, neutral in SEGMENT_EDIT_FIELDS.items()})
    return EditKnobs(
        server=_text(node, "server"),
        model=_text(node, "model").strip(),
        face=face,
        segment_edits=rows,
        paint_segment=_text(node, "paint_segment").strip(),
        program_file=_file(node, "program_file"),
        feather=float(node["feather"].valueAt(frame)),
        mix=float(node["mix"].valueAt(frame)),
        mode=_text(node, "mode") or "identity",
        # expression transfer: the driver shot's name, and its strength and frame offset at this frame (animatable)
        driver=_text(node, "driver").strip(),
        **{k: float(node[k].valueAt(frame)) for k in ("driver_strength", "driver_frame_offset") if k in names},
    )


def edit_node(node: Any, frame: float) -> EditNode:
    """The gizmo's EditNode with knobs refreshed for ``frame`` (client kept across calls)."""
    core = _NODES.get(node.name())
    if core is None:
        core = _NODES[node.name()] = EditNode()
    core.knobs = knobs_at(node, frame)
    return core


def pass_path(node: Any, pass_name: str, frame: int) -> Path:
    """Where the gizmo's Read nodes look for ``pass_name`` at ``frame``."""
    return Path(_file(node, "output_dir")) / pass_name / f"{pass_name}.{int(frame):04d}.exr"


def on_create(node: Any | None = None) -> None:
    """onCreate: the model picker shows the saved model (a string knob, so a farm machine keeps it)."""
    node = node or nuke.thisNode()
    model = _text(node, "model").strip()
    if model:
        node["model_pick"].setValues([model])


def on_knob_changed(node: Any | None = None, knob: Any | None = None) -> None:
    """knobChanged: copy the picker into ``model``; mark the node stale when a request knob changes."""
    node = node or nuke.thisNode()
    knob = knob or nuke.thisKnob()
    name = knob.name()
    if name == "model_pick":
        picked = str(knob.value() or "")
        if picked and picked != _text(node, "model"):
            node["model"].setValue(picked)
            name = "model"
    if name in REQUEST_KNOBS:
        mark_stale(node, True, f"stale: {name} changed since the last render (press Render range)")


def on_connect(node: Any | None = None) -> list[str]:
    """'Connect' button: ping the server and fill the model picker (the model knob itself is a string)."""
    node = node or nuke.thisNode()
    try:
        client = RenderClient(_text(node, "server"), timeout=CONNECT_TIMEOUT, retries=0)
        try:
            info = client.info()
            models = client.list_models()
        finally:
            client.close()
    except VQEditError as exc:
        report(node, str(exc), error=True)
        return []
    names = [m["name"] for m in models]
    warnings = {m["name"]: m["warning"] for m in models if m.get("warning")}
    node["model_pick"].setValues(names)
    current = _text(node, "model").strip()
    if not current and names:
        current = names[0]
        node["model"].setValue(current)
    elif current and current not in names:
        report(node, f"connected: {info['device']}; model {current!r} is not on this server ({len(names)} there)")
        return names
    text = f"connected: {info['device']}, {len(names)} model(s)"
    if current in warnings:  # the shot this node renders: the server's whole message
        text += f"; {current}: {warnings[current]}"
    elif warnings:  # others: their names (picking one shows its message)
        text += f"; needing attention: {', '.join(sorted(warnings))} (pick one and Connect for why)"
    report(node, text)
    return names


def on_load_exemplar(node: Any | None = None) -> str:
    """'Load exemplar' button: fetch the model's exemplar PNG for the ``exemplar`` view."""
    node = node or nuke.thisNode()
    frame = int(nuke.frame())
    try:
        core = edit_node(node, frame)
        if not core.knobs.model:
            raise VQEditError("model knob: no shot model chosen (press Connect and pick one, or type its name)")
        png = core.client.exemplar(core.knobs.model)
        path = atomic_write_bytes(Path(_file(node, "output_dir")) / "exemplar" / f"{core.knobs.model}.png", png)
    except (VQEditError, OSError) as exc:
        report(node, str(exc), error=True)
        return ""
    node["exemplar_file"].setValue(str(path))
    report(node, f"exemplar: {path.name}")
    return str(path)


def _paint(node: Any, frame: int) -> PaintMatte | None:
    """The paint input at ``frame`` as EXR bytes written by the gizmo's PaintWrite (None: not connected)."""
    if node.input(1) is None:
        return None
    write = node.node("PaintWrite")
    nuke.execute(write, frame, frame)
    path = Path(_file(node, "output_dir")) / "paint" / f"paint.{frame:04d}.exr"
    try:
        return PaintMatte(exr=path.read_bytes())
    except OSError as exc:
        raise VQEditError(f"paint input at frame {frame}: PaintWrite wrote nothing readable ({exc})") from None


class _Progress:
    """nuke.ProgressTask in the GUI (with cancel); nothing under ``nuke -t``."""

    def __init__(self, title: str):
        self.task = nuke.ProgressTask(title) if _gui() else None

    def step(self, done: int, total: int, message: str) -> bool:
        """Update; False when the artist pressed cancel."""
        if self.task is None:
            return True
        if self.task.isCancelled():
            return False
        self.task.setMessage(message)
        self.task.setProgress(int(100 * done / max(1, total)))
        return True

    def close(self) -> None:
        self.task = None  # Nuke closes the task when the object goes away


def render_range(node: Any | None = None, first: int | None = None, last: int | None = None,
                 passes: tuple[str, ...] = PASSES) -> list[str]:
    """'Render range' button (and the ``nuke -t`` farm entry): render the passes of frames whose request
    changed; returns the files written. Failed frames are deleted (a Nuke error on that frame)."""
    node = node or nuke.thisNode()
    first = int(first if first is not None else nuke.root().firstFrame())
    last = int(last if last is not None else nuke.root().lastFrame())
    written: list[str] = []
    failed: list[str] = []
    cache = RequestCache(Path(_file(node, "output_dir")) / "requests.json")
    if "force" in node.knobs() and bool(node["force"].value()):
        cache.clear()
    progress = _Progress(f"VQFaceEdit {node.name()}")
    skipped = 0
    frames = list(range(first, last + 1))
    cancelled = None
    try:
        for i, frame in enumerate(frames):
            if not progress.step(i, len(frames), f"frame {frame}"):
                cancelled = frame
                break
            try:
                core = edit_node(node, frame)
                paint = _paint(node, frame)
                for pass_name in passes:
                    fields = core.request_fields(frame, paint=paint, pass_name=pass_name, fmt="exr")
                    digest = request_digest(fields)
                    path = pass_path(node, pass_name, frame)
                    if cache.fresh(pass_name, frame, digest, path):
                        skipped += 1
                        continue
                    cache.forget(pass_name, frame, path)  # the old file must not outlive a failed request
                    result = core.fetch_pass(frame, pass_name, fields=fields)
                    atomic_write_bytes(path, result.exr)
                    cache.store(pass_name, frame, digest)
                    written.append(str(path))
            except ServerUnavailable:
                raise
            except (VQEditError, OSError) as exc:  # this frame only: a bad request, a file that cannot be written
                for pass_name in passes:
                    cache.forget(pass_name, frame, pass_path(node, pass_name, frame))
                failed.append(f"frame {frame}: {exc}")
    except VQEditError as exc:  # the server is gone: every further frame would fail the same way
        progress.close()
        report(node, f"frame {frame}: {exc}", error=True)
        return written
    progress.close()
    for name in ("RenderRead", "LabelsRead"):
        read = node.node(name)
        if "reload" in read.knobs():
            read["reload"].execute()
    done = f"rendered {first}-{last}: {len(written)} pass file(s) written, {skipped} unchanged"
    if cancelled is not None:
        mark_stale(node, True)
        report(node, f"cancelled at frame {cancelled}; {done}")
        return written
    if failed:
        mark_stale(node, True)
        report(node, f"{len(failed)} frame(s) failed ({failed[0]}); {done}", error=True)
        return written
    mark_stale(node, False)
    report(node, done)
    return written


def register() -> None:
    """Called by menu.py: the Nodes toolbar entry; safe to call twice."""
    toolbar = nuke.menu("Nodes")
    menu = toolbar.addMenu("vqedit")
    menu.addCommand("VQFaceEdit", "nuke.createNode('VQFaceEdit')")


__all__ = [
    "knobs_at", "edit_node", "on_connect", "on_create", "on_knob_changed", "on_load_exemplar", "render_range",
    "register", "report", "mark_stale", "pass_path",
]
