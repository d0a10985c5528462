"""A stand-in for Nuke's ``nuke`` module, following Nuke's documented behaviour where the adapter relies on it.

Nuke cannot run here. What this module copies from the Nuke Python API documentation (learn.foundry.com,
``nuke.File_Knob``, ``nuke.EvalString_Knob``, ``nuke.Array_Knob.valueAt``, ``nuke.execute``,
``nuke.ProgressTask``, the Read node's ``on_error``):

- ``value()`` of a file or text knob returns its text **unevaluated** (TCL such as ``[value root.name]``
  left as written, ``####`` normalised to ``%04d``); ``evaluate()`` expands the TCL and substitutes the
  current frame number.
- ``valueAt(frame)`` of an animated knob returns the curve's value at that frame (keys held outside;
  Nuke's default curve is smooth, here linear between keys: the adapter only reads the number).
- ``nuke.execute(write, first, last)`` renders a Write node's input to its (evaluated) file, and raises
  when the Write has no input.
- A Read node whose file is missing raises (``on_error error``) or gives black (``on_error black``).
- ``nuke.ProgressTask`` has ``setMessage``, ``setProgress`` (0-100) and ``isCancelled``.
- Under ``nuke -t`` (terminal mode, ``env["gui"]`` false) there are no dialogs: ``nuke.message`` here
  raises, so an adapter that would call it in terminal mode fails the test.

The gizmo is built from ``gizmos/VQFaceEdit.gizmo`` itself (its user knobs and its internal node graph),
and :func:`render` evaluates the gizmo's output the way Nuke would: Switch → Merge2 (over, mix) of a
Read over the input, with Nuke's premultiplied over ``A + B·(1 - a)`` and ``B + mix·(merged - B)``.
"""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

import numpy as np

from vq_models.io.images import ImageData, read_image, write_image


class NukeError(RuntimeError):
    """What Nuke shows as a node error on a frame (red node, error in the viewer)."""


# --- knobs ------------------------------------------------------------------------------------------
class Knob:
    """A plain knob: text, number, boolean or button."""

    def __init__(self, name: str, value: Any = "", kind: int = 1, node: Any = None, script: str = ""):
        self._name, self._value, self.kind, self.node, self.script = name, value, kind, node, script
        self.keys: dict[float, float] = {}
        self.expression = ""
        self.executed = 0

    def name(self) -> str:
        return self._name

    def value(self) -> Any:
        if self.expression:
            return self.node.module.eval_expression(self.expression, self.node)
        if self.keys:
            return self.valueAt(self.node.module.frame())
        if self.kind in (2, 1) and isinstance(self._value, str):
            return re.sub(r"#+", lambda m: f"%0{len(m.group(0))}d", self._value)
        return self._value

    def getValue(self) -> Any:  # noqa: N802 - Nuke's API name
        return self.value()

    def valueAt(self, frame: float, index: int | None = None) -> Any:  # noqa: N802
        if self.expression:
            return self.node.module.eval_expression(self.expression, self.node)
        if not self.keys:
            return self._value
        fs = sorted(self.keys)
        return float(np.interp(float(frame), fs, [self.keys[f] for f in fs]))

    def setValue(self, v: Any) -> None:  # noqa: N802
        self._value = v
        self.keys = {}

    def setValueAt(self, v: float, frame: float) -> None:  # noqa: N802
        self.keys[float(frame)] = float(v)

    def setExpression(self, text: str) -> None:  # noqa: N802
        self.expression = text

    def execute(self) -> None:
        self.executed += 1


class EvalKnob(Knob):
    """File_Knob / EvalString_Knob: ``evaluate()`` expands TCL and the frame number."""

    def evaluate(self) -> str:
        mod = self.node.module
        text = mod.expand_tcl(str(self._value), self.node)
        return re.sub(r"#+|%0?(\d*)d", lambda m: _frame_text(m.group(0), mod.frame()), text)


def _frame_text(token: str, frame: int) -> str:
    if token.startswith("#"):
        return f"{frame:0{len(token)}d}"
    digits = re.findall(r"\d+", token)
    return f"{frame:0{int(digits[0])}d}" if digits else str(frame)


