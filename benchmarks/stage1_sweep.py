"""Stage I knob sweep on one prepared synthetic shot: train once per config, then re-run only the codebook's
whole-shot Lloyd refinement for several ROI weights and score each against the ground-truth parts.

Why: the issue's IoU bar depends on two kinds of knobs. Network knobs (encoder noise maps, widths, steps)
need a training run each; the ROI weight of the final Lloyd passes only changes the codebook, so one
trained network serves every weight, which makes a sweep several times cheaper (on a lent GPU, or
overnight on CPU). Prints one JSON line per (config, ROI weight) and the best per-part table.

    .venv/bin/python benchmarks/stage1_sweep.py --work /tmp/s1acc --name base --roi-weights 1,4,10
    .venv/bin/python benchmarks/stage1_sweep.py --work /tmp/s1acc --name noise --set encoder_noise_maps=true

``--work`` must hold ``synth/`` and ``shot/`` as benchmarks/stage1_acceptance.py leaves them (it builds
them when missing, with the same defaults). The trained model goes to ``WORK/runs/NAME`` (a copy of the
shot), so runs do not overwrite each other or the acceptance run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

REQUIRED = ("pupils", "irises", "eye_whites", "upper_teeth", "lower_teeth", "upper_lip", "lower_lip",
            "mouth_interior")


def _prepare(work: Path, frames: int, plate: int, crop: int) -> tuple[Path, Path]:
    from vq_models.cli import main as cli
    from vq_models.shot import ShotLayout

    synth, shot = work / "synth", work / "shot"
    if not (synth / "parts.json").is_file():
        assert cli(["synth", str(synth), "--frames", str(frames), "--size", str(plate), "--no-progress"]) == 0
    if not ShotLayout(shot).meta_path.is_file():
        assert cli(["prep", str(synth / "plate" / "frame.%04d.exr"), "--tracking", str(synth / "tracking.json"),
                    "--out", str(shot), "--size", str(crop)]) == 0
    return synth, shot


def _copy_shot(shot: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(shot, dst, ignore=shutil.ignore_patterns("stage1", "stage2"))
    return dst


def score(run_shot: Path, synth: Path, roi_weights: list[float], device: str) -> list[dict]:
    """For each ROI weight: fresh Lloyd passes from the trained codebook, label every frame, IoU per part."""
    import numpy as np
    import torch

    from vq_models.config import apply_mapping, read_config_file
    from vq_models.io.images import read_label_map
    from vq_models.quantizer import VectorQuantizer
    from vq_models.segmentation_eval import confusion, load_parts, match_codes, part_ious
    from vq_models.shot import Shot
    from vq_models.stage1_model import Stage1Model, plate_labels_to_crop
    from vq_models.train.codebook import foreground_features, label_frames, lloyd_refine
    from vq_models.train.stage1_config import Stage1Config
    from vq_models.train.stage1_data import ShotFrames

    shot = Shot.open(run_shot)
    model = Stage1Model.load(shot.stage1_dir, device)
    config = apply_mapping(Stage1Config(), read_config_file(shot.stage1_dir / "config.yaml"))
    net, dev = model.net, torch.device(device)
    data = ShotFrames(shot, config.input_size)
    names = load_parts(synth / "parts.json")
    num_parts = max(names) + 1
    gts = {f: plate_labels_to_crop(read_label_map(synth / "labels" / f"frame.{f:04d}.png"),
                                   shot.transform(f).plate_to_crop, shot.crop_size, model.label_size)
           for f in shot.frames}
    out = []
    for w in roi_weights:
        t = time.monotonic()
        cfg = dataclasses.replace(config, vq_refine_roi_weight=w)
        vq = VectorQuantizer(num_codes=config.num_codes, dim=model.quantizer.dim,
                             dead_code_threshold=config.dead_code_threshold).to(dev)
        vq.load_state_dict(model.quantizer.state_dict())
        if config.vq_refine_lloyd > 0:
            points = foreground_features(net, data, cfg, dev)
            lloyd_refine(vq, points, config)
        conf = np.zeros((config.num_codes, num_parts), np.int64)
        for idx, codes, _, _ in label_frames(net, vq, data, cfg, dev):
            for k, i in enumerate(idx):
                conf += confusion(codes[k].numpy(), gts[data.frames[i]], config.num_codes, num_parts)
        ious = part_ious(conf, match_codes(conf))
        named = {names[p]: round(v, 4) for p, v in ious.items()}
        req = [named.get(n, 0.0) for n in REQUIRED]
        out.append({"roi_weight": w, "min_required": round(min(req), 4), "mean_required": round(sum(req) / len(req), 4),
                    "iou": named, "seconds": round(time.monotonic() - t, 1)})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/stage1_acceptance")
    parser.add_argument("--name", default=None, help="run name (WORK/runs/NAME); required unless --prepare-only")
    parser.add_argument("--prepare-only", action="store_true", help="only build WORK/synth and WORK/shot")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--roi-weights", default="1,4,10")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--plate-size", type=int, default=256)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--score-only", action="store_true", help="reuse WORK/runs/NAME's trained model")
    parser.add_argument("--json", default=None, help="append the result lines to this file")
    args = parser.parse_args()

    import torch

    from vq_models.config import load_config
    from vq_models.train.stage1 import STAGE1_PRESETS, train_stage1

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    synth, shot = _prepare(work, args.frames, args.plate_size, args.crop)
    if args.prepare_only:
        return 0
    if not args.name:
        parser.error("--name is required")
    run_shot = work / "runs" / args.name
    train_s = None
    if not args.score_only:
        _copy_shot(shot, run_shot)
        config = load_config(STAGE1_PRESETS, args.preset, overrides=args.overrides)
        t = time.monotonic()
        train_stage1(run_shot, config, device=args.device)
        train_s = round(time.monotonic() - t, 1)
    rows = score(run_shot, synth, [float(w) for w in args.roi_weights.split(",")], args.device)
    lines = []
    for row in rows:
        row = {"name": args.name, "device": args.device, "overrides": args.overrides, "stage1_seconds": train_s, **row}
        lines.append(json.dumps(row))
        print(lines[-1], flush=True)
    if args.json:
        with open(args.json, "a") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
