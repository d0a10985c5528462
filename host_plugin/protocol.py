"""The wire protocol's codec: msgpack maps, a version, request ids, typed fields, structured errors.

The one owner of the wire format: the render server imports it from here, and so does every host
(Nuke's Python, a farm blade, the OFX bridge), which is why it lives in the thin package and needs only
msgpack (numpy is imported when an array is actually encoded or decoded). Nothing here touches sockets: it turns
bytes into validated requests and replies into bytes. Every way a message can be wrong maps to one
error code with a one-line message naming the field, because the server must answer hostile input
instead of crashing (docs/protocol.md lists the codes). No pickle: arrays travel as raw bytes plus
``dtype`` and ``shape`` fields and are checked against their declared size before use.
"""

from __future__ import annotations

import math
import mmap
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

PROTOCOL_VERSION = 1
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
MAX_ID_LEN = 128
MAX_NAME_LEN = 256
MAX_ARRAY_DIMS = 4
ALLOWED_DTYPES = ("uint8", "float16", "float32")

# Error codes (stable strings: clients branch on them).
BAD_MESSAGE = "bad_message"  # not a msgpack map / truncated / wrong version
BAD_REQUEST = "bad_request"  # a field is missing or has the wrong type/shape/value
UNKNOWN_OP = "unknown_op"
TOO_LARGE = "too_large"  # message over the server's configured size limit
NO_MODEL = "no_model"  # model name not in --models DIR, or failed to load
BAD_FRAME = "bad_frame"  # frame not in the shot
BAD_LABELS = "bad_labels"  # labels out of range [0, K) or wrong shape
BAD_PROGRAM = "bad_program"  # edit program did not validate
BAD_PRIOR = "bad_prior"
SHUTTING_DOWN = "shutting_down"
INTERNAL = "internal"  # a bug on the server side; the model stays loaded
ERROR_CODES = (
    BAD_MESSAGE, BAD_REQUEST, UNKNOWN_OP, TOO_LARGE, NO_MODEL, BAD_FRAME, BAD_LABELS, BAD_PROGRAM,
    BAD_PRIOR, SHUTTING_DOWN, INTERNAL,
)

# Ops answered by the I/O thread itself (cheap, never queued behind renders).
FAST_OPS = ("ping", "info", "list_models")
# Ops that run on a worker thread.
WORK_OPS = ("load", "unload", "labels", "render", "exemplar", "prior")
OPS = FAST_OPS + WORK_OPS


class ProtocolError(Exception):
    """A request that cannot be served; becomes an error reply with ``code`` and ``message``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Request:
    """A decoded, minimally checked request: ``op`` is known and ``id`` is echoable."""

    id: Any
    op: str
    fields: dict[str, Any]


# --- packing --------------------------------------------------------------------------------------
def pack(obj: Mapping[str, Any]) -> bytes:
    """msgpack with bin type for bytes and str for text (so both ends never guess)."""
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data: bytes, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Any:
    """Strict msgpack decode: no ext types, bounded sizes, keys must be str (checked by callers)."""
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            max_str_len=max_bytes,
            max_bin_len=max_bytes,
            max_array_len=1_000_000,
            max_map_len=100_000,
            max_ext_len=0,
        )
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, TypeError) as exc:
        raise ProtocolError(BAD_MESSAGE, f"cannot decode msgpack: {type(exc).__name__}") from None
    except Exception as exc:  # msgpack raises a few odd types on hostile input; none may escape
        raise ProtocolError(BAD_MESSAGE, f"cannot decode msgpack: {type(exc).__name__}") from None


def _echo_id(value: Any) -> Any:
    """The id to echo: str or int within limits, otherwise None (a bad id is still answered)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and -(2**63) <= value < 2**64:
        return value
    if isinstance(value, str) and len(value) <= MAX_ID_LEN:
        return value
    return None


def peek_id(data: bytes, window: int = 4096) -> Any:
    """The request id read from the first bytes only (for replies to messages too big to decode).

    Clients put ``v``, ``id`` and ``op`` first in the map (:func:`encode_request` does), so the id is
    found without touching the large fields; anything unexpected gives None.
    """
    try:
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=window, max_ext_len=0)
        unpacker.feed(data[:window])
        count = unpacker.read_map_header()
        for _ in range(min(count, 8)):
            key = unpacker.unpack()
            value = unpacker.unpack()
            if key == "id":
                return _echo_id(value)
    except Exception:  # noqa: BLE001 - best effort only
        return None
    return None


