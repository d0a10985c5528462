"""Sequence patterns, frame ranges and gap reporting, on real files in a temp folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from vq_models.errors import InputError
from vq_models.io.sequences import (
    FrameSequence,
    find_sequence,
    format_frame_list,
    has_frame_token,
    normalize_pattern,
    parse_frame_range,
)


@pytest.mark.parametrize("pattern, expected", [
    ("plate.%04d.exr", "plate.%04d.exr"),
    ("plate.####.exr", "plate.%04d.exr"),
    ("plate.@@@@.exr", "plate.%04d.exr"),
    ("plate.#.exr", "plate.%d.exr"),
    ("plate.%d.exr", "plate.%d.exr"),
    ("plate.%4d.exr", "plate.%04d.exr"),
    ("shot_v2/plate_######.dpx", "shot_v2/plate_%06d.dpx"),
])
def test_normalize_pattern(pattern: str, expected: str) -> None:
    assert normalize_pattern(pattern) == expected
    assert has_frame_token(pattern)


def test_pattern_errors() -> None:
    assert not has_frame_token("plate.exr")
    with pytest.raises(InputError, match=r"plate\.exr: no frame number"):
        normalize_pattern("plate.exr")
    with pytest.raises(InputError, match="more than one frame number"):
        normalize_pattern("plate.####.%04d.exr")


@pytest.mark.parametrize("text, expected", [
    ("1001", [1001]),
    ("1001-1005", [1001, 1002, 1003, 1004, 1005]),
    ("1001-1009x2", [1001, 1003, 1005, 1007, 1009]),
    ("1001-1010x3", [1001, 1004, 1007, 1010]),
    ("1001,1005,1010-1012", [1001, 1005, 1010, 1011, 1012]),
    (" 1010-1012 , 1001 ", [1001, 1010, 1011, 1012]),
    ("1001,1001-1002", [1001, 1002]),
    ("-2-1", [-2, -1, 0, 1]),
])
def test_parse_frame_range(text: str, expected: list[int]) -> None:
    assert parse_frame_range(text) == expected


@pytest.mark.parametrize("text, problem", [
    ("", "empty"),
    ("1001-", "cannot parse '1001-'"),
    ("abc", "cannot parse 'abc'"),
    ("1001-1100x0", "step"),
    ("1100-1001", "ends before it starts"),
    ("1001,,1002", "cannot parse ''"),
])
def test_parse_frame_range_errors_quote_the_text(text: str, problem: str) -> None:
    with pytest.raises(InputError) as err:
        parse_frame_range(text)
    assert problem in str(err.value)
    assert repr(text.strip()) in str(err.value) or text == ""


def test_format_frame_list() -> None:
    assert format_frame_list([1010, 1004, 1011, 1012]) == "1004, 1010-1012"
    assert format_frame_list([5]) == "5"
    assert format_frame_list(range(0, 40, 2), limit=3) == "0, 2, 4, ... (17 more)"


def _touch(folder: Path, name: str, frames: list[int]) -> None:
    for f in frames:
        (folder / (name % f)).write_bytes(b"x")


def test_find_sequence_scans_and_reports_gaps(tmp_path: Path) -> None:
    have = [f for f in range(1001, 1016) if f not in (1004, 1010, 1011, 1012)]
    _touch(tmp_path, "plate.%04d.exr", have)
    (tmp_path / "plate.01001.exr").write_bytes(b"x")  # other padding: not part of this sequence
    (tmp_path / "plate.1005.exr.tmp").write_bytes(b"x")
    with pytest.raises(InputError) as err:
        find_sequence(str(tmp_path / "plate.####.exr"))
    msg = str(err.value)
    assert msg.startswith(str(tmp_path / "plate.####.exr"))
    assert "missing frames 1004, 1010-1012 (range 1001-1015)" in msg
    seq = find_sequence(str(tmp_path / "plate.@@@@.exr"), allow_gaps=True)
    assert seq.frames == have
    assert seq.pattern == str(tmp_path / "plate.%04d.exr")
    assert seq.path(1001) == tmp_path / "plate.1001.exr"
    assert (seq.first, seq.last, len(seq)) == (1001, 1015, len(have))


def test_find_sequence_with_requested_frames(tmp_path: Path) -> None:
    _touch(tmp_path, "p.%04d.png", list(range(1, 11)))
    pattern = str(tmp_path / "p.%04d.png")
    assert find_sequence(pattern, "2-8x3").frames == [2, 5, 8]
    assert find_sequence(pattern, [3, 1]).frames == [1, 3]
    with pytest.raises(InputError, match=r"p\.%04d\.png: missing frames 11-12 \(range 9-12\)"):
        find_sequence(pattern, "9-12")
    with pytest.raises(InputError, match=r"missing frame 20 \(range 20\)"):
        find_sequence(pattern, "20")
    assert find_sequence(pattern, "9-12", allow_gaps=True).frames == [9, 10]
    with pytest.raises(InputError, match="missing frames 20-21"):
        find_sequence(pattern, "20-21", allow_gaps=True)  # nothing at all exists: still an error


def test_find_sequence_unpadded_and_empty(tmp_path: Path) -> None:
    _touch(tmp_path, "f_%d.tif", [8, 9, 10, 11])
    (tmp_path / "f_09.tif").write_bytes(b"x")  # zero-padded: not the same file name as frame 9
    assert find_sequence(str(tmp_path / "f_#.tif")).frames == [8, 9, 10, 11]
    with pytest.raises(InputError, match="no files match"):
        find_sequence(str(tmp_path / "none.####.exr"))
    with pytest.raises(InputError, match="not found"):
        find_sequence(str(tmp_path / "nodir" / "a.####.exr"))


def test_frame_sequence_normalises() -> None:
    seq = FrameSequence("a/b.####.exr", [3, 1, 2])
    assert seq.pattern == "a/b.%04d.exr" and seq.frames == [1, 2, 3]
    assert str(seq.path(12)) == "a/b.0012.exr"
    assert str(seq) == "a/b.%04d.exr [1-3]"
