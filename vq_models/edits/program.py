"""Edit programs: keyframed label-map edits as JSON (format with examples in docs/edits.md).

::

    {"version": 1, "edits": [
        {"op": "eye_open", "eye": "both", "keys": [[1001, 1.0], [1010, 0.0]], "interp": "linear"},
        {"op": "gaze", "eye": "both", "keys": [[1001, [0.0, 0.0]], [1020, [0.2, 0.0]]], "interp": "smooth"}
    ]}

A program is data, not code: the render server, the host plugin and the farm all parse the same file and
get the same frames. Validation is strict (unknown ops, fields, segment names, bad keys) and every error
names the JSON path of the problem, because artists write these by hand and a silently ignored typo
would render the wrong shot.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from host_plugin.keys import INTERPOLATIONS, interpolate
from vq_models.edits.ops import FACE_OPERATIONS
from vq_models.edits.prior import STANDARD_SEGMENTS, Prior
from vq_models.edits.segment_ops import SEGMENT_OPERATIONS
from vq_models.edits.spec import (
    DetailMove,
    DonorRule,
    EdgeShift,
    EditRule,
    FilledRegion,
    FrameContext,
    Operation,
    OpResult,
    OpSpec,
    PlateRemnants,
    Value,
)
from vq_models.errors import InputError

PROGRAM_VERSION = 1
SIDES = ("left", "right", "both")



def _show(v: Any) -> str:
    """JSON text of a value for an error message (repr for what JSON cannot show, e.g. msgpack bytes)."""
    try:
        text = json.dumps(v)
    except (TypeError, ValueError):
        text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


# every operation, spec beside function, from the op modules
OPS: dict[str, Operation] = {**FACE_OPERATIONS, **SEGMENT_OPERATIONS}
_COMMON = ("op", "keys", "value", "interp", "comment")


@dataclass(frozen=True)
class Edit:
    """One validated operation with its keyframes; ``params`` holds the op-specific fields."""

    op: str
    params: dict[str, Any]
    keys: tuple[tuple[float, Value], ...]
    interp: str = "linear"
    index: int = 0

    def value_at(self, frame: float) -> Value:
        """The value at ``frame``: :func:`host_plugin.keys.interpolate` (held outside the keys; ``step``,
        ``linear`` or ``smooth`` between them), the same function a host's knobs use."""
        return interpolate(self.keys, frame, self.interp)

    def to_json(self) -> dict[str, Any]:
        keys = [[f, list(v) if isinstance(v, tuple) else v] for f, v in self.keys]
        return {"op": self.op, **self.params, "keys": keys, "interp": self.interp}


@dataclass(frozen=True)
class EditProgram:
    edits: tuple[Edit, ...]
    version: int = PROGRAM_VERSION
    source: str = "program"

    def values_at(self, frame: float) -> list[tuple[Edit, Value]]:
        """Every edit with its value at ``frame``, in program order (the order they are applied)."""
        return [(edit, edit.value_at(frame)) for edit in self.edits]

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "edits": [e.to_json() for e in self.edits]}


# --- validation ----------------------------------------------------------------------------------------


