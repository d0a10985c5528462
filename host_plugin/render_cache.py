"""Request-hash cache: render again only the frames whose request changed.

An artist tweaks one knob keyed over ten frames of a hundred-frame range and presses Render again; the
other ninety frames would come back identical. Each frame's pass is written together with the hash of the
exact request that made it (model, frame, program at that frame, feather, mode, paint matte bytes ...),
kept in a small JSON file beside the passes. A frame is fresh when its file exists and its stored hash is
the hash of the request the knobs make now; only stale frames are sent. Pure Python (hashlib, json).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from host_plugin.files import atomic_write_bytes, remove_quietly

CACHE_VERSION = 1


def _canonical(value: Any) -> Any:
    """JSON-able form of request fields: bytes become their SHA-256 (a 2 MiB matte hashes to 64 chars)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"sha256": hashlib.sha256(bytes(value)).hexdigest(), "n": len(value)}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 1.0 and 1 make the same request
    return value


def request_digest(fields: dict[str, Any]) -> str:
    """A stable hash of a request's fields (key order and bytes' identity do not matter)."""
    text = json.dumps(_canonical(fields), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RequestCache:
    """``{pass: {frame: digest}}`` in ``path``; saved atomically after every change."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._data: dict[str, dict[str, str]] = {}
        try:
            obj = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(obj, dict) and obj.get("version") == CACHE_VERSION and isinstance(obj.get("passes"), dict):
                self._data = {str(p): {str(f): str(d) for f, d in v.items()} for p, v in obj["passes"].items()
                              if isinstance(v, dict)}
        except (OSError, ValueError):
            self._data = {}  # no cache, or an unreadable one: every frame renders

    def fresh(self, pass_name: str, frame: int, digest: str, file: str | Path) -> bool:
        """True when ``file`` exists and was made by a request with this ``digest``."""
        return self._data.get(pass_name, {}).get(str(int(frame))) == digest and Path(file).is_file()

    def store(self, pass_name: str, frame: int, digest: str) -> None:
        self._data.setdefault(pass_name, {})[str(int(frame))] = digest
        self._save()

    def forget(self, pass_name: str, frame: int, file: str | Path | None = None) -> None:
        """Drop a frame (and its file): a failed render must show as an error, never as the old frame."""
        self._data.get(pass_name, {}).pop(str(int(frame)), None)
        if file is not None:
            remove_quietly(file)
        self._save()

    def clear(self) -> None:
        self._data = {}
        self._save()

    def _save(self) -> None:
        text = json.dumps({"version": CACHE_VERSION, "passes": self._data}, sort_keys=True)
        atomic_write_bytes(self.path, text.encode("utf-8"))
