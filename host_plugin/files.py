"""Files a host writes: whole or not at all.

Nuke may read a frame while the node writes it, and a failed request must not leave half an EXR that
reads as a valid, wrong frame; so every file is written to a temporary name in the same folder and
renamed into place. (The models' own writer is :mod:`vq_models.io.atomic`; this one has no dependency,
so it runs in Nuke's Python.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def remove_quietly(path: str | Path) -> None:
    """Delete ``path`` if it exists (a stale frame must not survive a failed re-render)."""
    try:
        os.unlink(str(path))
    except FileNotFoundError:
        pass
