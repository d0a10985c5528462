"""``vqedit synth``: write a synthetic talking-face shot with ground-truth labels, tracking and what-ifs."""

from __future__ import annotations

import argparse

from vq_models.errors import InputError

NAME = "synth"
HELP = "write a procedurally drawn talking-face shot with ground-truth labels, tracking and what-if frames"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "out", metavar="OUT", help="output folder (plate/, labels/, whatif/, tracking.json ...)"
    )
    parser.add_argument("--frames", type=int, default=120, help="number of frames (default 120)")
    parser.add_argument("--size", type=int, default=256, help="square frame size in pixels (default 256)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed: same seed, bit-identical files (default 0)"
    )
    parser.add_argument("--start", type=int, default=1001, help="first frame number (default 1001)")
    parser.add_argument("--supersample", type=int, default=2, help="antialiasing factor per axis (default 2)")
    parser.add_argument(
        "--mouth", metavar="OPENING|FRAME:OPENING,...",
        help="a known mouth opening (0 closed - 1 wide) instead of talking: one number held over the shot, or "
        "keys frame:opening, linear between and held beyond (e.g. 1001:0,1008:1)",
    )
    parser.add_argument(
        "--vary", action="store_true",
        help="the seed also draws the face's proportions (eye, iris and pupil size, mouth, lips, teeth, jaw), "
        "skin tone and lighting: faces a method was not tuned on (default off: the original face)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def mouth_curve(spec: str, frames: list[int]) -> list[float]:
    """``--mouth`` text → one opening per frame (a constant, or linear keys held beyond the first/last)."""
    import numpy as np

    text = spec.strip()
    try:
        if ":" not in text:
            values = [float(text)] * len(frames)
        else:
            keys = sorted((int(k), float(v)) for k, v in (item.split(":") for item in text.split(",") if item.strip()))
            values = np.interp(frames, [k for k, _ in keys], [v for _, v in keys]).tolist()
    except ValueError:
        raise InputError(f"--mouth {spec}: expected a number or frame:opening keys, e.g. 1001:0,1008:1") from None
    if not all(0.0 <= v <= 1.0 for v in values):
        raise InputError(f"--mouth {spec}: openings must be within 0-1")
    return values


def run(args: argparse.Namespace) -> int:
    if args.frames < 1:
        raise InputError(f"--frames {args.frames}: need at least 1 frame")
    if not 32 <= args.size <= 4096:
        raise InputError(f"--size {args.size}: choose a size between 32 and 4096 pixels")
    if args.start < 0:
        raise InputError(f"--start {args.start}: frame numbers must not be negative")
    if not 1 <= args.supersample <= 8:
        raise InputError(f"--supersample {args.supersample}: choose 1 to 8")
    from vq_models.synth.writer import write_synth_shot

    frames = [args.start + i for i in range(args.frames)]
    mouth = mouth_curve(args.mouth, frames) if args.mouth is not None else None
    result = write_synth_shot(
        args.out,
        args.frames,
        args.size,
        args.seed,
        args.start,
        args.supersample,
        progress=not args.no_progress,
        mouth=mouth,
        vary=args.vary,
    )
    print(
        f"vqedit synth: wrote {len(result.frames)} frames ({result.frames[0]}-{result.frames[-1]}) at "
        f"{result.size}x{result.size} to {result.out} in {result.seconds:.1f} s ({result.fps:.1f} frames/s)"
    )
    return 0
