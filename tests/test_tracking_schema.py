"""Tracking file schema: round trip, and bad files rejected with the JSON path of the first problem."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from vq_models.errors import InputError
from vq_models.tracking import FrameTrack, Tracking, load_tracking, save_tracking, tracking_to_json
from vq_models.tracking.schema import validate_tracking


def _good() -> dict:
    lm = [[40.5, 50.0], [80.25, 50.0], [60.0, 70.0], [45.0, 90.0], [75.0, 90.0]]
    return {
        "version": 1,
        "image_size": [128, 96],
        "frames": {
            "1001": {
                "landmarks5": lm,
                "contours": {"lips_outer": [[45.0, 90.0], [60.0, 85.0], [75.0, 90.0], [60.0, 95.0]]},
                "mesh": [[1.0, 2.0, 3.0], [4.0, 5.0, -6.0]],
            },
            "1002": {"landmarks5": [[x + 1.0, y] for x, y in lm]},
        },
    }


def test_round_trip_keeps_values(tmp_path: Path) -> None:
    tr = validate_tracking(_good(), "t.json")
    assert tr.image_size == (128, 96)
    assert tr.frame_numbers == [1001, 1002]
    assert tr.frames[1002].mesh is None and tr.frames[1002].contours == {}
    path = tmp_path / "tracking.json"
    save_tracking(tr, path)
    back = load_tracking(path)
    assert back.frame_numbers == [1001, 1002]
    np.testing.assert_allclose(back.frames[1001].landmarks5, tr.frames[1001].landmarks5)
    np.testing.assert_allclose(back.frames[1001].mesh, [[1, 2, 3], [4, 5, -6]])
    np.testing.assert_allclose(back.frames[1001].contours["lips_outer"][1], [60.0, 85.0])
    assert tracking_to_json(back) == tracking_to_json(tr)


def test_writing_rejects_bad_in_memory_tracking(tmp_path: Path) -> None:
    ft = FrameTrack(np.zeros((5, 2)), {"mouth": np.zeros((4, 2))})
    with pytest.raises(InputError, match=r'frames\["7"\]\.contours\.mouth: unknown contour'):
        save_tracking(Tracking((10, 10), {7: ft}), tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def _broken(mutate) -> dict:
    obj = copy.deepcopy(_good())
    mutate(obj)
    return obj


BROKEN = [
    (lambda o: o.update(version=2), r"^t\.json: version: expected 1, got 2$"),
    (lambda o: o.pop("image_size"), r"^t\.json: missing key 'image_size'$"),
    (lambda o: o.update(image_size=[128]), r"^t\.json: image_size: expected \[width, height\]"),
    (
        lambda o: o["frames"]["1001"]["landmarks5"].__setitem__(2, ["a", 3]),
        r'^t\.json: frames\["1001"\]\.landmarks5\[2\]: expected \[x, y\] numbers$',
    ),
    (
        lambda o: o["frames"]["1002"]["landmarks5"].__setitem__(4, [1.0, float("nan")]),
        r'^t\.json: frames\["1002"\]\.landmarks5\[4\]: expected \[x, y\] numbers$',
    ),
    (
        lambda o: o["frames"]["1001"]["landmarks5"].pop(),
        r'^t\.json: frames\["1001"\]\.landmarks5: expected 5 \[x, y\] points, got 4$',
    ),
    (lambda o: o["frames"]["1001"].pop("landmarks5"), r'frames\["1001"\]: missing key \'landmarks5\'$'),
    (
        lambda o: o["frames"]["1001"]["contours"].update(chin=[[0, 0], [1, 1], [2, 0]]),
        r'frames\["1001"\]\.contours\.chin: unknown contour',
    ),
    (
        lambda o: o["frames"]["1001"]["contours"].update(nose=[[0, 0], [1, 1]]),
        r'frames\["1001"\]\.contours\.nose: expected at least 3',
    ),
    (
        lambda o: o["frames"]["1001"]["mesh"].__setitem__(1, [1.0, 2.0]),
        r'frames\["1001"\]\.mesh\[1\]: expected \[x, y, z\] numbers$',
    ),
    (
        lambda o: o["frames"].update({"10a": o["frames"]["1001"]}),
        r'frames\["10a"\]: frame key is not an integer',
    ),
    (lambda o: o["frames"]["1001"].update(score=1), r'frames\["1001"\]\.score: unknown key'),
    (lambda o: o.update(frames=[]), r"^t\.json: frames: expected an object"),
]


@pytest.mark.parametrize("mutate, message", BROKEN)
def test_broken_files_name_the_json_path(mutate, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        validate_tracking(_broken(mutate), "t.json")
    assert "\n" not in str(info.value)


def test_load_reports_file_problems(tmp_path: Path) -> None:
    bad = tmp_path / "tracking.json"
    bad.write_text('{"version": 1, "image_size": [4, 4], ')
    with pytest.raises(InputError, match=r"tracking\.json: invalid JSON"):
        load_tracking(bad)
    with pytest.raises(InputError, match="tracking file not found"):
        load_tracking(tmp_path / "nope.json")
    obj = _good()
    obj["frames"]["1001"]["landmarks5"][0] = [1, True]
    bad.write_text(json.dumps(obj))
    with pytest.raises(InputError, match=rf'^{tmp_path}/tracking\.json: frames\["1001"\]\.landmarks5\[0\]'):
        load_tracking(bad)
