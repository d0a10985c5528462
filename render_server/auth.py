"""CurveZMQ: key pairs on disk, server-side authentication, client-side keys.

A render server on a studio network accepts frames from anyone who can reach its port; CURVE makes it
answer only clients whose public key sits in an allowed-keys folder, and encrypts the traffic. Keys use
ZeroMQ's own certificate files (``NAME.key`` public, ``NAME.key_secret`` secret) so the standard tools
read them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import zmq

from host_plugin.curve import apply_client, load_keypair, require_curve
from vq_models.errors import InputError

__all__ = ["ServerCurve", "apply_client", "generate_keypair", "load_keypair"]


def generate_keypair(out_dir: str | Path, name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` and ``NAME.key_secret`` (ZeroMQ certificate format); return their paths."""
    import zmq.auth

    require_curve()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for existing in (out / f"{name}.key", out / f"{name}.key_secret"):
        if existing.exists():
            raise InputError(f"{existing}: already exists (choose another --name or folder)")
    public, secret = zmq.auth.create_certificates(str(out), name)
    Path(secret).chmod(0o600)
    return Path(public), Path(secret)


@dataclass
class ServerCurve:
    """Server CURVE setup: its secret certificate and the folder of allowed client public keys."""

    secret_file: Path
    clients_dir: Path

    def start(self, ctx: zmq.Context):
        """Start ZeroMQ's authenticator thread for ``ctx``; returns it (call ``.stop()`` on shutdown)."""
        from zmq.auth.thread import ThreadAuthenticator

        require_curve()
        if not self.clients_dir.is_dir():
            raise InputError(f"{self.clients_dir}: allowed client keys folder not found")
        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve(domain="*", location=str(self.clients_dir))
        return auth

    def apply(self, socket: zmq.Socket) -> None:
        """Make ``socket`` a CURVE server (before bind)."""
        public, secret = load_keypair(self.secret_file)
        if secret is None:
            raise InputError(f"{self.secret_file}: this is a public key; the server needs its .key_secret file")
        socket.curve_publickey = public
        socket.curve_secretkey = secret
        socket.curve_server = True
