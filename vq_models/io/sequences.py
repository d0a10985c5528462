"""Frame sequences: file-name patterns and frame ranges as compositors write them.

Patterns: ``plate.%04d.exr`` (printf), ``plate.####.exr`` (Nuke: one ``#`` per digit) and
``plate.@@@@.exr`` (one ``@`` per digit); all are normalised to printf form. Ranges: ``1001-1100``,
``1001-1100x2`` (every 2nd frame), ``1001,1005,1010-1012``, a single ``1001``; negative frames work.

A sequence with holes is an error unless asked for (``allow_gaps``): a render that silently skips
frames is worse than one that stops and says which frames are missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vq_models.errors import InputError

_PRINTF = re.compile(r"%(0?)(\d*)d")
_HASHES = re.compile(r"#+|@+")
_RANGE_ITEM = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*(?:[xX:]\s*(\d+)\s*)?)?$")


def normalize_pattern(pattern: str) -> str:
    """Turn ``####``/``@@@@``/``%d`` patterns into printf form with the padding they imply.

    Raises :class:`InputError` when the pattern has no frame-number token or more than one.
    """
    text = str(pattern)
    tokens = len(_PRINTF.findall(text)) + len(_HASHES.findall(text))
    if tokens == 0:
        raise InputError(f"{pattern}: no frame number in the pattern (use %04d, #### or @@@@)")
    if tokens > 1:
        raise InputError(f"{pattern}: more than one frame number token in the pattern")
    text = _HASHES.sub(lambda m: f"%0{len(m.group(0))}d" if len(m.group(0)) > 1 else "%d", text)
    return _PRINTF.sub(lambda m: f"%0{m.group(2)}d" if m.group(2) and m.group(2) != "1" else "%d", text)


def has_frame_token(text: str) -> bool:
    """Whether ``text`` contains a frame-number token (and so names a sequence, not a single file)."""
    return bool(_PRINTF.search(str(text)) or _HASHES.search(str(text)))


def _padding(pattern: str) -> int:
    m = _PRINTF.search(pattern)
    return int(m.group(2)) if m and m.group(2) else 0


def parse_frame_range(text: str | int) -> list[int]:
    """Parse ``1001-1100``, ``1001-1100x2``, ``1001,1005,1010-1012`` or ``1001`` into sorted frames."""
    if isinstance(text, int):
        return [text]
    raw = str(text).strip()
    if not raw:
        raise InputError("frame range '': empty (expected e.g. 1001-1100, 1001-1100x2 or 1001,1005)")
    frames: set[int] = set()
    for part in raw.split(","):
        m = _RANGE_ITEM.match(part)
        if not m:
            raise InputError(f"frame range {raw!r}: cannot parse {part.strip()!r} "
                             "(expected e.g. 1001-1100, 1001-1100x2 or 1001,1005)")
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) is not None else start
        step = int(m.group(3)) if m.group(3) is not None else 1
        if end < start:
            raise InputError(f"frame range {raw!r}: {part.strip()!r} ends before it starts")
        if step < 1:
            raise InputError(f"frame range {raw!r}: step in {part.strip()!r} must be at least 1")
        frames.update(range(start, end + 1, step))
    return sorted(frames)


def format_frame_list(frames: Iterable[int], limit: int = 12) -> str:
    """Compact text for a set of frames: ``1004, 1010-1012``; long lists end with ``... (N more)``."""
    nums = sorted(set(int(f) for f in frames))
    runs: list[str] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        runs.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    if len(runs) > limit:
        return ", ".join(runs[:limit]) + f", ... ({len(runs) - limit} more)"
    return ", ".join(runs)


class FrameRange:
    """First, last and count of anything holding a sorted ``frames`` list (sequences and frame sources)."""

    frames: list[int]

    @property
    def first(self) -> int:
        return self.frames[0]

    @property
    def last(self) -> int:
        return self.frames[-1]

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class FrameSequence(FrameRange):
    """A numbered image sequence: a printf pattern and the frames that exist on disk."""

    pattern: str
    frames: list[int]

    def __post_init__(self) -> None:
        self.pattern = normalize_pattern(self.pattern)
        self.frames = sorted(int(f) for f in self.frames)

    def path(self, frame: int) -> Path:
        """The file of one frame."""
        return Path(self.pattern % int(frame))

    def paths(self) -> list[Path]:
        return [self.path(f) for f in self.frames]

    def __str__(self) -> str:
        return f"{self.pattern} [{format_frame_list(self.frames)}]"


def _scan(pattern: str) -> list[int]:
    """Frames of ``pattern`` that exist in its directory (names must match the padding exactly)."""
    path = Path(pattern)
    folder = path.parent
    name = path.name
    m = _PRINTF.search(name)
    if m is None:  # the token is in a directory name: no scan, there is nothing sane to list
        raise InputError(f"{pattern}: the frame number must be in the file name, not a directory")
    prefix, suffix = name[: m.start()], name[m.end() :]
    rx = re.compile(re.escape(prefix) + r"(-?\d+)" + re.escape(suffix) + r"$")
    if not folder.is_dir():
        raise InputError(f"{pattern}: directory {folder} not found")
    frames = []
    for entry in folder.iterdir():
        hit = rx.match(entry.name)
        if hit and (name % int(hit.group(1))) == entry.name:
            frames.append(int(hit.group(1)))
    return sorted(frames)


def find_sequence(
    pattern: str,
    frames: str | Sequence[int] | None = None,
    *,
    allow_gaps: bool = False,
) -> FrameSequence:
    """Find the frames of a sequence on disk.

    With ``frames`` (a range string or a list) every listed frame must exist; with ``frames=None`` the
    directory is scanned and the run from the first to the last frame found must be complete. Missing
    frames raise :class:`InputError` naming the pattern and the missing numbers; ``allow_gaps=True``
    instead drops them (it is still an error when nothing exists).
    """
    norm = normalize_pattern(pattern)
    if frames is None:
        found = _scan(norm)
        if not found:
            raise InputError(f"{pattern}: no files match this pattern")
        wanted = list(range(found[0], found[-1] + 1))
        present = set(found)
    else:
        wanted = parse_frame_range(frames) if isinstance(frames, str) else sorted(set(int(f) for f in frames))
        if not wanted:
            raise InputError(f"{pattern}: no frames requested")
        present = {f for f in wanted if Path(norm % f).is_file()}
    missing = [f for f in wanted if f not in present]
    if missing and (not allow_gaps or not present):
        what = "frame" if len(missing) == 1 else "frames"
        span = f"{wanted[0]}-{wanted[-1]}" if len(wanted) > 1 else str(wanted[0])
        raise InputError(f"{pattern}: missing {what} {format_frame_list(missing)} (range {span})")
    return FrameSequence(norm, [f for f in wanted if f in present])
