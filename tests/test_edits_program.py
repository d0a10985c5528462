"""Edit programs: keyframe interpolation and validation errors that name the JSON path."""

from __future__ import annotations

import json

import pytest

from vq_models.edits import Prior, parse_program
from vq_models.errors import InputError


def one(edit: dict, prior: Prior | None = None):
    return parse_program({"version": 1, "edits": [edit]}, prior).edits[0]


@pytest.mark.parametrize("interp", ["step", "linear", "smooth"])
def test_keys_hold_outside_and_hit_keys_exactly(interp):
    e = one({"op": "eye_open", "keys": [[1001, 1.0], [1011, 0.0], [1021, 0.5]], "interp": interp})
    assert e.value_at(990) == 1.0 and e.value_at(1001) == 1.0
    assert e.value_at(1011) == 0.0 and e.value_at(1021) == 0.5 and e.value_at(5000) == 0.5


def test_interpolation_modes_between_keys():
    keys = [[1001, 1.0], [1011, 0.0]]
    step = one({"op": "eye_open", "keys": keys, "interp": "step"})
    lin = one({"op": "eye_open", "keys": keys, "interp": "linear"})
    smooth = one({"op": "eye_open", "keys": keys, "interp": "smooth"})
    assert step.value_at(1010.9) == 1.0
    assert lin.value_at(1003.5) == pytest.approx(0.75)
    assert smooth.value_at(1006) == pytest.approx(0.5)
    assert smooth.value_at(1002) == pytest.approx(1 - (0.01 * 3 - 0.002))  # smoothstep(0.1) = 0.028
    vals = [smooth.value_at(f) for f in range(1001, 1012)]
    assert all(a >= b for a, b in zip(vals, vals[1:], strict=False)), "monotone between monotone keys"
    assert abs(vals[1] - vals[0]) < abs(lin.value_at(1002) - lin.value_at(1001)), "eases in"


def test_vector_values_and_constant_value_shorthand():
    g = one({"op": "gaze", "keys": [[0, [0.0, 0.0]], [10, [0.4, -0.2]]]})
    assert g.value_at(5) == pytest.approx((0.2, -0.1))
    s = one({"op": "scale", "segment": "nose", "value": 1.5})
    assert s.value_at(123) == (1.5, 1.5)
    program = parse_program({"version": 1, "edits": [
        {"op": "teeth", "value": 0.0}, {"op": "mouth_open", "keys": [[1, 1.0], [3, 2.0]]}]})
    assert [(e.op, v) for e, v in program.values_at(2)] == [("teeth", 0.0), ("mouth_open", 1.5)]


