"""``vqedit demo [--out DIR] [--quick]``: the whole product end to end on footage it generates itself."""

from __future__ import annotations

import argparse
import sys

NAME = "demo"
HELP = "run the whole pipeline on a synthetic shot: train, edit through a real render server, write results"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="vqedit_demo", metavar="DIR", help="output folder (default ./vqedit_demo)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: about 2 minutes (used by the tests)")
    parser.add_argument("--retrain", action="store_true", help="train again even if OUT holds matching models")
    parser.add_argument("--device", default="cpu", help="torch device for training (default cpu)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a demo setting, e.g. --set frames=24 (see vq_models/demo/config.py)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    from vq_models.demo.pipeline import resolve_config, run_demo, summary_table
    from vq_models.demo.steps import DemoStepFailed

    config = resolve_config(args.quick, args.overrides)
    preset = "tiny" if args.quick else "cpu"
    print(f"vqedit demo: preset {preset}, writing to {args.out}", flush=True)
    try:
        result = run_demo(args.out, config, retrain=args.retrain, progress=not args.no_progress, device=args.device,
                          preset_name=preset)
    except DemoStepFailed as exc:
        print(str(exc), file=sys.stderr, flush=True)
        return 1
    print(summary_table(result), flush=True)
    return 0