class EnumKnob(Knob):
    def __init__(self, name: str, values: list[str], node: Any = None):
        super().__init__(name, values[0] if values else "", 4, node)
        self._values = list(values)

    def values(self) -> list[str]:
        return list(self._values)

    def setValues(self, values: list[str]) -> None:  # noqa: N802
        self._values = [str(v) for v in values]
        if self._value not in self._values:
            self._value = self._values[0] if self._values else ""

    def setValue(self, v: Any) -> None:  # noqa: N802
        if isinstance(v, int) and not isinstance(v, bool):
            v = self._values[v]
        if v not in self._values:
            raise ValueError(f"{self._name}: {v!r} is not one of {self._values}")
        self._value = v

    def index(self) -> int:
        return self._values.index(self._value) if self._value in self._values else 0


# --- nodes ------------------------------------------------------------------------------------------
class Node:
    def __init__(self, module: Any, cls: str, name: str, knobs: dict[str, Knob] | None = None):
        self.module, self.cls, self._name = module, cls, name
        self._knobs: dict[str, Knob] = {}
        self.inputs: list[Any] = []
        self.children: dict[str, Node] = {}
        self.parent: Node | None = None
        for k in (knobs or {}).values():
            self.add(k)

    def add(self, knob: Knob) -> Knob:
        knob.node = self
        self._knobs[knob.name()] = knob
        return knob

    def Class(self) -> str:  # noqa: N802
        return self.cls

    def name(self) -> str:
        return self._name

    def knobs(self) -> dict[str, Knob]:
        return self._knobs

    def knob(self, name: str) -> Knob | None:
        return self._knobs.get(name)

    def __getitem__(self, name: str) -> Knob:
        return self._knobs[name]

    def node(self, name: str) -> Node | None:
        return self.children.get(name)

    def input(self, i: int) -> Any:
        return self.inputs[i] if i < len(self.inputs) else None

    def setInput(self, i: int, node: Any) -> None:  # noqa: N802
        while len(self.inputs) <= i:
            self.inputs.append(None)
        self.inputs[i] = node


class Source:
    """An upstream node feeding the gizmo: ``frames[frame]`` is an ImageData (RGB/RGBA)."""

    def __init__(self, frames: dict[int, ImageData]):
        self.frames = frames

    def name(self) -> str:
        return "Source"


# --- the gizmo file ---------------------------------------------------------------------------------
_USER_KNOB = re.compile(r"addUserKnob \{(\d+) (\w+)(.*)\}")


