"""Reading JSON files users hand us (shot.json, tracking, priors, model metadata) with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vq_models.errors import InputError


def read_json(path: str | Path, missing: str | None = None) -> Any:
    """Parse ``path`` as JSON. A missing file, a non-text file or invalid JSON raises :class:`InputError`
    naming the file (and the line of the syntax error); ``missing`` replaces the default "not found" text."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {missing or 'file not found'}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file") from None
