"""``vqedit labels SHOT --out DIR``: Stage I label maps in plate space, one PNG per plate frame."""

from __future__ import annotations

import argparse

NAME = "labels"
HELP = "write the Stage I label maps in plate space (uint8 code per pixel, 255 outside the face crop)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shot", metavar="SHOT", help="shot directory with a trained stage1/")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder for frame.%%04d.png")
    parser.add_argument("--frames", default=None, help="frame range, e.g. 1001-1010 (default: every shot frame)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from vq_models.errors import InputError
    from vq_models.io.images import write_label_map
    from vq_models.shot import Shot
    from vq_models.stage1_model import Stage1Model, labels_to_plate, plate_size_of

    shot = Shot.open(args.shot)
    model = Stage1Model.load(shot.stage1_dir, load_networks=False)
    plate_size = plate_size_of(shot.meta, str(shot.meta_path))
    frames = shot.frames
    if args.frames:
        from vq_models.io.sequences import parse_frame_range

        wanted = set(parse_frame_range(args.frames))
        missing = sorted(wanted - set(frames))
        if missing:
            raise InputError(f"--frames {args.frames}: frames {missing[:5]} are not in the shot")
        frames = [f for f in frames if f in wanted]
    out = Path(args.out)
    for frame in tqdm(frames, desc="labels", disable=len(frames) < 10):
        plate = labels_to_plate(model.label_map(frame), shot.transform(frame).plate_to_crop, shot.crop_size,
                                plate_size)
        write_label_map(out / f"frame.{frame:04d}.png", plate)
    print(f"vqedit labels: wrote {len(frames)} plate-space label maps ({plate_size[0]}x{plate_size[1]}, "
          f"{model.num_codes} codes, 255 outside the crop) to {out}")
    return 0
