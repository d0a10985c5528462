"""``vqedit eval``: compare rendered frames with ground truth (MSE, PSNR, SSIM, LPIPS, flicker, FID/FVD)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vq_models.errors import InputError

NAME = "eval"
HELP = "score renders against ground truth: MSE, PSNR, SSIM, LPIPS, temporal flicker (masked variants, JSON)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shot", metavar="SHOT", help="shot directory (its aligned crops are the default --gt)")
    parser.add_argument("--pred", required=True, metavar="PATTERN", help="rendered frames, e.g. out/frame.%%04d.png")
    parser.add_argument("--gt", metavar="PATTERN", help="ground truth (default SHOT/aligned/frame.%%04d.png)")
    parser.add_argument("--mask", metavar="PATTERN", help="soft masks; adds *_masked metrics (e.g. SHOT/masks/fg/...)")
    parser.add_argument("--frames", metavar="RANGE", help="frames to score, e.g. 1001-1100 (default: all in --pred)")
    parser.add_argument("--json", metavar="OUT", help="also write the report as JSON")
    parser.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    parser.add_argument("--lpips-backbone", metavar="PATH", help="AlexNet ImageNet weights for LPIPS")
    parser.add_argument("--inception", metavar="PATH", help="Inception weights for FID")
    parser.add_argument("--i3d", metavar="PATH", help="I3D weights for FVD")
    parser.add_argument("--per-frame", action="store_true", help="include per-frame values in the JSON")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _as_mask(rgb):
    return rgb[..., 0]


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from vq_models import metrics as M
    from vq_models.io.atomic import atomic_write_json
    from vq_models.io.sources import open_source

    shot = Path(args.shot)
    gt_pattern = args.gt or str(shot / "aligned" / "frame.%04d.png")
    pred = open_source(args.pred, args.frames)
    gt = open_source(gt_pattern, args.frames)
    mask = open_source(args.mask, args.frames) if args.mask else None
    frames = [f for f in pred.frames if f in set(gt.frames)]
    if not frames:
        raise InputError(f"{args.pred}: no frame in common with the ground truth {gt_pattern}")
    if mask is not None:
        missing = [f for f in frames if f not in set(mask.frames)]
        if missing:
            raise InputError(f"{args.mask}: no mask for frame(s) {', '.join(map(str, missing[:10]))}")
    seq = M.SequenceMetrics(use_lpips=not args.no_lpips, lpips_backbone=args.lpips_backbone)
    for frame in tqdm(frames, desc="eval", unit="frame", disable=args.no_progress):
        p, g = pred.read_network(frame), gt.read_network(frame)
        if p.shape != g.shape:
            raise InputError(f"frame {frame}: prediction is {p.shape[1]}x{p.shape[0]}, "
                             f"ground truth {g.shape[1]}x{g.shape[0]}")
        m = None
        if mask is not None:
            m = _as_mask(mask.read_network(frame))
            if m.shape != p.shape[:2]:
                raise InputError(f"{args.mask}: frame {frame}: mask is {m.shape[1]}x{m.shape[0]}, "
                                 f"images are {p.shape[1]}x{p.shape[0]}")
        seq.add(p, g, m, frame=frame)
    summary = seq.summary()
    summary["fid"] = M.unavailable_fid(args.inception)
    summary["fvd"] = M.unavailable_fvd(args.i3d)
    report = {"pred": args.pred, "gt": gt_pattern, "mask": args.mask, "frames": [frames[0], frames[-1]],
              "space": "display sRGB", **M.json_safe(summary)}
    if args.per_frame:
        report["per_frame"] = M.json_safe(seq.frames)
    print(M.format_table({k: v for k, v in report.items() if k not in ("per_frame",)}))
    if args.json:
        atomic_write_json(args.json, report)
        print(f"vqedit eval: wrote {args.json}")
    json.dumps(report)  # fail here, not in a reader, if anything is not serialisable
    return 0
