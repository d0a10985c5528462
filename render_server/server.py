"""The render server loop: one I/O thread owns the socket, a worker pool does the model work.

ZeroMQ sockets are not thread-safe, so exactly one thread (the one calling :meth:`serve_forever`)
reads and writes the ROUTER socket. Cheap requests (``ping``, ``info``, ``list_models``) are answered
right there, so a long render never delays a health check. Everything else goes to a thread pool;
finished replies come back over an inproc PUSH/PULL pair and the I/O thread sends them. The routing
envelope (every frame before the payload) is echoed untouched, which is what makes the same loop work
bound directly (clients → ROUTER) and behind ``vqedit broker`` (clients → ROUTER/DEALER proxy → worker).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import zmq

from host_plugin.protocol import (
    DEFAULT_MAX_MESSAGE_BYTES,
    FAST_OPS,
    INTERNAL,
    PROTOCOL_VERSION,
    SHUTTING_DOWN,
    ProtocolError,
    Request,
    decode_request,
    error_reply,
    ok_reply,
)
from render_server import handlers
from render_server.auth import ServerCurve
from render_server.models import ModelCache
from vq_models import __version__

log = logging.getLogger(__name__)
DEFAULT_BIND = "tcp://127.0.0.1:5555"


class RenderServer:
    """A ROUTER (``bind``) or DEALER (``connect`` to a broker backend) socket serving a :class:`ModelCache`."""

    def __init__(
        self,
        cache: ModelCache,
        bind: str | None = DEFAULT_BIND,
        connect: str | None = None,
        workers: int = 2,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        curve: ServerCurve | None = None,
        grace_s: float = 10.0,
    ):
        if (bind is None) == (connect is None):
            raise ValueError("give exactly one of bind / connect")
        self.cache = cache
        self.bind_addr, self.connect_addr = bind, connect
        self.workers = max(1, int(workers))
        self.max_message_bytes = int(max_message_bytes)
        self.curve = curve
        self.grace_s = float(grace_s)
        self.worker_id = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.endpoint = ""
        self.requests_served = 0
        self._stop = threading.Event()
        self._push_lock = threading.Lock()
        self._push: zmq.Socket | None = None
        self._inflight: dict[bytes, list[bytes]] = {}
        self._inflight_rid: dict[bytes, Any] = {}
        self._release: dict[bytes, list[Any]] = {}  # request key → objects to drop after its reply is sent
        self._keys = itertools.count()
        self._started = time.time()

    def stop(self) -> None:
        """Ask the loop to finish: in-flight requests get their replies (or SHUTTING_DOWN), then it returns.

        Safe from signal handlers and other threads.
        """
        self._stop.set()

    # --- the loop ------------------------------------------------------------------------------
    def serve_forever(self, ready: Any = None) -> None:
        """Run until :meth:`stop`. ``ready(endpoint)`` is called once the socket is bound/connected."""
        ctx = zmq.Context()
        auth = None
        sock = ctx.socket(zmq.ROUTER if self.bind_addr else zmq.DEALER)
        sock.linger = 1000
        # Hard guard against memory exhaustion; messages between the soft limit and this one still get
        # a structured TOO_LARGE reply, bigger ones make libzmq drop the peer.
        sock.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes * 4 + (1 << 20))
        if self.bind_addr:
            sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
            if self.curve is not None:
                auth = self.curve.start(ctx)
                self.curve.apply(sock)
            sock.bind(self.bind_addr)
            self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        else:
            sock.connect(self.connect_addr)
            self.endpoint = str(self.connect_addr)
        pull = ctx.socket(zmq.PULL)
        inproc = f"inproc://replies-{self.worker_id}"
        pull.bind(inproc)
        push = ctx.socket(zmq.PUSH)
        push.connect(inproc)
        self._push = push
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="vq-worker")
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(pull, zmq.POLLIN)
        log.info("render server %s listening on %s (%d workers)", self.worker_id, self.endpoint, self.workers)
        if ready is not None:
            ready(self.endpoint)
        deadline: float | None = None
        try:
            while True:
                if self._stop.is_set() and deadline is None:
                    deadline = time.monotonic() + self.grace_s
                    log.info("shutting down: %d request(s) in flight", len(self._inflight))
                if deadline is not None and (not self._inflight or time.monotonic() > deadline):
                    break
                events = dict(poller.poll(50))
                if pull in events:
                    self._drain_replies(pull, sock)
                if sock in events:
                    self._drain_requests(sock, pool, draining=deadline is not None)
            # Anything still running past the grace period is failed with a reply.
            for key, envelope in list(self._inflight.items()):
                rid = self._inflight_rid.pop(key, None)
                sock.send_multipart([*envelope, error_reply(rid, SHUTTING_DOWN, "server shut down before this request finished")])
            self._inflight.clear()
        finally:
            self._release.clear()
            with self._push_lock:
                self._push = None
                push.close(linger=0)
            pool.shutdown(wait=False, cancel_futures=True)
            pull.close(linger=0)
            sock.close(linger=1000)
            if auth is not None:
                auth.stop()
            ctx.term()
            log.info("render server %s stopped after %d requests", self.worker_id, self.requests_served)

    def _drain_replies(self, pull: zmq.Socket, sock: zmq.Socket) -> None:
        while True:
            try:
                frames = pull.recv_multipart(zmq.NOBLOCK, copy=False)  # a render reply is megabytes: no copies
            except zmq.Again:
                return
            key, rest = frames[0].bytes, frames[1:]
            if self._inflight.pop(key, None) is not None:
                self._inflight_rid.pop(key, None)
                sock.send_multipart(rest, copy=False)
                self.requests_served += 1
            # the request's big arrays (handlers.release_after_reply) go now, while libzmq's own thread
            # sends the reply and the host works on it, instead of delaying the reply
            self._release.pop(key, None)

    def _drain_requests(self, sock: zmq.Socket, pool: ThreadPoolExecutor, draining: bool) -> None:
        for _ in range(1000):  # bounded so replies interleave with a flood of requests
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) < 2 and self.bind_addr:
                continue  # no routing envelope: nothing we could reply to
            envelope, payload = frames[:-1], frames[-1]
            try:
                req = decode_request(payload, self.max_message_bytes)
            except ProtocolError as exc:
                sock.send_multipart([*envelope, error_reply(getattr(exc, "id", None), exc.code, exc.message)])
                self.requests_served += 1
                continue
            if draining:
                sock.send_multipart([*envelope, error_reply(req.id, SHUTTING_DOWN, "server is shutting down")])
                continue
            if req.op in FAST_OPS:
                sock.send_multipart([*envelope, self._fast(req)])
                self.requests_served += 1
                continue
            key = str(next(self._keys)).encode()
            self._inflight[key] = envelope
            self._inflight_rid[key] = req.id
            pool.submit(self._work, key, envelope, req)

    # --- request handling ----------------------------------------------------------------------
    def _fast(self, req: Request) -> bytes:
        if req.op == "ping":
            return ok_reply(req.id, pong=True, time=time.time(), worker=self.worker_id)
        if req.op == "list_models":
            return ok_reply(req.id, models=self.cache.listing())
        return ok_reply(
            req.id,
            version=__version__,
            protocol=PROTOCOL_VERSION,
            device=self.cache.device,
            worker=self.worker_id,
            pid=os.getpid(),
            loaded=self.cache.loaded(),
            memory_bytes=self.cache.memory_bytes(),
            max_models=self.cache.max_models,
            max_bytes=self.cache.max_bytes,
            max_message_bytes=self.max_message_bytes,
            **_plate_cache(),
            workers=self.workers,
            in_flight=len(self._inflight),
            uptime_s=time.time() - self._started,
        )

    def _work(self, key: bytes, envelope: list[bytes], req: Request) -> None:
        """Worker-thread body: run the handler, always produce exactly one reply."""
        with handlers.collecting_releases() as keep:
            try:
                reply = ok_reply(req.id, **handlers.HANDLERS[req.op](self.cache, req.fields))
            except ProtocolError as exc:
                reply = error_reply(req.id, exc.code, exc.message)
            except Exception as exc:  # a bug must cost one request, never the server
                log.exception("request %r (%s) failed", req.id, req.op)
                reply = error_reply(req.id, INTERNAL, f"{type(exc).__name__}: {exc}")
        if keep:
            self._release[key] = keep  # dropped by the I/O thread once the reply is sent
        del keep
        with self._push_lock:
            if self._push is not None:
                self._push.send_multipart([key, *envelope, reply], copy=False)


def _plate_cache() -> dict[str, int]:
    """What the detail pass's plate row cache holds and may hold (:class:`vq_models.detail.PlateRowCache`, one
    for the process, all loaded shots together); nothing where the models do not use it."""
    try:
        from vq_models.detail import PLATE_CACHE
    except ImportError:
        return {}
    return {"plate_cache_bytes": PLATE_CACHE.nbytes(), "plate_cache_max_bytes": int(PLATE_CACHE.budget_mib * 2**20)}