@pytest.mark.parametrize(("edit", "path"), [
    ({"op": "eye_close", "value": 0}, r"edits\[0\]\.op: unknown op"),
    ({"op": "eye_open", "value": 0, "eyes": "left"}, r"edits\[0\]\.eyes: unknown field"),
    ({"op": "eye_open", "value": 0, "eye": "middle"}, r"edits\[0\]\.eye: expected one of"),
    ({"op": "eye_open", "keys": [[1, 1.0], [2]]}, r"edits\[0\]\.keys\[1\]: expected \[frame, value\]"),
    ({"op": "eye_open", "keys": [[1, 1.0], [1, 0.0]]}, r"edits\[0\]\.keys\[1\]\[0\]: frame 1 must be after"),
    ({"op": "eye_open", "keys": [[1, 1.0], [2, 1.5]]}, r"edits\[0\]\.keys\[1\]\[1\]: value 1.5 out of range"),
    ({"op": "eye_open", "keys": [["a", 1.0]]}, r"edits\[0\]\.keys\[0\]\[0\]: expected a frame number"),
    ({"op": "gaze", "keys": [[1, 0.3]]}, r"edits\[0\]\.keys\[0\]\[1\]: expected \[dx, dy\]"),
    ({"op": "eye_open", "keys": [[1, 1.0]], "interp": "cubic"}, r"edits\[0\]\.interp: expected one of"),
    ({"op": "eye_open"}, r"edits\[0\]: missing keys"),
    ({"op": "eye_open", "value": 1, "keys": [[1, 1]]}, r"edits\[0\]: give either keys or value"),
    ({"op": "replace", "segment": "pupil", "to": "irises", "value": 1}, r"edits\[0\]\.segment: unknown segment 'pupil'"),
    ({"op": "replace", "segment": "pupils", "value": 1}, r"edits\[0\]: op 'replace' needs field 'to'"),
    ({"op": "replace", "segment": "pupils", "code": 3, "to": 1, "value": 1}, r"edits\[0\]: op .replace. needs exactly one of segment or code"),
    ({"op": "replace", "code": 300, "to": 1, "value": 1}, r"edits\[0\]\.code: code 300 out of range"),
    ({"op": "brows", "value": 0.2}, r"edits\[0\]: op 'brows' needs field 'mode'"),
    ({"op": "brows", "mode": "remove", "value": 2.0}, r"edits\[0\]\.keys\[0\]\[1\]: remove amount 2"),
    ({"op": "paint", "segment": "skin", "polygon": [[0, 0], [1, 1]], "value": 1}, r"edits\[0\]\.polygon: expected"),
    ({"op": "paint", "segment": "skin", "polygon": [[0, 0], [1, 1], [2]], "value": 1}, r"edits\[0\]\.polygon\[2\]"),
    ({"op": "scale", "segment": "nose", "value": [1.0, 0.0]}, r"edits\[0\]\.value: scale factors must be > 0"),
])
def test_validation_errors_name_the_json_path(edit, path):
    program = {"version": 1, "edits": [{"op": "teeth", "value": 1.0}, {"op": "teeth", "value": 1.0}, edit]}
    with pytest.raises(InputError, match=r"^program: " + path.replace(r"edits\[0\]", r"edits\[2\]")):
        parse_program(program)


def test_top_level_errors_and_custom_segments_from_prior():
    with pytest.raises(InputError, match=r"program: version: expected 1"):
        parse_program({"version": 2, "edits": []})
    with pytest.raises(InputError, match=r"program: edits: expected a list"):
        parse_program({"version": 1, "edits": {}})
    with pytest.raises(InputError, match=r"program: extra: unknown field"):
        parse_program({"version": 1, "edits": [], "extra": 1})
    custom = {"version": 1, "edits": [{"op": "dilate", "segment": "freckles", "value": 1}]}
    with pytest.raises(InputError, match="unknown segment 'freckles'"):
        parse_program(custom)
    prior = Prior(num_codes=8, segments={"freckles": [3]})
    assert parse_program(custom, prior).edits[0].params["segment"] == "freckles"
    with pytest.raises(InputError, match=r"edits\[0\]\.code: code 9 out of range 0\.\.7"):
        parse_program({"version": 1, "edits": [{"op": "dilate", "code": 9, "value": 1}]}, prior)


def test_parse_from_file_and_text(tmp_path):
    body = {"version": 1, "edits": [{"op": "gaze", "eye": "left", "keys": [[1001, [0.1, 0.0]]], "interp": "step"}]}
    path = tmp_path / "blink.json"
    path.write_text(json.dumps(body))
    from_file = parse_program(path)
    assert from_file.to_json() == parse_program(json.dumps(body)).to_json()
    assert parse_program(from_file.to_json()).edits[0].params == {"eye": "left", "borrow": False}
    path.write_text('{"version": 1, "edits": [}')
    with pytest.raises(InputError, match=r"blink\.json: invalid JSON"):
        parse_program(str(path))
    path.write_text(json.dumps({"version": 1, "edits": [{"op": "gaze", "value": [1, 2, 3]}]}))
    with pytest.raises(InputError, match=r"blink\.json: edits\[0\]\.value: expected \[dx, dy\]"):
        parse_program(path)
    with pytest.raises(InputError, match="edit program not found"):
        parse_program(tmp_path / "nope.json")
