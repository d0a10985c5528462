"""The server's model cache: shot models loaded once, kept in an LRU bounded by count and memory.

Loading a shot model costs seconds (weights to the GPU), rendering a frame costs milliseconds, so the
server keeps recently used models resident and evicts the least recently used one when a new load
would go past ``max_models`` or ``max_bytes``. Each model gets its own lock: a model's forward pass is
not assumed thread-safe, but requests for different models run at the same time.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host_plugin.protocol import NO_MODEL, ProtocolError
from vq_models.errors import VQEditError

log = logging.getLogger(__name__)

DEFAULT_BACKEND = "vq_models.runtime:ShotModel.load"
BACKEND_ENV = "VQEDIT_SERVER_BACKEND"

Loader = Callable[[str | Path, str], Any]
#: folder → what a user should know before rendering from it, or None (``ModelCache(inspect=...)``)
Inspector = Callable[[Path], str | None]


def backend_spec(spec: str | None = None) -> str:
    """The backend a server runs: ``spec``, else the env var, else the runtime's loader."""
    return spec or os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND


def default_inspector(spec: str | None = None) -> Inspector | None:
    """The default backend's folder check (:func:`vq_models.runtime.shot_folder_warning`); None for another
    backend, whose folders need not be shots."""
    if backend_spec(spec) != DEFAULT_BACKEND:
        return None
    from vq_models.runtime import shot_folder_warning

    return shot_folder_warning


def resolve_loader(spec: str | None = None) -> Loader:
    """``module:attr.attr`` → callable(shot_dir, device). Defaults to the env var, then the runtime."""
    spec = backend_spec(spec)
    if ":" not in spec:
        raise VQEditError(f"--backend {spec!r}: expected module:callable")
    module_name, attr = spec.split(":", 1)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise VQEditError(f"--backend {spec!r}: cannot import {module_name} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise VQEditError(f"--backend {spec!r}: {module_name} has no {attr}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise VQEditError(f"--backend {spec!r}: not callable")
    return obj


@dataclass
class Entry:
    """A resident model plus its lock and bookkeeping."""

    name: str
    model: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    memory: int = 0
    loaded_at: float = field(default_factory=time.time)
    uses: int = 0
    transfers: dict[Any, Any] = field(default_factory=dict)  # expression transfers onto this model, by driver


class ModelCache:
    """Thread-safe LRU of loaded models keyed by folder name under ``root``."""

    def __init__(self, root: str | Path, loader: Loader, device: str = "cpu", max_models: int = 4, max_bytes: int = 0,
                 inspect: Inspector | None = None):
        self.root = Path(root)
        self.loader = loader
        self.inspect = inspect
        self.device = device
        self.max_models = max(1, int(max_models))
        self.max_bytes = int(max_bytes)  # 0 = no memory bound
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self._drivers: OrderedDict[str, Any] = OrderedDict()

    # --- description ---------------------------------------------------------------------------
    def available(self) -> list[str]:
        """Model folders under root (any sub-directory not starting with a dot)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def warning(self, name: str) -> str | None:
        """What the backend's inspector says a user should know about the folder ``name`` before rendering from
        it (a shot to re-prep, an untrained stage), or None. Read afresh each time: a folder is retrained or
        re-prepped while the server runs, and the default inspector reads one small JSON file."""
        if self.inspect is None:
            return None
        try:
            return self.inspect(self.root / name)
        except Exception as exc:  # an odd folder must not fail the listing of the others
            return f"{name}: cannot be inspected ({type(exc).__name__}: {exc})"

    def listing(self) -> list[dict[str, Any]]:
        """Every model folder: its name, whether it is resident, and its :meth:`warning` (None when all is well)."""
        loaded = set(self.loaded())
        return [{"name": n, "loaded": n in loaded, "warning": self.warning(n)} for n in self.available()]

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def memory_bytes(self) -> int:
        with self._lock:
            return sum(e.memory for e in self._entries.values())

    def describe(self, entry: Entry) -> dict[str, Any]:
        m = entry.model
        return {
            "name": entry.name,
            "num_codes": int(m.num_codes),
            "frames": [int(f) for f in m.frames],
            "label_size": int(m.label_size),
            "render_size": int(m.render_size),
            "plate": _plain(getattr(m, "plate_info", {})),
            "memory_bytes": entry.memory,
            "warning": self.warning(entry.name),
        }

    # --- access --------------------------------------------------------------------------------
    def get(self, name: str) -> Entry:
        """The resident entry for ``name``, loading it (once, even under concurrent requests)."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None:
                self._entries.move_to_end(name)
                entry.uses += 1
                return entry
            load_lock = self._loading.setdefault(name, threading.Lock())
        with load_lock:
            with self._lock:
                entry = self._entries.get(name)
                if entry is not None:
                    self._entries.move_to_end(name)
                    return entry
            entry = self._load(name)
            with self._lock:
                self._entries[name] = entry
                self._evict(keep=name)
            return entry

    def driver(self, name: str) -> Any:
        """A driver shot for expression transfer (:class:`vq_models.transfer.DriverShot`): a folder under root
        with prep's tracking; it needs no trained model, so it is not a model entry. The last few stay loaded."""
        with self._lock:
            hit = self._drivers.get(name)
            if hit is not None:
                self._drivers.move_to_end(name)
                return hit
        from vq_models.shot import ShotLayout
        from vq_models.transfer import DriverShot

        path = self.root / name
        if not ShotLayout(path).meta_path.is_file():
            raise ProtocolError(NO_MODEL, f"driver {name!r}: no shot folder of that name in {self.root}")

        try:
            driver = DriverShot(path)
        except VQEditError as exc:
            raise ProtocolError(NO_MODEL, f"driver {name!r}: {exc}") from None
        with self._lock:
            self._drivers[name] = driver
            while len(self._drivers) > self.max_models:
                self._drivers.popitem(last=False)
        return driver

    def unload(self, name: str) -> bool:
        with self._lock:
            self._drivers.pop(name, None)
            return self._entries.pop(name, None) is not None

    def _load(self, name: str) -> Entry:
        path = self.root / name
        if not path.is_dir():
            raise ProtocolError(NO_MODEL, f"model {name!r}: no such folder in {self.root}")
        t0 = time.perf_counter()
        try:
            model = self.loader(path, self.device)
        except VQEditError as exc:
            raise ProtocolError(NO_MODEL, f"model {name!r}: {exc}") from None
        except Exception as exc:  # a broken model folder must not take the server down
            log.exception("loading %s failed", path)
            raise ProtocolError(NO_MODEL, f"model {name!r}: failed to load ({type(exc).__name__}: {exc})") from None
        try:
            memory = int(model.memory_bytes())
        except Exception:
            memory = 0
        log.info("loaded model %s in %.2fs (%.1f MiB)", name, time.perf_counter() - t0, memory / 2**20)
        return Entry(name=name, model=model, memory=memory)

    def _evict(self, keep: str) -> None:
        """Drop least-recently-used entries (never ``keep``) until both bounds hold. Caller holds _lock.

        An evicted model still in use by a worker stays alive until that request ends (it holds a
        reference); only the cache forgets it.
        """
        def over() -> bool:
            total = sum(e.memory for e in self._entries.values())
            return len(self._entries) > self.max_models or (self.max_bytes > 0 and total > self.max_bytes)

        while over() and len(self._entries) > 1:
            victim = next(n for n in self._entries if n != keep)
            self._entries.pop(victim)
            log.info("evicted model %s (LRU)", victim)


def _plain(value: Any) -> Any:
    """msgpack-safe copy of plate info (tuples → lists, numpy scalars → Python)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value
