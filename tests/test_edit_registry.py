"""The edit-op registry: every op is defined once (spec beside function); the host's knobs and the segment-edit
table name only registered ops, with fields their specs accept; docs/edits.md lists every op."""

from __future__ import annotations

from pathlib import Path

import pytest

from host_plugin.knobs import FACE_KNOBS, SEGMENT_EDIT_FIELDS
from vq_models.edits.ops import FACE_OPERATIONS
from vq_models.edits.program import OPS, validate_program
from vq_models.edits.segment_ops import SEGMENT_OPERATIONS
from vq_models.edits.spec import Operation


def test_every_op_is_registered_once_with_a_function():
    assert not set(FACE_OPERATIONS) & set(SEGMENT_OPERATIONS)
    assert set(OPS) == set(FACE_OPERATIONS) | set(SEGMENT_OPERATIONS)
    for name, op in OPS.items():
        assert isinstance(op, Operation) and callable(op.fn) and op.fn.__name__ == name
        assert op.spec.low <= op.spec.high


@pytest.mark.parametrize("knob", sorted(FACE_KNOBS))
def test_face_knobs_send_programs_the_registry_accepts(knob):
    template, neutral = FACE_KNOBS[knob]
    assert template["op"] in FACE_OPERATIONS
    spec = OPS[template["op"]].spec
    value = [neutral, neutral] if spec.value == "vec2" else neutral
    assert spec.low <= neutral <= spec.high
    validate_program({"version": 1, "edits": [{**template, "value": value}]}, "knob")


def test_segment_edit_fields_map_onto_segment_ops():
    ops = {"translate_x": "translate", "translate_y": "translate", "scale": "scale", "dilate": "dilate",
           "replace_with": "replace"}
    for field, op in ops.items():
        assert field in SEGMENT_EDIT_FIELDS and op in SEGMENT_OPERATIONS


def test_docs_list_every_op():
    text = (Path(__file__).resolve().parents[1] / "docs" / "edits.md").read_text()
    missing = [name for name in OPS if f"`{name}`" not in text]
    assert not missing, f"docs/edits.md does not describe {missing}"