def decode_request(data: bytes, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Request:
    """Bytes → :class:`Request`, or :class:`ProtocolError` carrying whatever id could be recovered.

    The recovered id is stored on the exception as ``.id`` so the error reply still echoes it.
    """
    if len(data) > max_bytes:
        exc = ProtocolError(TOO_LARGE, f"message is {len(data)} bytes, the limit is {max_bytes}")
        exc.id = peek_id(data)  # type: ignore[attr-defined]
        raise exc
    obj = unpack(data, max_bytes)
    if not isinstance(obj, dict):
        raise ProtocolError(BAD_MESSAGE, f"message must be a msgpack map, got {type(obj).__name__}")
    rid = _echo_id(obj.get("id"))
    try:
        if "id" not in obj or rid is None:
            raise ProtocolError(BAD_REQUEST, "id: required, a string (≤128 chars) or an integer")
        version = obj.get("v", PROTOCOL_VERSION)
        if version != PROTOCOL_VERSION or isinstance(version, bool):
            raise ProtocolError(BAD_MESSAGE, f"v: protocol version {version!r} not supported (server speaks {PROTOCOL_VERSION})")
        op = obj.get("op")
        if not isinstance(op, str):
            raise ProtocolError(BAD_REQUEST, "op: required string")
        if op not in OPS:
            raise ProtocolError(UNKNOWN_OP, f"op: unknown request {op[:40]!r} (known: {', '.join(OPS)})")
        fields = {k: v for k, v in obj.items() if k not in ("id", "v", "op")}
        return Request(id=rid, op=op, fields=fields)
    except ProtocolError as exc:
        exc.id = rid  # type: ignore[attr-defined]
        raise


def encode_request(rid: Any, op: str, **fields: Any) -> bytes:
    return pack({"v": PROTOCOL_VERSION, "id": rid, "op": op, **fields})


def ok_reply(rid: Any, **fields: Any) -> bytes:
    return pack({"v": PROTOCOL_VERSION, "id": rid, "ok": True, **fields})


def error_reply(rid: Any, code: str, message: str) -> bytes:
    return pack({"v": PROTOCOL_VERSION, "id": rid, "ok": False, "error": {"code": code, "message": message}})


# --- arrays ---------------------------------------------------------------------------------------
def encode_array(array: Any) -> dict[str, Any]:
    """An ndarray as ``{"dtype", "shape", "data"}`` (C order, little endian)."""
    import numpy as np

    arr = np.ascontiguousarray(array)
    if arr.dtype.name not in ALLOWED_DTYPES:
        raise ValueError(f"dtype {arr.dtype} cannot travel; use one of {ALLOWED_DTYPES}")
    data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()  # one copy (none extra on little-endian)
    return {"dtype": arr.dtype.name, "shape": list(arr.shape), "data": data}


SHM_DIR = "/dev/shm"
SHM_PREFIX = "vqedit-payload-"


def shm_available() -> bool:
    """Whether this machine has RAM-backed files a same-host peer can hand over (Linux /dev/shm)."""
    return os.path.isdir(SHM_DIR) and os.access(SHM_DIR, os.W_OK)


def encode_array_shm(array: Any) -> dict[str, Any]:
    """Like :func:`encode_array`, but the bytes go to a private file in /dev/shm and the map carries its
    path (``"shm"``) instead of ``"data"``: a reply to a client on the same host skips the socket copies.
    The reader deletes the file; :func:`sweep_shm` removes any a client never collected. The bytes are
    written with one ``write`` (cheaper than filling a fresh shared mapping page fault by page fault)."""
    import numpy as np

    arr = np.ascontiguousarray(array)
    if arr.dtype.name not in ALLOWED_DTYPES:
        raise ValueError(f"dtype {arr.dtype} cannot travel; use one of {ALLOWED_DTYPES}")
    fd, path = tempfile.mkstemp(prefix=SHM_PREFIX, suffix=".bin", dir=SHM_DIR)
    with os.fdopen(fd, "wb") as fh:
        fh.write(memoryview(arr.astype(arr.dtype.newbyteorder("<"), copy=False)).cast("B"))
    return {"dtype": arr.dtype.name, "shape": list(arr.shape), "shm": path}


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def sweep_shm(max_age_s: float = 120.0) -> None:
    """Delete payload files older than ``max_age_s`` (their client died or timed out before reading)."""
    now = time.time()
    try:
        names = [n for n in os.listdir(SHM_DIR) if n.startswith(SHM_PREFIX)]
    except OSError:
        return
    for name in names:
        path = os.path.join(SHM_DIR, name)
        try:
            if now - os.stat(path).st_mtime > max_age_s:
                os.unlink(path)
        except OSError:
            pass


# A shared read-only mapping; MAP_POPULATE (Linux) maps the payload's pages up front, one call instead of a page
# fault per 4 KiB on first read. Python 3.10+ names it; 0 elsewhere (the mapping then faults lazily, still without
# a copy). Distinct bits, so the sum is their union.
_MAP_FLAGS = getattr(mmap, "MAP_SHARED", 1) + getattr(mmap, "MAP_POPULATE", 0)


def _map_shm(path: Any, field: str) -> Any:
    """A read-only mapping of a payload file named in a reply (no copy: the client reads the server's pages),
    then the file is deleted (the mapping outlives the name). Only files this protocol writes are read
    (/dev/shm/vqedit-payload-*), so a reply cannot make a client read anything else."""
    if not isinstance(path, str):
        raise ProtocolError(BAD_REQUEST, f"{field}.shm: expected a path")
    real = os.path.realpath(path)
    if os.path.dirname(real) != os.path.realpath(SHM_DIR) or not os.path.basename(real).startswith(SHM_PREFIX):
        raise ProtocolError(BAD_REQUEST, f"{field}.shm: not a vqedit payload file")
    try:
        fd = os.open(real, os.O_RDONLY)
    except OSError as exc:
        _unlink(real)
        raise ProtocolError(BAD_REQUEST, f"{field}.shm: cannot read the payload ({exc.strerror}); is the server on another host?") from None
    try:
        size = os.fstat(fd).st_size
        if size <= 0:
            raise ProtocolError(BAD_REQUEST, f"{field}.shm: the payload file is empty")
        return mmap.mmap(fd, size, flags=_MAP_FLAGS, prot=mmap.PROT_READ)
    except OSError as exc:
        raise ProtocolError(BAD_REQUEST, f"{field}.shm: cannot map the payload ({exc.strerror})") from None
    finally:
        os.close(fd)
        _unlink(real)


def decode_array(value: Any, field: str, dtypes: tuple[str, ...] = ALLOWED_DTYPES, ndim: tuple[int, ...] | None = None,
                 shm: bool = False) -> Any:
    """Validate and decode an array field (a numpy array); every problem is a BAD_REQUEST naming ``field``.
    ``shm``: accept a payload file in place of ``data`` (replies only; the server never reads client paths)."""
    import numpy as np

    if not isinstance(value, dict):
        raise ProtocolError(BAD_REQUEST, f"{field}: expected an array map {{dtype, shape, data}}")
    dtype, shape, data = value.get("dtype"), value.get("shape"), value.get("data")
    if shm and data is None and "shm" in value:
        data = _map_shm(value["shm"], field)  # an mmap: np.frombuffer below reads it in place (read-only)
    if dtype not in dtypes:
        raise ProtocolError(BAD_REQUEST, f"{field}.dtype: expected one of {', '.join(dtypes)}, got {str(dtype)[:20]!r}")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= MAX_ARRAY_DIMS
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 < s <= 1 << 16 for s in shape)
    ):
        raise ProtocolError(BAD_REQUEST, f"{field}.shape: expected 1-{MAX_ARRAY_DIMS} positive integers")
    if ndim is not None and len(shape) not in ndim:
        raise ProtocolError(BAD_REQUEST, f"{field}.shape: expected {' or '.join(map(str, ndim))} dimensions, got {len(shape)}")
    if not isinstance(data, (bytes, mmap.mmap)):
        raise ProtocolError(BAD_REQUEST, f"{field}.data: expected bytes")
    dt = np.dtype(dtype).newbyteorder("<")
    expected = math.prod(shape) * dt.itemsize
    if expected != len(data):
        raise ProtocolError(BAD_REQUEST, f"{field}.data: {len(data)} bytes, shape {shape} of {dtype} needs {expected}")
    return np.frombuffer(data, dtype=dt).reshape(shape).astype(np.dtype(dtype), copy=False)


# --- typed field access ---------------------------------------------------------------------------
_MISSING = object()


def get_field(fields: Mapping[str, Any], name: str, kind: type[Any] | tuple[type[Any], ...], default: Any = _MISSING) -> Any:
    """Return ``fields[name]`` checked against ``kind`` (bools are not ints); BAD_REQUEST otherwise."""
    if name not in fields or fields[name] is None:
        if default is _MISSING:
            raise ProtocolError(BAD_REQUEST, f"{name}: required")
        return default
    value = fields[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ProtocolError(BAD_REQUEST, f"{name}: expected {'/'.join(k.__name__ for k in kinds)}, got bool")
    if not isinstance(value, kinds):
        raise ProtocolError(BAD_REQUEST, f"{name}: expected {'/'.join(k.__name__ for k in kinds)}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ProtocolError(BAD_REQUEST, f"{name}: must be finite")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**31:
        raise ProtocolError(BAD_REQUEST, f"{name}: integer out of range")
    return value


