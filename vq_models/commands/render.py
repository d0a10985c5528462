"""``vqedit render``: labels → edits → Stage II → paste-back → the composite over the plate, per frame.

Two paths give the same pixels: in-process (this process loads the shot model) and ``--server``, where
:func:`host_plugin.farm.render_range` drives the same ``EditNode`` a Nuke artist uses against a running
render server, so a farm render can be checked against a local one frame for frame.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from vq_models.errors import InputError

NAME = "render"
HELP = "render a shot (optionally with an edit program) back into its plate: composite frames and RGBA passes"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shot", metavar="SHOT", help="trained shot directory (Stage I + Stage II)")
    parser.add_argument("--out", required=True, metavar="PATTERN",
                        help="composite frames, e.g. out/frame.%%04d.exr (the extension picks the format: EXR is "
                        "scene-linear, PNG/JPEG/TIFF the display encoding)")
    parser.add_argument("--edits", metavar="FILE", help="edit program JSON (docs/edits.md); none: identity render")
    parser.add_argument("--frames", metavar="A-B", help="frames to render, e.g. 1001-1010 or 1001,1005 (default all)")
    parser.add_argument("--passes", action="store_true",
                        help="also write the premultiplied RGBA render as EXR into rgba/ beside the composites")
    parser.add_argument("--feather", type=float, default=8.0, metavar="PX", help="alpha feather in plate pixels (8)")
    parser.add_argument("--mode", choices=("identity", "edit-only"),
                        help="identity: replace the whole face; edit-only: only where edits changed labels "
                        "(default: edit-only with --edits, identity without)")
    parser.add_argument("--plate", metavar="PATTERN_OR_VIDEO", help="plate to composite over (default: shot.json's)")
    parser.add_argument("--detail", choices=("plate", "none"), default=None,
                        help="plate: keep the plate's pixel density (the plate's detail above the render's pixel "
                        "size, a donor frame's where labels changed); none: the render as Stage II drew it "
                        "(default: plate when the shot's plate source is readable; in-process only)")
    parser.add_argument("--server", metavar="ADDRESS", help="render through a render server, e.g. tcp://host:5555")
    parser.add_argument("--model", metavar="NAME", help="with --server: the model's name there (default: SHOT's folder name)")
    parser.add_argument("--chunk", type=int, default=8, metavar="N", help="with --server: frames in flight at once (8)")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="S", help="with --server: seconds per request")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (in-process only)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def rgba_pattern(out_pattern: str) -> str:
    """``out/frame.%04d.png`` → ``out/rgba/frame.%04d.exr``: the RGBA pass sits beside the composites."""
    path = Path(out_pattern)
    return str(path.parent / "rgba" / (path.stem + ".exr"))


def select_frames(spec: str | None, available: list[int], where: str) -> list[int]:
    """Frames asked for (all when ``spec`` is None); every one must be in the shot."""
    from vq_models.io.sequences import format_frame_list, parse_frame_range

    if spec is None:
        return list(available)
    frames = parse_frame_range(spec)
    missing = sorted(set(frames) - set(available))
    if missing:
        raise InputError(f"--frames {spec}: {format_frame_list(missing)} not in {where} "
                         f"({format_frame_list(available)})")
    return frames


def _load_program(path: str | None, shot_dir: Path) -> tuple[dict[str, Any] | None, Any]:
    """(program as JSON data for the server, parsed program for in-process); errors name the JSON path."""
    if path is None:
        return None, None
    import json

    from vq_models.edits.prior import load_prior
    from vq_models.edits.program import parse_program
    from vq_models.shot import ShotLayout

    file = Path(path)
    if not file.is_file():
        raise InputError(f"--edits {path}: file not found")
    prior_path = ShotLayout(shot_dir).prior_path
    prior = load_prior(prior_path) if prior_path.is_file() else None
    parsed = parse_program(file, prior)  # reads the file; errors name it and the JSON path
    data = json.loads(file.read_text())
    return data, parsed


def run(args: argparse.Namespace) -> int:
    from vq_models.io.sequences import normalize_pattern
    from vq_models.shot import Shot

    shot_dir = Path(args.shot)
    shot = Shot.open(shot_dir)
    out_pattern = normalize_pattern(args.out)
    if args.feather < 0:
        raise InputError(f"--feather {args.feather}: must be ≥ 0 plate pixels")
    frames = select_frames(args.frames, shot.frames, f"shot {shot.name!r}")
    program_data, program = _load_program(args.edits, shot_dir)
    mode = args.mode or ("edit-only" if program is not None else "identity")
    plate = args.plate or shot.plate.get("source")
    if not plate:
        raise InputError(f"{shot_dir / 'shot.json'}: plate.source is empty (pass --plate)")
    colorspace = str(shot.plate.get("colorspace") or "lin_rec709")
    t0 = time.perf_counter()
    if args.server:
        written = _render_via_server(args, shot_dir, frames, out_pattern, program_data, mode, plate, colorspace)
    else:
        written = _render_in_process(args, shot_dir, frames, out_pattern, program, mode, plate, colorspace)
    seconds = time.perf_counter() - t0
    passes = f" + RGBA passes in {Path(rgba_pattern(out_pattern)).parent}" if args.passes else ""
    print(f"vqedit render: {len(written)} frame(s) ({mode}) -> {out_pattern}{passes} in {seconds:.1f}s "
          f"({1e3 * seconds / max(1, len(written)):.0f} ms/frame)")
    return 0


def _render_in_process(args: argparse.Namespace, shot_dir: Path, frames: list[int], out_pattern: str,
                       program: Any, mode: str, plate: str, colorspace: str) -> list[int]:
    from tqdm import tqdm

    from vq_models.frame_render import save_composite
    from vq_models.io.background import BackgroundWrites
    from vq_models.io.images import write_image
    from vq_models.io.sources import open_source
    from vq_models.runtime import ShotModel

    model = ShotModel.load(shot_dir, device=args.device)
    source = open_source(plate, frames, colorspace=colorspace)
    written = []
    try:
        with BackgroundWrites() as writes:  # frame N is encoded while frame N+1 renders
            for frame in tqdm(frames, desc=f"render {model.name}", unit="frame", disable=args.no_progress):
                image = source.read(frame)
                if args.detail != "none":  # the frame just read is the detail pass's too, when it is the shot's plate
                    model.detail.plates.offer(frame, image, plate)
                fr = model.render_frame(frame, program, feather=args.feather, mode=mode, detail=args.detail)
                writes.submit(save_composite, out_pattern % frame, fr.composite(image))
                if args.passes:
                    writes.submit(write_image, rgba_pattern(out_pattern) % frame, fr.rgba_image("lin_rec709"), dtype="half")
                written.append(frame)
    finally:
        source.close()
    return written


def _render_via_server(args: argparse.Namespace, shot_dir: Path, frames: list[int], out_pattern: str,
                       program: dict[str, Any] | None, mode: str, plate: str, colorspace: str) -> list[int]:
    from host_plugin.farm import render_range
    from vq_models.io.sources import open_source

    source = open_source(plate, frames, colorspace=colorspace)
    patterns = {"comp": out_pattern}
    if args.passes:
        patterns["render"] = rgba_pattern(out_pattern)
    try:
        report = render_range(args.server, args.model or shot_dir.resolve().name, frames, out_pattern,
                              program=program, feather=args.feather, mode=mode, chunk=args.chunk,
                              passes=tuple(patterns), plate_source=source, timeout=args.timeout,
                              progress=not args.no_progress, patterns=patterns)
    finally:
        source.close()
    return report.frames

