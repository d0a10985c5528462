"""``vqedit train SHOT --stage 1|2``: train the shot's Stage I prior or Stage II renderer."""

from __future__ import annotations

import argparse
from pathlib import Path

from vq_models.errors import InputError

NAME = "train"
HELP = "train Stage I (StyleGAN inversion + VQ segmentation prior) or Stage II (SPADE renderer) on a shot"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shot", metavar="SHOT", help="shot directory written by `vqedit prep`")
    parser.add_argument("--stage", type=int, choices=(1, 2), required=True, help="1: segmentation prior, 2: renderer")
    parser.add_argument("--preset", default="cpu", help="tiny | cpu | paper (default cpu)")
    parser.add_argument("--iters", type=int, default=None, help="training steps (overrides the preset)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    parser.add_argument("--config", default=None, metavar="FILE", help="YAML/TOML file applied over the preset")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config field (repeatable), e.g. --set num_codes=64")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    parser.add_argument("--stylegan", default=None, metavar="PATH",
                        help="Stage 1: pretrained StyleGAN2 checkpoint (rosinality layout); frozen during training")
    parser.add_argument("--e4e", default=None, metavar="PATH", help="Stage 1: pretrained e4e encoder to fine-tune")
    parser.add_argument("--prior", default=None, metavar="prior.json", help="Stage 2: artist prior file")
    parser.add_argument("--no-progress", action="store_true",
                        help="hide the progress bar (farm logs; the scalars still go to TensorBoard)")


def _check_file(path: str | None, flag: str) -> None:
    if path is not None and not Path(path).is_file():
        raise InputError(f"{flag} {path}: file not found")


def _overrides(args: argparse.Namespace) -> list[str]:
    """--set pairs, then --iters (both trainers call the knob ``iterations``)."""
    return list(args.overrides) + ([f"iterations={args.iters}"] if args.iters is not None else [])


def run(args: argparse.Namespace) -> int:
    from vq_models.config import load_config

    if args.iters is not None and args.iters < 1:
        raise InputError(f"--iters {args.iters}: must be at least 1")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InputError(f"--device {args.device}: CUDA is not available on this machine")
    if args.stage == 1:
        if args.prior is not None:
            raise InputError("--prior: only used by --stage 2")
        _check_file(args.stylegan, "--stylegan")
        _check_file(args.e4e, "--e4e")
        from vq_models.train.stage1 import STAGE1_PRESETS, train_stage1

        overrides = _overrides(args)
        config = load_config(STAGE1_PRESETS, args.preset, args.config, overrides)
        out = train_stage1(args.shot, config, device=args.device, resume=args.resume,
                           stylegan=args.stylegan, e4e=args.e4e, progress=not args.no_progress)
    else:
        if args.stylegan or args.e4e:
            raise InputError("--stylegan/--e4e: only used by --stage 1")
        _check_file(args.prior, "--prior")
        from vq_models.train.stage2 import STAGE2_PRESETS, train_stage2

        overrides = _overrides(args)
        config = load_config(STAGE2_PRESETS, args.preset, args.config, overrides)
        out = train_stage2(args.shot, config, device=args.device, resume=args.resume, prior_path=args.prior,
                           progress=not args.no_progress)
    print(f"vqedit train: stage {args.stage} written to {out}")
    return 0