class _Checker:
    def __init__(self, where: str, segment_names: set[str], prior: Prior | None):
        self.where = where
        self.segment_names = segment_names
        self.prior = prior

    def fail(self, path: str, message: str) -> InputError:
        return InputError(f"{self.where}: {path}: {message}")

    def value(self, spec: OpSpec, raw: Any, path: str) -> Value:
        if spec.value == "scale" and _is_number(raw):
            raw = [raw, raw]
        if spec.value == "scalar":
            if not _is_number(raw):
                raise self.fail(path, f"expected a number, got {_show(raw)}")
            nums = [float(raw)]
        else:
            if not (isinstance(raw, list) and len(raw) == 2 and all(_is_number(v) for v in raw)):
                what = "a number or [sx, sy]" if spec.value == "scale" else "[dx, dy] numbers"
                raise self.fail(path, f"expected {what}, got {_show(raw)}")
            nums = [float(v) for v in raw]
        for v in nums:
            if not spec.low <= v <= spec.high:
                raise self.fail(path, f"value {v:g} out of range {spec.low:g}..{spec.high:g}")
        if spec.value == "scale" and min(nums) <= 0:
            raise self.fail(path, "scale factors must be > 0")
        return nums[0] if spec.value == "scalar" else (nums[0], nums[1])

    def keys(self, spec: OpSpec, edit: Mapping[str, Any], path: str) -> tuple[tuple[float, Value], ...]:
        if "keys" in edit and "value" in edit:
            raise self.fail(path, "give either keys or value, not both")
        if "value" in edit:
            return ((0.0, self.value(spec, edit["value"], f"{path}.value")),)
        if "keys" not in edit:
            raise self.fail(path, "missing keys (list of [frame, value]) or value")
        keys = edit["keys"]
        if not isinstance(keys, list) or not keys:
            raise self.fail(f"{path}.keys", "expected a non-empty list of [frame, value] pairs")
        out: list[tuple[float, Value]] = []
        for j, key in enumerate(keys):
            kp = f"{path}.keys[{j}]"
            if not isinstance(key, list) or len(key) != 2:
                raise self.fail(kp, f"expected [frame, value], got {_show(key)}")
            frame = key[0]
            if not _is_number(frame):
                raise self.fail(f"{kp}[0]", f"expected a frame number, got {_show(frame)}")
            if out and float(frame) <= out[-1][0]:
                raise self.fail(f"{kp}[0]", f"frame {frame} must be after the previous key's frame {out[-1][0]:g}")
            out.append((float(frame), self.value(spec, key[1], f"{kp}[1]")))
        return tuple(out)

    def segment(self, raw: Any, path: str) -> str:
        if not isinstance(raw, str):
            raise self.fail(path, f"expected a segment name, got {_show(raw)}")
        if raw not in self.segment_names:
            hint = "not in the prior" if self.prior is not None else "not a standard segment"
            raise self.fail(path, f"unknown segment {raw!r} ({hint}; known: {', '.join(sorted(self.segment_names))})")
        return raw

    def code(self, raw: Any, path: str) -> int:
        if not (isinstance(raw, int) and not isinstance(raw, bool)):
            raise self.fail(path, f"expected an integer code, got {_show(raw)}")
        limit = self.prior.num_codes if self.prior is not None else 256
        if not 0 <= raw < limit:
            raise self.fail(path, f"code {raw} out of range 0..{limit - 1}")
        return raw

    def target_ref(self, raw: Any, path: str) -> str | int:
        """A segment name or a code."""
        return self.segment(raw, path) if isinstance(raw, str) else self.code(raw, path)

    def fill(self, raw: Any, path: str) -> str | int | dict[str, str | int]:
        """The teeth op's fill: one segment/code for both rows, or ``{"upper": ..., "lower": ...}`` (either
        key may be left out; that row keeps the default). Why per row: the cavity behind the upper teeth
        sits in the upper lip's shadow, the one behind the lower teeth shows the tongue."""
        if not isinstance(raw, Mapping):
            return self.target_ref(raw, path)
        if not raw:
            raise self.fail(path, "empty; give upper and/or lower (a segment name or a code each)")
        out: dict[str, str | int] = {}
        for key, value in raw.items():
            if key not in ("upper", "lower"):
                raise self.fail(f"{path}.{key}", "unknown row (expected upper, lower)")
            out[key] = self.target_ref(value, f"{path}.{key}")
        return out

    def polygon(self, raw: Any, path: str) -> list[tuple[float, float]]:
        if not isinstance(raw, list) or len(raw) < 3:
            raise self.fail(path, "expected a list of at least 3 [x, y] points")
        pts = []
        for i, p in enumerate(raw):
            if not (isinstance(p, list) and len(p) == 2 and all(_is_number(v) for v in p)):
                raise self.fail(f"{path}[{i}]", f"expected [x, y] numbers, got {_show(p)}")
            pts.append((float(p[0]), float(p[1])))
        return pts

    def choice(self, raw: Any, path: str, choices: tuple[str, ...]) -> str:
        if raw not in choices:
            raise self.fail(path, f"expected one of {', '.join(choices)}, got {_show(raw)}")
        return str(raw)

    def edit(self, raw: Any, i: int) -> Edit:
        path = f"edits[{i}]"
        if not isinstance(raw, Mapping):
            raise self.fail(path, "expected an object with op and keys")
        op = raw.get("op")
        if not isinstance(op, str) or op not in OPS:
            raise self.fail(f"{path}.op", f"unknown op {_show(op)} (known: {', '.join(OPS)})")
        spec = OPS[op].spec
        allowed = set(_COMMON) | set(spec.required) | set(spec.optional)
        if spec.target != "none":
            allowed |= {"segment", "code"}
        if spec.target == "to":
            allowed.add("to")
        for key in raw:
            if key not in allowed:
                raise self.fail(f"{path}.{key}", f"unknown field for op {op!r} (allowed: {', '.join(sorted(allowed))})")
        for key in spec.required:
            if key not in raw:
                raise self.fail(path, f"op {op!r} needs field {key!r}")
        params: dict[str, Any] = {}
        for key, default in spec.optional.items():
            params[key] = raw.get(key, default)
        if "eye" in params:
            params["eye"] = self.choice(params["eye"], f"{path}.eye", SIDES)
        if "side" in params:
            params["side"] = self.choice(params["side"], f"{path}.side", SIDES)
        if "which" in params:
            params["which"] = self.choice(params["which"], f"{path}.which", ("upper", "lower", "both"))
        if params.get("fill") is not None:
            params["fill"] = self.fill(params["fill"], f"{path}.fill")
        if "space" in params:
            params["space"] = self.choice(params["space"], f"{path}.space", ("crop", "plate"))
        for flag in ("pull", "borrow"):
            if flag in params and not isinstance(params[flag], bool):
                raise self.fail(f"{path}.{flag}", f"expected true or false, got {_show(params[flag])}")
        if op == "brows":
            params["mode"] = self.choice(raw["mode"], f"{path}.mode", ("raise", "remove"))
        if "polygon" in spec.required:
            params["polygon"] = self.polygon(raw["polygon"], f"{path}.polygon")
        if spec.target != "none":
            has_seg, has_code = "segment" in raw, "code" in raw
            if has_seg == has_code:
                raise self.fail(path, f"op {op!r} needs exactly one of segment or code")
            if has_seg:
                params["segment"] = self.segment(raw["segment"], f"{path}.segment")
            else:
                params["code"] = self.code(raw["code"], f"{path}.code")
        if spec.target == "to":
            if "to" not in raw:
                raise self.fail(path, f"op {op!r} needs field 'to' (a segment name or a code)")
            params["to"] = self.target_ref(raw["to"], f"{path}.to")
        interp = self.choice(raw.get("interp", "linear"), f"{path}.interp", INTERPOLATIONS)
        if "comment" in raw and not isinstance(raw["comment"], str):
            raise self.fail(f"{path}.comment", "expected text")
        keys = self.keys(spec, raw, path)
        if op == "brows" and params["mode"] == "remove":
            for j, (_, v) in enumerate(keys):
                if not 0.0 <= float(v) <= 1.0:  # type: ignore[arg-type]
                    raise self.fail(f"{path}.keys[{j}][1]", f"remove amount {v:g} out of range 0..1")
        return Edit(op=op, params=params, keys=keys, interp=interp, index=i)


