"""CurveZMQ on the client side: read ZeroMQ certificate files and make a socket a CURVE client.

Here, not in the server package, because a host (Nuke, a farm blade) talks to a CURVE server with
only pyzmq installed; :mod:`render_server.auth` builds the server side on :func:`load_keypair`.
"""

from __future__ import annotations

from pathlib import Path

import zmq

from host_plugin.errors import InputError


def require_curve() -> None:
    """Fail with one line when libzmq has no CURVE support (some distribution builds)."""
    if not zmq.has("curve"):
        raise InputError("CURVE: this libzmq was built without CURVE support")


def load_keypair(path: str | Path) -> tuple[bytes, bytes | None]:
    """(public, secret) from a certificate file; secret is None for a ``.key`` public file."""
    import zmq.auth

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: CURVE key file not found")
    try:
        public, secret = zmq.auth.load_certificate(str(p))
    except (ValueError, OSError) as exc:
        raise InputError(f"{p}: not a ZeroMQ CURVE certificate ({exc})") from None
    return public, secret


def apply_client(socket: zmq.Socket, server_key: str | Path | bytes, client_secret: str | Path) -> None:
    """Make ``socket`` a CURVE client of the server whose public key is ``server_key`` (before connect)."""
    require_curve()
    server_public = server_key if isinstance(server_key, bytes) else load_keypair(server_key)[0]
    public, secret = load_keypair(client_secret)
    if secret is None:
        raise InputError(f"{client_secret}: this is a public key; the client needs its .key_secret file")
    socket.curve_serverkey = server_public
    socket.curve_publickey = public
    socket.curve_secretkey = secret
