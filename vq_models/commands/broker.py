"""``vqedit broker``: one client address in front of several render server workers (ZeroMQ proxy)."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "broker"
HELP = "forward clients (frontend) to several `vqedit serve --connect` workers (backend)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frontend", default="tcp://127.0.0.1:5555", help="address clients connect to")
    parser.add_argument("--backend", default="tcp://127.0.0.1:5556", help="address workers connect to")
    parser.add_argument("--curve-secret", metavar="FILE", help="frontend CURVE .key_secret file")
    parser.add_argument("--curve-clients", metavar="DIR", help="folder of allowed client .key files")


def run(args: argparse.Namespace) -> int:
    from render_server.auth import ServerCurve
    from render_server.broker import run_broker
    from vq_models.errors import InputError

    if bool(args.curve_secret) != bool(args.curve_clients):
        raise InputError("--curve-secret and --curve-clients go together")
    curve = ServerCurve(Path(args.curve_secret), Path(args.curve_clients)) if args.curve_secret else None

    def ready(front: str, back: str) -> None:
        print(f"vqedit broker: frontend {front} backend {back}", flush=True)

    run_broker(args.frontend, args.backend, curve, ready)
    return 0
