"""``vqedit keys``: make a CurveZMQ key pair for the render server or one of its clients."""

from __future__ import annotations

import argparse

NAME = "keys"
HELP = "generate a CurveZMQ key pair (NAME.key public, NAME.key_secret secret) for serve/broker/clients"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write the key files into")
    parser.add_argument("--name", default="server", help="base name of the key files (default server)")


def run(args: argparse.Namespace) -> int:
    from render_server.auth import generate_keypair

    public, secret = generate_keypair(args.out, args.name)
    print(f"public key: {public}  (give to the other side)")
    print(f"secret key: {secret}  (keep private)")
    return 0
