"""`vqedit transfer-expression SHOT --driver DRIVER_SHOT --out DIR`: re-pose a driver's mouth motion."""

from __future__ import annotations

import argparse

NAME = "transfer-expression"
HELP = "transfer a driver shot's mouth/jaw motion onto a shot and write the re-rendered overlay frames"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shot", help="source shot directory (from vqedit prep)")
    parser.add_argument("--driver", required=True, help="driver shot directory (from vqedit prep)")
    parser.add_argument("--out", required=True, help="folder for overlay frame.%%04d.png and tracking.json")


def run(args: argparse.Namespace) -> int:
    from vq_models.face.expression import transfer_expression

    tracks = transfer_expression(args.shot, args.driver, args.out)
    print(f"{args.out}: {len(tracks)} transferred overlay frames")
    return 0
