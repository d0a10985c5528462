"""``vqedit serve``: the persistent render server (ZeroMQ + msgpack) for hosts and farm blades."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from vq_models.process import one_malloc_arena

NAME = "serve"
HELP = "run the render server: keeps trained shot models loaded, answers render requests over ZeroMQ"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", required=True, metavar="DIR", help="folder whose sub-folders are shot models")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--bind", metavar="ADDR", help="address to listen on (default tcp://127.0.0.1:5555; port * = any free)")
    where.add_argument("--connect", metavar="ADDR", help="attach as a worker to a `vqedit broker` backend address")
    parser.add_argument("--device", default="cpu", help="torch device for the models: cuda, cuda:1, cpu (default cpu)")
    parser.add_argument("--max-models", type=int, default=4, help="models kept loaded at once (LRU, default 4)")
    parser.add_argument("--max-memory-mb", type=int, default=0, help="bound on loaded models' memory (0 = none)")
    parser.add_argument("--plate-cache-mb", type=float, default=None,
                        help="plate rows kept for the detail pass, all shots together (default 320)")
    parser.add_argument("--workers", type=int, default=2, help="worker threads for model work (default 2)")
    parser.add_argument("--max-message-mb", type=float, default=256.0, help="largest request accepted (default 256)")
    parser.add_argument("--curve-secret", metavar="FILE", help="server .key_secret file: turns CURVE authentication on")
    parser.add_argument("--curve-clients", metavar="DIR", help="folder of allowed client .key files (with --curve-secret)")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds in-flight requests get on SIGTERM (default 10)")
    parser.add_argument("--backend", help=argparse.SUPPRESS)  # module:callable model loader (tests, other runtimes)


def run(args: argparse.Namespace) -> int:
    # OpenMP threads busy-wait after each parallel region by default. A server shares its CPU with the host that
    # asked (Nuke, a farm blade, other servers): spinning between requests stole most of a 2-core machine and
    # tripled the round trip (benchmarks/roundtrip.py). Set before torch loads OpenMP; an explicit value wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    one_malloc_arena()
    from render_server.auth import ServerCurve
    from render_server.models import ModelCache, default_inspector, resolve_loader
    from render_server.server import DEFAULT_BIND, RenderServer
    from vq_models.errors import InputError

    models = Path(args.models)
    if not models.is_dir():
        raise InputError(f"--models {models}: folder not found")
    if bool(args.curve_secret) != bool(args.curve_clients):
        raise InputError("--curve-secret and --curve-clients go together")
    if args.connect and args.curve_secret:
        raise InputError("--curve-*: in --connect mode the broker's frontend does the authentication")
    if args.max_models < 1 or args.workers < 1 or args.max_message_mb <= 0:
        raise InputError("--max-models, --workers and --max-message-mb must be positive")
    try:
        import torch

        torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    except ImportError:
        pass
    if args.plate_cache_mb is not None:
        from vq_models.detail import PLATE_CACHE

        PLATE_CACHE.budget_mib = args.plate_cache_mb  # refuses a negative or non-finite budget, naming it
    cache = ModelCache(models, resolve_loader(args.backend), args.device, args.max_models, args.max_memory_mb * 2**20,
                       inspect=default_inspector(args.backend))
    for entry in cache.listing():  # what the log should say before anyone asks: a shot to re-prep or train
        if entry["warning"]:
            print(f"vqedit serve: {entry['name']}: {entry['warning']}", file=sys.stderr, flush=True)
    curve = ServerCurve(Path(args.curve_secret), Path(args.curve_clients)) if args.curve_secret else None
    server = RenderServer(
        cache,
        bind=None if args.connect else (args.bind or DEFAULT_BIND),
        connect=args.connect,
        workers=args.workers,
        max_message_bytes=int(args.max_message_mb * 2**20),
        curve=curve,
        grace_s=args.grace,
    )

    def on_signal(signum: int, _frame: object) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def ready(endpoint: str) -> None:
        # One machine-readable line: tests and wrappers read the resolved port from it.
        print(f"vqedit serve: listening on {endpoint}", flush=True)

    server.serve_forever(ready)
    print("vqedit serve: stopped", file=sys.stderr, flush=True)
    return 0