def validate_program(obj: Any, where: str = "program", prior: Prior | None = None) -> EditProgram:
    """Validate a parsed program. Segment names must be standard names or, given a prior, its segments."""
    names = set(STANDARD_SEGMENTS) | (set(prior.segments) if prior is not None else set())
    check = _Checker(where, names, prior)
    if not isinstance(obj, Mapping):
        raise InputError(f"{where}: top level must be an object with version and edits")
    for key in obj:
        if key not in ("version", "edits", "comment"):
            raise check.fail(key, "unknown field (expected version, edits)")
    if obj.get("version") != PROGRAM_VERSION:
        raise check.fail("version", f"expected {PROGRAM_VERSION}, got {_show(obj.get('version'))}")
    edits = obj.get("edits")
    if not isinstance(edits, list):
        raise check.fail("edits", "expected a list of operations")
    return EditProgram(edits=tuple(check.edit(e, i) for i, e in enumerate(edits)), source=where)


def parse_program(obj_or_path: Any, prior: Prior | None = None) -> EditProgram:
    """Parse an edit program from a dict, a JSON string or a path to a .json file."""
    if isinstance(obj_or_path, EditProgram):
        return obj_or_path
    if isinstance(obj_or_path, Path) or (isinstance(obj_or_path, str) and not obj_or_path.lstrip().startswith("{")):
        path = Path(obj_or_path)
        if not path.is_file():
            raise InputError(f"{path}: edit program not found")
        text, where = path.read_text(), str(path)
    elif isinstance(obj_or_path, str):
        text, where = obj_or_path, "program"
    else:
        return validate_program(obj_or_path, "program", prior)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    return validate_program(obj, where, prior)


def _check_labels(labels: np.ndarray, prior: Prior) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"label map must be uint8 (L, L), got {labels.dtype} {labels.shape}")
    if labels.size and int(labels.max()) >= prior.num_codes:
        raise InputError(f"prior: num_codes is {prior.num_codes} but the label map uses code {int(labels.max())} "
                         "(prior made for another Stage I model?)")
    return labels


def _run_edit(edit: Edit, value: Value, labels: np.ndarray, prior: Prior, context: FrameContext | None,
              where: str) -> OpResult:
    """One edit at ``value`` on checked ``labels``: the op's :class:`OpResult` (``run`` where it has one)."""
    op = OPS[edit.op]
    ctx = context or FrameContext()
    try:
        if op.run is not None:
            return op.run(labels, value, edit.params, prior, ctx)
        return OpResult(op.fn(labels, value, edit.params, prior, ctx))
    except InputError as exc:
        raise InputError(f"{where}: edits[{edit.index}] ({edit.op}): {exc}") from None


