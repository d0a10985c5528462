"""``vqedit exemplar SHOT``: the artist's guide PNG — each code's region tinted and numbered, plus a legend."""

from __future__ import annotations

import argparse

NAME = "exemplar"
HELP = "write a PNG of one frame with every Stage I code's region coloured and numbered (the artist's guide)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shot", metavar="SHOT", help="shot directory with a trained stage1/")
    parser.add_argument("--frame", type=int, default=None, help="frame to show (default: the middle frame)")
    parser.add_argument("--out", default=None, metavar="PNG", help="output PNG (default SHOT/stage1/exemplar.png)")
    parser.add_argument("--size", type=int, default=512, help="image panel size in pixels (default 512)")
    parser.add_argument("--no-details", action="store_true",
                        help="leave out the zoomed eye and mouth insets (found from the shot's ROI mask)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vq_models.errors import InputError
    from vq_models.exemplar import detail_boxes, render_exemplar
    from vq_models.io.images import write_image
    from vq_models.shot import Shot
    from vq_models.stage1_model import Stage1Model

    shot = Shot.open(args.shot)
    model = Stage1Model.load(shot.stage1_dir, load_networks=False)
    frames = shot.frames
    frame = frames[len(frames) // 2] if args.frame is None else args.frame
    if frame not in frames:
        raise InputError(f"--frame {frame}: not in the shot ({frames[0]}-{frames[-1]})")
    if not 64 <= args.size <= 4096:
        raise InputError(f"--size {args.size}: choose 64 to 4096 pixels")
    out = Path(args.out) if args.out else shot.stage1_dir / "exemplar.png"
    if out.suffix.lower() != ".png":
        raise InputError(f"--out {out}: the exemplar is written as a .png")
    labels = model.label_map(frame)
    details = None if args.no_details else detail_boxes(shot.roi_mask(frame), labels.shape[0])
    image = render_exemplar(shot.aligned(frame), labels, model.num_codes, panel_size=args.size, details=details,
                            title=f"{shot.name}  frame {frame}  K={model.num_codes}")
    write_image(out, image, dtype="uint8")
    print(f"vqedit exemplar: frame {frame} with {model.num_codes} codes written to {out}")
    return 0
