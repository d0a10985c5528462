"""``vqedit prior``: propose, check or show a shot's artist prior (SHOT/prior.json)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vq_models.errors import InputError

NAME = "prior"
HELP = "propose (--auto), validate (--check) or print (--show) the shot's artist prior of named code segments"

def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shot", metavar="SHOT", help="prepared shot directory (Stage I trained)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--auto", action="store_true", help="propose a prior from Stage I labels + tracking")
    mode.add_argument("--check", action="store_true", help="validate the prior (and its codes against Stage I)")
    mode.add_argument("--show", action="store_true", help="print the prior")
    parser.add_argument("--prior", metavar="PATH", help="prior file (default SHOT/prior.json)")
    parser.add_argument("--force", action="store_true", help="with --auto: overwrite an existing prior")
    parser.add_argument("--step", type=int, default=1, help="with --auto: use every STEP-th frame (default 1)")


def _num_codes(shot_dir: Path) -> int | None:
    """K of the shot's Stage I model, or None when Stage I is not trained."""
    from vq_models.shot import ShotLayout

    meta = ShotLayout(shot_dir).stage1_meta_path
    if not meta.is_file():
        return None
    try:
        return int(json.loads(meta.read_text())["num_codes"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise InputError(f"{meta}: no readable num_codes (retrain Stage I?)") from None


def _auto(shot_dir: Path, out: Path, step: int, force: bool) -> int:
    import cv2

    from vq_models.edits.prior import propose_prior, rasterize_regions, save_prior
    from vq_models.io.images import read_label_map
    from vq_models.shot import Shot
    from vq_models.tracking.schema import load_tracking

    if out.exists() and not force:
        raise InputError(f"{out}: already exists (hand edits would be lost; use --force to replace it)")
    if step < 1:
        raise InputError(f"--step {step}: must be at least 1")
    shot = Shot.open(shot_dir)
    num_codes = _num_codes(shot_dir)
    if num_codes is None:
        raise InputError(f"{shot.stage1_meta_path}: missing (train Stage I before proposing a prior)")
    tracking = load_tracking(shot.tracking_path)
    labels, images, regions, used = [], [], [], []
    for frame in shot.frames[::step]:
        path = shot.label_path(frame)
        track = tracking.frames.get(frame)
        if not path.is_file() or track is None or not track.contours:
            continue
        lab = read_label_map(path)
        size = lab.shape[0]
        img = cv2.resize(shot.aligned(frame), (size, size), interpolation=cv2.INTER_AREA)
        labels.append(lab)
        images.append(img)
        regions.append(rasterize_regions(track.contours, shot.transform(frame), shot.crop_size, size))
        used.append(frame)
    if not used:
        raise InputError(f"{shot_dir}: no frame has both Stage I labels and tracked contours")
    prior = propose_prior(labels, images, regions, num_codes)
    save_prior(prior, out)
    preview = out.with_name(out.stem + "_preview.png")
    _write_preview(preview, labels[len(labels) // 2], images[len(images) // 2], prior)
    print(f"vqedit prior: proposed {len(prior.segments)} segments from {len(used)} frames -> {out}")
    for name, codes in prior.segments.items():
        print(f"  {name:15s} {codes}")
    print(f"  exemplar frame with segments: {preview}")
    return 0


def _write_preview(path: Path, labels, image, prior) -> None:
    """Exemplar-frame visualisation (paper Fig. 4): the frame | segments coloured over it."""
    import numpy as np

    from vq_models.io.images import write_image

    rng = np.random.default_rng(7)
    colours = rng.random((len(prior.segments), 3)).astype(np.float32)
    over = image * 0.35
    for i, name in enumerate(prior.segments):
        m = prior.mask(labels, name)
        over[m] = image[m] * 0.35 + colours[i] * 0.65
    write_image(path, np.clip(np.concatenate([image, over], axis=1), 0, 1), dtype="uint8")


def run(args: argparse.Namespace) -> int:
    from vq_models.edits.prior import STANDARD_SEGMENTS, load_prior
    from vq_models.shot import ShotLayout

    shot_dir = Path(args.shot)
    path = Path(args.prior) if args.prior else ShotLayout(shot_dir).prior_path
    if args.auto:
        return _auto(shot_dir, path, args.step, args.force)
    prior = load_prior(path)
    if args.check:
        k = _num_codes(shot_dir)
        if k is not None and k != prior.num_codes:
            raise InputError(f"{path}: num_codes: {prior.num_codes}, but the shot's Stage I model has {k} codes")
        custom = [s for s in prior.segments if s not in STANDARD_SEGMENTS]
        codes = sum(len(c) for c in prior.segments.values())
        note = f"; custom segments: {', '.join(custom)}" if custom else ""
        print(f"{path}: ok ({len(prior.segments)} segments, {codes} of {prior.num_codes} codes assigned{note})")
        return 0
    print(json.dumps(prior.to_json(), indent=2))
    return 0