def _tcl_value(text: str) -> Any:
    text = text.strip()
    if text.startswith('"') and text.endswith('"'):
        text = text[1:-1].replace('\\"', '"')
    return text.replace("\\[", "[")  # .nk escapes a TCL bracket in a knob's text as \[


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    """Top-level statements of a .nk/.gizmo file: ("Class", lines) for node blocks, ("set"/"push", [arg])."""
    out: list[tuple[str, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#") or line.startswith("version"):
            continue
        if line.startswith("set "):
            out.append(("set", [line.split()[1]]))
        elif line.startswith("push "):
            out.append(("push", [line.split()[1]]))
        elif line == "end_group":
            out.append(("end_group", []))
        elif line.endswith("{"):
            cls = line[:-1].strip()
            body: list[str] = []
            depth = 1
            while i < len(lines):
                raw = lines[i]
                i += 1
                stripped = raw.strip()
                if stripped == "}" and depth == 1 and raw.startswith((" }", "}")) and len(raw) - len(raw.lstrip()) <= 1:
                    break
                body.append(stripped)
            out.append((cls, body))
    return out


def _knob_line(line: str) -> tuple[str, str]:
    name, _, value = line.partition(" ")
    return name, value


def build_gizmo(module: Any, path: Path, name: str = "VQFaceEdit1") -> Node:
    """The gizmo as Nuke would instantiate it: its user knobs with their defaults and its internal graph."""
    blocks = _blocks(path.read_text())
    (cls, body), rest = blocks[0], blocks[1:]
    assert cls == "Gizmo", cls
    gizmo = Node(module, "Gizmo", name)
    gizmo.add(Knob("tile_color", 0x5F8FBFFF, 0))
    gizmo.add(Knob("label", "", 1))
    for line in body:
        m = _USER_KNOB.match(line)
        if m:
            kind, kname, rest_text = int(m.group(1)), m.group(2), m.group(3)
            if kind == 4:
                items = re.search(r"M \{([^}]*)\}", rest_text)
                gizmo.add(EnumKnob(kname, items.group(1).split() if items else []))
            elif kind in (1, 2):
                gizmo.add(EvalKnob(kname, "", kind))
            elif kind == 22:
                script = re.search(r' T "(.*)"', rest_text)
                gizmo.add(Knob(kname, None, kind, script=script.group(1) if script else ""))
            elif kind in (7, 3, 6):
                gizmo.add(Knob(kname, 0.0 if kind == 7 else 0, kind))
            else:
                gizmo.add(Knob(kname, "", kind))
            continue
        kname, value = _knob_line(line)
        if kname in gizmo.knobs():
            k = gizmo[kname]
            v = _tcl_value(value)
            k._value = float(v) if k.kind == 7 else (v if k.kind != 6 else v == "true")
        elif kname in ("knobChanged", "onCreate", "help", "inputs"):
            gizmo.add(Knob(kname, _tcl_value(value), 0))
    stack: list[Any] = []
    named: dict[str, Any] = {}
    inputs: list[Node] = []
    for cls, body in rest:
        if cls == "set":
            named[body[0]] = stack[-1]
            continue
        if cls == "push":
            stack.append(named[body[0].lstrip("$")])
            continue
        if cls == "end_group":
            break
        knobs = dict(_knob_line(line) for line in body)
        n_inputs = int(knobs.get("inputs", 0 if cls in ("Input", "Read") else 1))
        node = Node(module, cls, knobs.get("name", cls))
        node.parent = gizmo
        for kname, value in knobs.items():
            v = _tcl_value(value)
            k = node.add(EvalKnob(kname, v.replace("\\[", "["), 2) if kname == "file" else Knob(kname, v, 1))
            expr = re.fullmatch(r"\{\{(.*)\}\}", value.strip())
            if expr:
                k.setExpression(expr.group(1))
        for i in range(n_inputs):
            node.setInput(i, stack.pop())
        if cls == "Read":
            node.add(Knob("reload", None, 22))
        gizmo.children[node.name()] = node
        if cls == "Input":
            inputs.append(node)
        stack.append(node)
    gizmo.input_nodes = sorted(inputs, key=lambda n: int(n["number"].value()) if "number" in n.knobs() else 0)  # type: ignore[attr-defined]
    return gizmo


# --- the module -------------------------------------------------------------------------------------
def make_module(root_name: str, first: int, last: int, gui: bool = True) -> types.ModuleType:
    """A fresh ``nuke`` module: ``root.name`` is the script path, frame range first-last."""
    mod = types.ModuleType("nuke")
    mod.env = {"gui": gui}
    mod.calls = []
    mod.current_frame = first
    mod.cancel_after = None  # ProgressTask.isCancelled() turns True after this many checks
    root = Node(mod, "Root", "root")
    root.add(EvalKnob("name", root_name, 2))
    root.firstFrame = lambda: first  # type: ignore[attr-defined]
    root.lastFrame = lambda: last  # type: ignore[attr-defined]
    mod.root = lambda: root
    mod.frame = lambda: mod.current_frame

    def message(text: str) -> None:
        if not mod.env["gui"]:
            raise RuntimeError("nuke.message called in terminal mode (nuke -t has no dialogs)")
        mod.calls.append(("message", text))

    mod.message = message

    def resolve(ref: str, this: Node) -> Any:
        owner_name, _, knob = ref.partition(".")
        owner = {"root": root, "this": this, "parent": this.parent or this}.get(owner_name)
        if owner is None:
            raise NukeError(f"TCL: unknown node {owner_name!r}")
        if knob == "name":
            return owner.name() if owner is not root else root["name"].value()
        k = owner.knob(knob)
        if k is None:
            raise NukeError(f"TCL: no knob {ref!r}")
        return k.value() if not isinstance(k, EvalKnob) else mod.expand_tcl(str(k._value), owner)

    def expand_tcl(text: str, this: Node) -> str:
        text = text.replace("\\[", "[").replace("\\]", "]")
        pattern = re.compile(r"\[([^\[\]]*)\]")
        while True:
            m = pattern.search(text)
            if not m:
                return text
            words = m.group(1).split()
            if words[:1] == ["value"] and len(words) == 2:
                out = str(resolve(words[1], this))
            elif words[:2] == ["file", "dirname"] and len(words) == 3:
                out = str(Path(words[2]).parent)
            else:
                raise NukeError(f"TCL: cannot evaluate [{m.group(1)}]")
            text = text[:m.start()] + out + text[m.end():]

    mod.expand_tcl = expand_tcl

    def eval_expression(expr: str, this: Node) -> Any:
        ref = expr.strip()
        owner_name, _, knob = ref.partition(".")
        owner = this.parent if owner_name == "parent" else this
        k = owner[knob]
        if isinstance(k, EnumKnob):
            return k.index()
        return k.valueAt(mod.frame())

    mod.eval_expression = eval_expression

    def execute(node: Node, first_frame: int, last_frame: int) -> None:
        mod.calls.append(("execute", node.name(), first_frame, last_frame))
        if node.cls != "Write":
            raise NukeError(f"{node.name()}: not executable")
        for frame in range(int(first_frame), int(last_frame) + 1):
            image = mod.pull(node.input(0), frame)
            saved = mod.current_frame
            mod.current_frame = frame
            path = Path(node["file"].evaluate())
            mod.current_frame = saved
            if str(node["channels"].value()) == "alpha":
                a = image.pixels[..., -1:] if image.pixels.shape[2] in (1, 4) else np.zeros(image.pixels.shape[:2] + (1,), np.float32)
                image = ImageData(a, ["A"], image.data_window, image.display_window, colorspace=image.colorspace)
            path.parent.mkdir(parents=True, exist_ok=True)
            depth = "half" if "half" in str(node["datatype"].value()) else "float"
            write_image(path, image, dtype=depth)

    mod.execute = execute

    def pull(node: Any, frame: int) -> ImageData:
        """Evaluate ``node``'s image at ``frame`` (the subset of Nuke ops the gizmo uses)."""
        if node is None:
            raise NukeError("input not connected")
        if isinstance(node, Source):
            return node.frames[frame]
        if node.cls == "Input":
            number = int(node["number"].value()) if "number" in node.knobs() else 0
            return pull(node.parent.input(number), frame)
        if node.cls == "Read":
            saved = mod.current_frame
            mod.current_frame = frame
            path = Path(node["file"].evaluate())
            mod.current_frame = saved
            if not path.is_file():
                if str(node["on_error"].value()) == "error":
                    raise NukeError(f"{node.name()}: Read error: {path}: No such file or directory")
                return None  # type: ignore[return-value]  # black: resolved by the consumer
            return read_image(path, allow_mono=True)
        if node.cls == "Merge2":
            b = pull(node.input(0), frame)
            a = pull(node.input(1), frame)
            return _merge_over(a, b, float(node["mix"].valueAt(frame)) if "mix" in node.knobs() else 1.0)
        if node.cls == "Switch":
            return pull(node.input(int(node["which"].valueAt(frame))), frame)
        if node.cls == "Output":
            return pull(node.input(0), frame)
        raise NukeError(f"stand-in cannot evaluate {node.cls}")

    mod.pull = pull
    mod.render = lambda gizmo, frame: pull(gizmo.children["Output1"], frame)

    class ProgressTask:
        def __init__(self, title: str):
            self.title, self.messages, self.progress, self.checks = title, [], [], 0
            mod.calls.append(("ProgressTask", title))
            mod.tasks = [*getattr(mod, "tasks", []), self]

        def setMessage(self, text: str) -> None:  # noqa: N802
            self.messages.append(text)

        def setProgress(self, value: int) -> None:  # noqa: N802
            if not 0 <= int(value) <= 100:
                raise ValueError("ProgressTask.setProgress: 0-100")
            self.progress.append(int(value))

        def isCancelled(self) -> bool:  # noqa: N802
            self.checks += 1
            return mod.cancel_after is not None and self.checks > mod.cancel_after

    mod.ProgressTask = ProgressTask
    mod.pluginAddPath = lambda p: mod.calls.append(("pluginAddPath", p))
    mod.thisNode = lambda: mod.this_node
    mod.thisKnob = lambda: mod.this_knob
    return mod


def _merge_over(a: ImageData | None, b: ImageData, mix: float) -> ImageData:
    """Merge2 over, output rgb: ``B + mix·((A + B·(1 - a)) - B)`` on RGB over B's data window (A is 0
    outside its own data window), B's other channels untouched; float32 like Nuke's engine."""
    out = np.array(b.pixels, dtype=np.float32, copy=True)
    h, w = out.shape[:2]
    A = np.zeros((h, w, 4), np.float32)
    if a is not None:
        ax, ay, aw, ah = a.data_window
        bx, by = b.data_window[:2]
        x0, y0 = max(ax, bx), max(ay, by)
        x1, y1 = min(ax + aw, bx + w), min(ay + ah, by + h)
        if x1 > x0 and y1 > y0:
            A[y0 - by:y1 - by, x0 - bx:x1 - bx] = a.pixels[y0 - ay:y1 - ay, x0 - ax:x1 - ax, :4]
    B = out[..., :3]
    merged = A[..., :3] + B * (np.float32(1.0) - A[..., 3:4])
    out[..., :3] = B + np.float32(mix) * (merged - B)
    return ImageData(out, list(b.channels), b.data_window, b.display_window, colorspace=b.colorspace)
