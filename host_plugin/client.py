"""RenderClient: the host side of the render protocol (DEALER socket, lazy-pirate retries).

A host (Nuke, a farm blade) must never hang on a dead server, and a server restart must not need the
artist to reconnect anything. So every request has an id and a timeout; on timeout the client throws
its socket away, opens a fresh one and resends what is still pending (the lazy-pirate pattern), up to
``retries`` times, then raises :class:`ServerUnavailable`. Several requests may be in flight at once
(frame ranges), replies are matched by id, stale replies from an earlier socket are dropped.

One RenderClient belongs to one thread (ZeroMQ sockets are not thread-safe); make one per thread.
Needs pyzmq and msgpack only; numpy is imported by the helpers that take or return arrays.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import zmq

from host_plugin.errors import VQEditError
from host_plugin.protocol import (
    PROTOCOL_VERSION,
    ProtocolError,
    decode_array,
    encode_array,
    encode_request,
    shm_available,
    unpack,
)


class ClientError(VQEditError):
    """Base of everything the client raises."""


class ServerUnavailable(ClientError):
    """No reply after all retries: the server is down, unreachable, or refused us (CURVE)."""


class RequestTimeout(ServerUnavailable):
    """Kept for callers that catch timeouts specifically; raised when retries are exhausted."""


class ServerError(ClientError):
    """The server answered with an error: ``code`` (see docs/protocol.md) and its one-line message."""

    def __init__(self, code: str, message: str, op: str = ""):
        super().__init__(f"render server: {op + ': ' if op else ''}{message} [{code}]")
        self.code = code
        self.server_message = message


class RenderClient:
    """Talk to ``vqedit serve`` (or a broker) at ``address``."""

    def __init__(
        self,
        address: str = "tcp://127.0.0.1:5555",
        timeout: float = 30.0,
        retries: int = 2,
        server_key: str | Path | bytes | None = None,
        client_secret: str | Path | None = None,
        context: zmq.Context | None = None,
    ):
        if not isinstance(address, str) or "://" not in address:
            raise ClientError(f"server address {address!r}: expected e.g. tcp://127.0.0.1:5555")
        if (server_key is None) != (client_secret is None):
            raise ClientError("CURVE: give both the server's public key and this client's secret key")
        self.address = address
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.server_key = server_key
        self.client_secret = client_secret
        self._ctx = context or zmq.Context.instance()
        self._sock: zmq.Socket | None = None
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid()}-{id(self) & 0xFFFFFF:x}-"
        self._pending: dict[str, tuple[bytes, str]] = {}  # id → (payload, op)
        self._done: dict[str, dict[str, Any]] = {}
        self.reconnects = 0

    @property
    def same_host(self) -> bool:
        """True when the server is on this machine (loopback or ipc) and /dev/shm can carry payloads."""
        host = self.address.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")
        local = self.address.startswith(("ipc://", "inproc://")) or host in ("127.0.0.1", "localhost", "::1")
        return local and self.server_key is None and shm_available()

    # --- socket lifecycle ----------------------------------------------------------------------
    def _socket(self) -> zmq.Socket:
        if self._sock is None:
            sock = self._ctx.socket(zmq.DEALER)
            sock.linger = 0
            if self.server_key is not None:
                from host_plugin.curve import apply_client

                apply_client(sock, self.server_key, self.client_secret)  # type: ignore[arg-type]
            sock.connect(self.address)
            self._sock = sock
        return self._sock

    def _reconnect(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        self.reconnects += 1
        sock = self._socket()
        for rid, (payload, _op) in self._pending.items():
            if rid not in self._done:
                sock.send(payload)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        self._pending.clear()

    def __enter__(self) -> RenderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- requests ------------------------------------------------------------------------------
    def submit(self, op: str, **fields: Any) -> str:
        """Send a request without waiting; returns its id for :meth:`result`."""
        rid = f"{self._prefix}{next(self._ids)}"
        payload = encode_request(rid, op, **fields)
        self._pending[rid] = (payload, op)
        self._socket().send(payload)
        return rid

    def result(self, rid: str) -> dict[str, Any]:
        """Wait for the reply to ``rid`` (retrying per the lazy-pirate pattern); raise on error replies."""
        attempts = 0
        deadline = time.monotonic() + self.timeout
        while rid not in self._done:
            if rid not in self._pending:
                raise ClientError(f"request {rid}: unknown or already collected")
            remaining = deadline - time.monotonic()
            sock = self._socket()
            if remaining > 0 and sock.poll(int(min(remaining, 1.0) * 1000) + 1, zmq.POLLIN):
                self._receive_all(sock)
                continue
            if time.monotonic() < deadline:
                continue
            attempts += 1
            if attempts > self.retries:
                op = self._pending.pop(rid)[1]
                raise RequestTimeout(
                    f"render server {self.address}: no reply to {op!r} after {self.retries + 1} tries of "
                    f"{self.timeout:g}s (is `vqedit serve` running and reachable?)"
                )
            self._reconnect()
            deadline = time.monotonic() + self.timeout
        reply = self._done.pop(rid)
        op = self._pending.pop(rid, (b"", ""))[1]
        if not reply.get("ok"):
            err = reply.get("error") or {}
            raise ServerError(str(err.get("code", "unknown")), str(err.get("message", "")), op)
        return reply

    def _receive_all(self, sock: zmq.Socket) -> None:
        while True:
            try:
                frame = sock.recv(zmq.NOBLOCK, copy=False)  # unpacked straight from zmq's buffer
            except zmq.Again:
                return
            try:
                reply = unpack(frame.buffer)
            except ProtocolError:
                continue
            if not isinstance(reply, dict):
                continue
            rid = reply.get("id")
            if rid in self._pending and rid not in self._done:
                self._done[rid] = reply

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request and wait for its reply."""
        return self.result(self.submit(op, **fields))

    def pipeline(self, requests: Iterable[tuple[str, dict[str, Any]]], in_flight: int = 4) -> Iterator[dict[str, Any]]:
        """Replies to ``requests`` in order, keeping up to ``in_flight`` of them on the wire at once."""
        window: list[str] = []
        it = iter(requests)
        for op, fields in it:
            window.append(self.submit(op, **fields))
            if len(window) >= max(1, in_flight):
                yield self.result(window.pop(0))
        while window:
            yield self.result(window.pop(0))

    # --- typed helpers -------------------------------------------------------------------------
    def ping(self) -> dict[str, Any]:
        return self.request("ping")

    def info(self) -> dict[str, Any]:
        reply = self.request("info")
        if reply.get("protocol") != PROTOCOL_VERSION:
            raise ClientError(f"render server speaks protocol {reply.get('protocol')}, this client {PROTOCOL_VERSION}")
        return reply

    def list_models(self) -> list[dict[str, Any]]:
        return list(self.request("list_models")["models"])

    def load(self, model: str) -> dict[str, Any]:
        return dict(self.request("load", model=model)["model"])

    def unload(self, model: str) -> bool:
        return bool(self.request("unload", model=model)["unloaded"])

    def labels(self, model: str, frame: int | None = None, image: Any = None) -> Any:
        """The model's label map at ``frame`` (or of ``image``) as a uint8 numpy array. With both, ``image`` is
        labelled as showing ``frame``'s crop (a shot whose Stage I reads the ROI takes that frame's)."""
        import numpy as np

        fields: dict[str, Any] = {"model": model}
        if image is not None:
            fields["image"] = encode_array(np.ascontiguousarray(image, dtype=np.float32))
        if frame is not None:
            fields["frame"] = int(frame)
        return decode_array(self.request("labels", **fields)["labels"], "labels")

    @staticmethod
    def render_fields(
        model: str,
        frame: int,
        program: dict[str, Any] | None = None,
        feather: float = 8.0,
        mode: str = "identity",
        labels: Any = None,
        fmt: str = "exr",
        shm: bool = False,
    ) -> dict[str, Any]:
        """The fields of a frame render request (shared by :meth:`render_frame` and pipelines). ``shm``: the
        client shares the server's host, so a raw/half payload may come back as a /dev/shm file."""
        fields: dict[str, Any] = {"model": model, "frame": int(frame), "program": program, "feather": float(feather), "mode": mode, "format": fmt}
        if shm and fmt in ("raw", "half"):
            fields["shm"] = True
        if labels is not None:
            import numpy as np

            fields["labels"] = encode_array(np.ascontiguousarray(labels, dtype=np.uint8))
        return fields

    def render_frame(self, model: str, frame: int, **kw: Any) -> dict[str, Any]:
        """Raw reply of a frame render: ``exr`` bytes (or ``rgba`` array), windows, colour space, changed."""
        return self.request("render", **self.render_fields(model, frame, **kw))

    def render_window(self, model: str, window: Any, fmt: str = "raw") -> dict[str, Any]:
        import numpy as np

        return self.request("render", model=model, window=encode_array(np.ascontiguousarray(window, dtype=np.uint8)), format=fmt)

    def exemplar(self, model: str, frame: int | None = None) -> bytes:
        return bytes(self.request("exemplar", model=model, frame=frame)["png"])

    def prior(self, model: str, new: dict[str, Any] | None = None) -> dict[str, Any]:
        return dict(self.request("prior", model=model, set=new)["prior"])