def apply_edit(edit: Edit, value: Value, labels: np.ndarray, prior: Prior, context: FrameContext | None = None,
               where: str = "program") -> tuple[np.ndarray, np.ndarray]:
    """Apply one edit at ``value``; returns (edited labels, changed mask == (before != after))."""
    labels = _check_labels(labels, prior)
    out = _run_edit(edit, value, labels, prior, context, where).labels
    return out, out != labels


def apply_program(program: EditProgram, labels: np.ndarray, frame: float, prior: Prior,
                  context: FrameContext | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Apply every edit of ``program`` at ``frame`` in order; returns (edited labels, changed mask)."""
    out, changed, _ = apply_program_rules(program, labels, frame, prior, context)
    return out, changed


def opening_kept(rule: PlateRemnants, others: Sequence[np.ndarray]) -> np.ndarray | None:
    """``rule.opening``, or None where any of ``others`` (label pixels other edits changed) comes within
    :data:`~vq_models.edits.spec.OPENING_CLEARANCE` of its region: the opening is the frame's tracked contour, and a mouth another
    edit opened, closed or painted no longer has that edge."""
    changed = [c for c in others if np.any(c)]
    if rule.opening is None or not changed:
        return rule.opening
    return None if np.any(rule.near & np.any(changed, axis=0)) else rule.opening


def apply_program_rules(program: EditProgram, labels: np.ndarray, frame: float, prior: Prior,
                        context: FrameContext | None = None) -> tuple[np.ndarray, np.ndarray, list[EditRule]]:
    """:func:`apply_program`, also returning what the render must know of each edit: its
    :class:`DonorRule` (where it changed labels, which frames must not lend plate detail there) and its
    :class:`DetailMove` (a part moved within the frame), for the ops that declare them. A move keeps the
    pixels where the part landed that no later edit changed again (an iris a later ``eye_open`` covered is lid,
    not iris), also those that show the same code as before (the part of a moved iris that lands on itself
    still shows the iris moved, its catchlight included). The ops' :class:`EdgeShift` fields come summed as one,
    kept where no later edit changed the labels, and so are the :class:`FilledRegion` of the ops that fill and
    the :class:`PlateRemnants` of those that remove parts finer than a label pixel."""
    original = _check_labels(labels, prior)
    ctx = context or FrameContext()
    out = original
    rules: list[EditRule] = []
    moved: list[tuple[DetailMove, np.ndarray]] = []  # each move with the labels right after its edit
    edges: list[tuple[np.ndarray, np.ndarray]] = []  # each edge field with the labels right after its edit
    filled: list[tuple[np.ndarray, np.ndarray]] = []  # each fill with the labels right after its edit
    remnants: list[tuple[PlateRemnants, np.ndarray, int]] = []  # each op's rule, the labels right after it, its index
    changes: list[np.ndarray] = []  # what each edit changed
    for edit, value in program.values_at(frame):
        result = _run_edit(edit, value, out, prior, ctx, program.source)
        changed = result.labels != out
        changes.append(changed)
        out = result.labels
        op = OPS[edit.op]
        if (op.donor_exclude is not None or op.donor_ghosts) and changed.any():
            exclude = op.donor_exclude(value, edit.params, ctx) if op.donor_exclude is not None else frozenset()
            if exclude or op.donor_ghosts:
                rules.append(DonorRule(changed, frozenset(exclude), ghosts=op.donor_ghosts))
        if op.fills and changed.any():
            filled.append((changed, out))
        if op.remnants is not None and (rule := op.remnants(value, edit.params, ctx)) is not None:
            remnants.append((rule, out, len(changes) - 1))
        moved += [(m, out) for m in result.moves]  # also where no label changed: a move under half a label pixel
        if result.edges is not None:  # likewise: an edge moved under half a row
            edges.append((result.edges, out))
    for move, after in moved:
        landed = move.landed & (out == after)
        if landed.any():
            rules.append(replace(move, landed=landed))
    for region, after in filled:  # what a later edit drew over is that edit's, not a fill
        if (kept := region & (out == after)).any():
            rules.append(FilledRegion(kept))
    for rule, after, index in remnants:  # likewise: a mouth a later edit closed shows no remnants
        if (kept := rule.within & (out == after)).any():
            others = [c for i, c in enumerate(changes) if i != index]
            rules.append(replace(rule, within=kept, opening=opening_kept(rule, others)))
    field = sum((np.where(out == after, rows, 0.0) for rows, after in edges), np.zeros(out.shape, np.float32))
    if np.any(field):
        rules.append(EdgeShift(field.astype(np.float32)))
    return out.copy(), out != original, rules
