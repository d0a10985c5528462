"""``vqedit eval``: compare rendered frames with ground truth (MSE, PSNR, SSIM, LPIPS, flicker, FID/FVD)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vq_models.errors import InputError

NAME = "eval"
HELP = ("score renders against ground truth (MSE, PSNR, SSIM, LPIPS, flicker), or a trained shot at plate resolution "
        "(--plate), against its own blinks, half-closed eyes, glances, closed and opening mouths (--blinks, --squint, "
        "--gaze, --mouth, --jaw), and for the teeth teeth 0 leaves (--teeth-left)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shot", metavar="SHOT", help="shot directory (its aligned crops are the default --gt)")
    parser.add_argument("--pred", metavar="PATTERN", help="rendered frames, e.g. out/frame.%%04d.png")
    what = parser.add_argument_group("a trained shot, rendered in process (no --pred)")
    what.add_argument("--plate", action="store_true",
                      help="composites at plate resolution: SSIM and LPIPS in the face, sharpness (render vs plate "
                           "high-frequency energy) in the ROI, flicker of the render region")
    what.add_argument("--blinks", action="store_true",
                      help="eye_open 0 on the open frame before each blink vs the real closed frame (dB gain, SSIM, sharpness)")
    what.add_argument("--squint", action="store_true",
                      help="eye_open at the share each eye's opening falls to within --gap frames (a blink caught half "
                           "way), on the open frame vs the later one (dB gain, SSIM, sharpness)")
    what.add_argument("--gaze", action="store_true",
                      help="gaze by as far as both irises move sideways within --gap frames, on the earlier frame vs "
                           "the later one (dB gain, SSIM, sharpness)")
    what.add_argument("--mouth", action="store_true",
                      help="mouth_open 0 on the open frame before each closed mouth vs the real one (dB gain, SSIM, sharpness)")
    what.add_argument("--jaw", action="store_true",
                      help="mouth_open at the ratio the shot's mouth opens by within --gap frames, on the earlier "
                           "frame vs the later one (dB gain, SSIM, sharpness)")
    what.add_argument("--teeth-left", action="store_true",
                      help="teeth 0 on the shot's most toothy frames: the share of the plate's tooth-bright pixels "
                           "between the inner lips that the composite still shows (0: all gone)")
    what.add_argument("--borrow", action="store_true",
                      help="--gaze / --jaw: the edits take the eye of a frame that looks there, the mouth of a "
                           "frame that opens that wide (the ops' borrow)")
    what.add_argument("--pull", choices=("on", "off"), default=None,
                      help="--squint/--jaw: the edits' pull (the frame's own lid or lower lip, moved; default: the op's)")
    what.add_argument("--edits", metavar="FILE", help="with --plate: an edit program to render (default: none)")
    what.add_argument("--mode", default=None, help="with --plate: identity (default without --edits) | edit-only")
    what.add_argument("--detail", default=None, help="plate | none (default: plate when the plate is readable)")
    what.add_argument("--gap", type=int, default=4, help="the what-ifs: frames between the reference and the event frame")
    what.add_argument("--every", type=int, default=1, help="--plate: score every Nth frame (default 1)")
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
    from vq_models.evaluation.plate import WHATIFS

    shot_flags = ("plate", *WHATIFS, "teeth_left")
    if any(getattr(args, flag) for flag in shot_flags):
        if args.pred:
            raise InputError("--pred scores files against ground truth; --plate and the what-ifs render the shot")
        return _run_shot(args)
    if not args.pred:
        flags = ", ".join("--" + f.replace("_", "-") for f in shot_flags)
        raise InputError(f"--pred PATTERN is required (or {flags} to score the trained shot)")
    return _run_files(args)


def _run_shot(args: argparse.Namespace) -> int:
    from vq_models import metrics as M
    from vq_models.evaluation.plate import (
        BORROWED_WHATIFS,
        PULLED_WHATIFS,
        WHATIFS,
        plate_metrics,
        teeth_left,
    )
    from vq_models.io.atomic import atomic_write_json
    from vq_models.io.sequences import parse_frame_range
    from vq_models.runtime import ShotModel

    model = ShotModel.load(args.shot)
    report: dict = {"shot": str(args.shot)}
    if args.plate:
        frames = parse_frame_range(args.frames) if args.frames else model.frames
        frames = [f for f in frames if f in set(model.frames)][:: max(1, args.every)]
        if not frames:
            raise InputError(f"--frames {args.frames}: none of them is in the shot")
        program = model.parse_program(Path(args.edits)) if args.edits else None
        mode = args.mode or ("edit-only" if program else "identity")
        report["plate"] = plate_metrics(model, frames, program, mode=mode, detail=args.detail, lpips=not args.no_lpips)
        report["plate"]["mode"] = mode
    pull = None if args.pull is None else args.pull == "on"
    for key, whatif in WHATIFS.items():
        if getattr(args, key):
            report[key] = whatif(model, gap=args.gap, detail=args.detail,
                                 **({"pull": pull} if key in PULLED_WHATIFS else {}),
                                 **({"borrow": args.borrow} if key in BORROWED_WHATIFS else {}))
    if args.teeth_left:
        report["teeth_left"] = teeth_left(model, detail=args.detail)
    for key in ("plate", *WHATIFS, "teeth_left"):
        if key in report:
            shown = {k: v for k, v in report[key].items() if k not in ("per_frame", "events", "program")}
            print(f"{key}:\n" + M.format_table(M.json_safe(shown)))
    if args.json:
        atomic_write_json(args.json, M.json_safe(report))
        print(f"vqedit eval: wrote {args.json}")
    return 0


def _run_files(args: argparse.Namespace) -> int:
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
