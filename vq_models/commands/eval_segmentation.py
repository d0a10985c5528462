"""``vqedit eval-segmentation SHOT --gt-labels PATTERN``: per-part IoU of the Stage I codes vs ground truth."""

from __future__ import annotations

import argparse

NAME = "eval-segmentation"
HELP = "score the Stage I segmentation against ground-truth part labels (per-part IoU, mean IoU)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shot", metavar="SHOT", help="shot directory with a trained stage1/")
    parser.add_argument("--gt-labels", required=True, metavar="PATTERN",
                        help="plate-space ground-truth label maps, e.g. synth/labels/frame.%%04d.png")
    parser.add_argument("--parts", default=None, metavar="parts.json", help="part names by id")
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the report as JSON")


def run(args: argparse.Namespace) -> int:
    from vq_models.io.atomic import atomic_write_json
    from vq_models.segmentation_eval import evaluate_shot, format_table

    report = evaluate_shot(args.shot, args.gt_labels, args.parts)
    print(format_table(report))
    if args.json:
        atomic_write_json(args.json, report.to_json())
    return 0
