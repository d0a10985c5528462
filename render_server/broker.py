"""Scale past one GPU: ZeroMQ's own ROUTER/DEALER proxy in front of several ``vqedit serve`` workers.

Clients keep talking to one address (the frontend ROUTER). The DEALER backend hands requests to the
connected workers in turn (each started with ``vqedit serve --connect BACKEND``), and replies find their
way back because each worker echoes the routing envelope the proxy added. ``zmq.proxy`` does the
forwarding in C; nothing here parses messages.
"""

from __future__ import annotations

import logging
from typing import Any

import zmq

from render_server.auth import ServerCurve

log = logging.getLogger(__name__)


def run_broker(frontend: str, backend: str, curve: ServerCurve | None = None, ready: Any = None) -> None:
    """Bind both sockets and forward until the process is interrupted or the context is terminated.

    ``ready(frontend_endpoint, backend_endpoint)`` is called once both are bound (ports resolved).
    """
    ctx = zmq.Context()
    auth = None
    front = ctx.socket(zmq.ROUTER)
    back = ctx.socket(zmq.DEALER)
    try:
        if curve is not None:
            auth = curve.start(ctx)
            curve.apply(front)
        front.bind(frontend)
        back.bind(backend)
        fe = front.getsockopt_string(zmq.LAST_ENDPOINT)
        be = back.getsockopt_string(zmq.LAST_ENDPOINT)
        log.info("broker: clients on %s, workers on %s", fe, be)
        if ready is not None:
            ready(fe, be)
        try:
            zmq.proxy(front, back)
        except (zmq.ContextTerminated, KeyboardInterrupt):
            pass
        except zmq.ZMQError as exc:
            if exc.errno not in (zmq.ETERM, zmq.EINTR):
                raise
    finally:
        front.close(linger=0)
        back.close(linger=0)
        if auth is not None:
            auth.stop()
        ctx.term()
