"""``vqedit recluster SHOT``: a new Stage I codebook and labels from the trained network, in seconds."""

from __future__ import annotations

import argparse

NAME = "recluster"
HELP = "re-run only the Stage I codebook (new K, RGB/context/region-tap weights, ROI weight or seed) without retraining"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shot", metavar="SHOT", help="shot directory with a trained stage1/")
    parser.add_argument("--codes", type=int, default=None, metavar="K", help="number of codes (2..255)")
    parser.add_argument("--rgb-weight", type=float, default=None, help="share of the generator's RGB tap (0 = off)")
    parser.add_argument("--context-weight", type=float, default=None,
                        help="share of the context colour tap, the colour around each pixel (0 = off)")
    parser.add_argument("--context-sigma", type=float, default=None,
                        help="context blur sigma as a fraction of the label width (e.g. 0.012)")
    parser.add_argument("--region-weight", type=float, default=None,
                        help="share of the region tap, the ROI's eye and mouth parts as two channels (0 = off)")
    parser.add_argument("--roi-weight", type=float, default=None, help="weight of eye/mouth pixels in the k-means (>= 1)")
    parser.add_argument("--seed", type=int, default=None, help="k-means seed")
    parser.add_argument("--lloyd", type=int, default=None, help="Lloyd passes (default: the model's, else 15)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--force", action="store_true",
                        help="move prior.json and stage2/ (made for the current codes) to SHOT/stale/ first")


def run(args: argparse.Namespace) -> int:
    from vq_models.train.recluster import recluster

    s = recluster(args.shot, num_codes=args.codes, rgb_weight=args.rgb_weight,
                  context_weight=args.context_weight, context_sigma=args.context_sigma,
                  region_weight=args.region_weight, roi_weight=args.roi_weight,
                  seed=args.seed, lloyd=args.lloyd, force=args.force, device=args.device)
    print(f"vqedit recluster: {s['from']['num_codes']} -> {s['changes'].get('num_codes', s['from']['num_codes'])} "
          f"codes, {s['lloyd_passes']} Lloyd passes, {s['seconds']} s; labels and codebook rewritten")
    if s["stale_moved_to"]:
        print(f"  moved the prior / Stage II made for the old codes to {s['stale_moved_to']}: "
              "run `vqedit prior SHOT --auto` and retrain Stage II")
    return 0
