"""``vqedit transfer-expression DRIVER --shot SHOT --out PATTERN``: a driver's expression rendered into a shot.

The driver's lower-face expression (relative to its own neutral frame) is retargeted onto the trained target
shot's tracking, re-rendered as the overlay Stage I reads, labelled, rendered by Stage II and composited
edit-only in the lower face (:mod:`vq_models.transfer`). Outputs and flags mirror ``vqedit render``: composites
at PATTERN, ``--passes`` adds the premultiplied RGBA passes in ``rgba/``; ``--server`` renders through a render
server holding both shots (the same pixels). ``--overlays DIR`` writes the transferred overlays and tracking
(what Stage I reads), which needs no trained model: alone, it is all the command does.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from vq_models.errors import InputError

NAME = "transfer-expression"
HELP = (
    "render a driver shot's mouth/jaw expression into a trained shot: composites and RGBA passes like render"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "driver", metavar="DRIVER", help="driver shot directory (from vqedit prep; no training needed)"
    )
    parser.add_argument(
        "--shot", required=True, metavar="SHOT", help="target shot directory (trained: Stage I + II)"
    )
    parser.add_argument(
        "--out",
        metavar="PATTERN",
        help="composite frames, e.g. out/frame.%%04d.exr (the extension picks the format, as render)",
    )
    parser.add_argument("--frames", metavar="A-B", help="target frames (default all)")
    parser.add_argument(
        "--driver-frames",
        metavar="A-B",
        help="driver frames, paired in order with the target frames from the start of each "
        "(default: all the driver's); a shorter driver range holds its last frame (clamped, not looped)",
    )
    parser.add_argument(
        "--strength",
        type=float,
        default=1.0,
        metavar="S",
        help="0 = the shot as it is, 1 = the driver's expression (default), up to 2 exaggerates",
    )
    parser.add_argument(
        "--smoothing",
        type=float,
        default=0.5,
        metavar="FRAMES",
        help="Gaussian sigma (driver frames) smoothing the driver's expression over time (0.5; 0 = none; "
        "in-process only)",
    )
    parser.add_argument(
        "--driver-neutral",
        type=int,
        metavar="FRAME",
        help="the driver's neutral frame (default: chosen: its most typical closed mouth)",
    )
    parser.add_argument(
        "--edits", metavar="FILE", help="edit program JSON applied on top of the transfer (docs/edits.md)"
    )
    parser.add_argument(
        "--passes", action="store_true", help="also write the premultiplied RGBA passes into rgba/"
    )
    parser.add_argument(
        "--feather", type=float, default=8.0, metavar="PX", help="alpha feather in plate pixels (8)"
    )
    parser.add_argument(
        "--mode",
        choices=("identity", "edit-only"),
        default="edit-only",
        help="edit-only (default): only the lower face where labels changed; identity: the whole face",
    )
    parser.add_argument(
        "--plate", metavar="PATTERN_OR_VIDEO", help="plate to composite over (default: shot.json's)"
    )
    parser.add_argument(
        "--detail",
        choices=("plate", "none"),
        default=None,
        help="plate-density detail as in render (in-process only)",
    )
    parser.add_argument(
        "--overlays",
        metavar="DIR",
        help="also write the transferred overlays + tracking.json here "
        "(without --out: only these, no trained model needed)",
    )
    parser.add_argument(
        "--server", metavar="ADDRESS", help="render through a render server holding both shots"
    )
    parser.add_argument(
        "--model", metavar="NAME", help="with --server: the target's name there (default: its folder name)"
    )
    parser.add_argument(
        "--driver-model",
        metavar="NAME",
        help="with --server: the driver's name there (default: its folder name)",
    )
    parser.add_argument(
        "--chunk", type=int, default=8, metavar="N", help="with --server: frames in flight at once (8)"
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, metavar="S", help="with --server: seconds per request"
    )
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (in-process only)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from vq_models.commands.render import _load_program, rgba_pattern, select_frames
    from vq_models.face.expression import RetargetOptions, transfer_expression
    from vq_models.io.sequences import normalize_pattern
    from vq_models.shot import Shot
    from vq_models.transfer import check_strength, driver_frame_map

    if args.out is None and args.overlays is None:
        raise InputError("--out PATTERN (composites) or --overlays DIR (overlays only) is required")
    if args.feather < 0:
        raise InputError(f"--feather {args.feather}: must be ≥ 0 plate pixels")
    if args.smoothing < 0:
        raise InputError(f"--smoothing {args.smoothing}: must be ≥ 0 frames")
    strength = check_strength(args.strength, "--strength")
    shot_dir, driver_dir = Path(args.shot), Path(args.driver)
    shot, driver = Shot.open(shot_dir), Shot.open(driver_dir)
    frames = select_frames(args.frames, shot.frames, f"shot {shot.name!r}")
    driver_frames = select_frames(args.driver_frames, driver.frames, f"driver shot {driver.name!r}")
    if args.driver_neutral is not None and args.driver_neutral not in set(driver.frames):
        raise InputError(
            f"--driver-neutral {args.driver_neutral}: not in driver shot {driver.name!r} "
            f"({driver.frames[0]}-{driver.frames[-1]})"
        )
    pairs = driver_frame_map(frames, driver_frames)
    options = RetargetOptions(smoothing=args.smoothing, driver_neutral=args.driver_neutral)
    t0 = time.perf_counter()
    if args.overlays:
        transfer_expression(
            shot_dir,
            driver_dir,
            args.overlays,
            progress=not args.no_progress,
            strength=strength,
            options=options,
            frame_pairs=list(pairs.items()),
        )
        print(
            f"vqedit transfer-expression: {len(pairs)} transferred overlay(s) + tracking.json -> {args.overlays}"
        )
    if args.out is None:
        return 0
    out_pattern = normalize_pattern(args.out)
    program_data, program = _load_program(args.edits, shot_dir)
    plate = args.plate or shot.plate.get("source")
    if not plate:
        raise InputError(f"{shot_dir / 'shot.json'}: plate.source is empty (pass --plate)")
    colorspace = str(shot.plate.get("colorspace") or "lin_rec709")
    if args.server:
        if args.smoothing != 0.5 or args.detail is not None or args.driver_neutral is not None:
            raise InputError(
                "--smoothing, --driver-neutral and --detail are in-process only (the server uses its "
                "defaults)"
            )
        written = _via_server(
            args, shot_dir, driver_dir, pairs, out_pattern, program_data, strength, plate, colorspace
        )
    else:
        written = _in_process(
            args, shot_dir, driver_dir, pairs, out_pattern, program, strength, options, plate, colorspace
        )
    seconds = time.perf_counter() - t0
    passes = f" + RGBA passes in {Path(rgba_pattern(out_pattern)).parent}" if args.passes else ""
    print(
        f"vqedit transfer-expression: {len(written)} frame(s) of {shot.name} driven by {driver.name} "
        f"(strength {strength:g}, {args.mode}) -> {out_pattern}{passes} in {seconds:.1f}s"
    )
    return 0


def _in_process(
    args: argparse.Namespace,
    shot_dir: Path,
    driver_dir: Path,
    pairs: dict[int, int],
    out_pattern: str,
    program: Any,
    strength: float,
    options: Any,
    plate: str,
    colorspace: str,
) -> list[int]:
    from tqdm import tqdm

    from vq_models.commands.render import rgba_pattern
    from vq_models.frame_render import save_composite
    from vq_models.io.images import write_image
    from vq_models.io.sources import open_source
    from vq_models.runtime import ShotModel
    from vq_models.transfer import DriverShot, ExpressionTransfer

    model = ShotModel.load(shot_dir, device=args.device)
    transfer = ExpressionTransfer(model, DriverShot(driver_dir), options)
    frames = list(pairs)
    source = open_source(plate, frames, colorspace=colorspace)
    written = []
    try:
        for frame in tqdm(frames, desc=f"transfer {model.name}", unit="frame", disable=args.no_progress):
            fr = transfer.render_frame(
                frame,
                pairs[frame],
                strength,
                program,
                feather=args.feather,
                mode=args.mode,
                detail=args.detail,
            )
            save_composite(out_pattern % frame, fr.composite(source.read(frame)))
            if args.passes:
                write_image(rgba_pattern(out_pattern) % frame, fr.rgba_image("lin_rec709"), dtype="half")
            written.append(frame)
    finally:
        source.close()
    return written


def _via_server(
    args: argparse.Namespace,
    shot_dir: Path,
    driver_dir: Path,
    pairs: dict[int, int],
    out_pattern: str,
    program: dict[str, Any] | None,
    strength: float,
    plate: str,
    colorspace: str,
) -> list[int]:
    from host_plugin.farm import render_range
    from vq_models.commands.render import rgba_pattern
    from vq_models.io.sources import open_source

    frames = list(pairs)
    source = open_source(plate, frames, colorspace=colorspace)
    patterns = {"comp": out_pattern}
    if args.passes:
        patterns["render"] = rgba_pattern(out_pattern)
    # the driver frame of each target frame as the host's animated offset knob, stepped: exactly the pairing
    driver = {
        "driver": args.driver_model or driver_dir.resolve().name,
        "driver_strength": strength,
        "driver_frame_offset": {"keys": [[f, d - f] for f, d in pairs.items()], "interp": "step"},
    }
    try:
        report = render_range(
            args.server,
            args.model or shot_dir.resolve().name,
            frames,
            out_pattern,
            program=program,
            feather=args.feather,
            mode=args.mode,
            chunk=args.chunk,
            passes=tuple(patterns),
            plate_source=source,
            timeout=args.timeout,
            progress=not args.no_progress,
            patterns=patterns,
            driver=driver,
        )
    finally:
        source.close()
    return report.frames
