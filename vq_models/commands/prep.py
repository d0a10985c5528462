"""`vqedit prep PLATE --out SHOT`: track, align, mask and overlay a plate into a shot directory."""

from __future__ import annotations

import argparse

from vq_models.errors import InputError

NAME = "prep"
HELP = "turn a plate (image sequence or video) into a shot directory: aligned crops, masks, overlay, transforms"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plate", help="plate: sequence pattern (plate.%%04d.exr), video file or single image")
    parser.add_argument("--out", required=True, help="shot directory to write")
    parser.add_argument("--tracking", help="external tracking file (docs/tracking.md); wins over the built-in tracker")
    parser.add_argument("--frames", help="frame range, e.g. 1001-1100 (default: all)")
    parser.add_argument("--face", type=int, default=0, help="which face, numbered from 0 left to right (default 0)")
    parser.add_argument("--pick", help="X,Y plate pixel on the face to track (instead of --face)")
    parser.add_argument("--size", type=int, help="crop size in pixels (default: the preset's, 256 for cpu)")
    parser.add_argument("--preset", default="cpu", help="tiny | cpu | paper (default cpu)")
    parser.add_argument("--config", help="YAML/TOML file with PrepConfig fields")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    parser.add_argument("--max-gap", type=int, help="longest run of lost frames to bridge by interpolation")
    parser.add_argument("--colorspace", help="override the plate's colour space")
    parser.add_argument("--preview", action="store_true", help="also write SHOT/preview.png (contact sheet)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars (farm logs)")


def _parse_pick(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--pick {text!r}: expected X,Y plate pixels, e.g. 812,430") from None
    return x, y


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from vq_models.config import load_config
    from vq_models.face.prep import PRESETS, run_prep

    config = load_config(PRESETS, args.preset, args.config, args.set)
    if args.size is not None:
        config = dataclasses.replace(config, crop_size=args.size)
    if args.max_gap is not None:
        config = dataclasses.replace(config, max_gap=args.max_gap)
    result = run_prep(
        args.plate, args.out, config=config, tracking_path=args.tracking, frames=args.frames,
        face_index=args.face, pick=_parse_pick(args.pick), preview=args.preview, colorspace=args.colorspace,
        progress=not args.no_progress,
    )
    shot = result.shot
    print(f"{shot.root}: {len(shot.frames)} frames at {shot.crop_size}px, eye jitter {result.eye_std_pct:.2f}% "
          f"of the crop" + (f", bridged lost frames {result.bridged}" if result.bridged else ""))
    return 0
