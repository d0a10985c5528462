"""``vqedit demo [--out DIR] [--quick]``: the whole product end to end on footage it generates itself."""

from __future__ import annotations

import argparse
import sys

NAME = "demo"
HELP = ("run the whole pipeline on a synthetic shot (train, edit through a real render server, write results), "
        "or on a real clip with --clip")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="vqedit_demo", metavar="DIR", help="output folder (default ./vqedit_demo)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: about 2 minutes (used by the tests)")
    parser.add_argument("--retrain", action="store_true", help="train again even if OUT holds matching models")
    parser.add_argument("--device", default="cpu", help="torch device for training (default cpu)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a demo setting, e.g. --set frames=24 (see vq_models/demo/config.py)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--clip", metavar="VIDEO", help="real footage instead of the synthetic shot: prep, train (cpu "
                        "preset), score at plate resolution and against the clip's own blinks, contact sheet")
    parser.add_argument("--frames", metavar="A-B", help="with --clip: the frames to use (default all)")


def run(args: argparse.Namespace) -> int:
    if args.clip:
        return _run_clip(args)
    from vq_models.demo.pipeline import resolve_config, run_demo, summary_table
    from vq_models.demo.steps import DemoStepFailed

    config = resolve_config(args.quick, args.overrides)
    preset = "tiny" if args.quick else "cpu"
    print(f"vqedit demo: preset {preset}, writing to {args.out}", flush=True)
    try:
        result = run_demo(args.out, config, retrain=args.retrain, progress=not args.no_progress, device=args.device,
                          preset_name=preset)
    except DemoStepFailed as exc:
        print(str(exc), file=sys.stderr, flush=True)
        return 1
    print(summary_table(result), flush=True)
    return 0


def _run_clip(args: argparse.Namespace) -> int:
    from vq_models import metrics as M
    from vq_models.demo.real_clip import run_real_demo
    from vq_models.demo.steps import DemoStepFailed

    if args.overrides:
        print("vqedit demo: --set applies to the synthetic demo, not --clip", file=sys.stderr)
        return 2
    preset = "tiny" if args.quick else "cpu"
    print(f"vqedit demo: real clip {args.clip}, {preset} preset, writing to {args.out}", flush=True)
    try:
        result = run_real_demo(args.clip, args.out, frames=args.frames, retrain=args.retrain, device=args.device,
                               preset=preset, size=64 if args.quick else 256, progress=not args.no_progress)
    except DemoStepFailed as exc:
        print(str(exc), file=sys.stderr, flush=True)
        return 1
    rows = {"timings (s)": result["timings_s"],
            "plate SSIM / sharpness (detail)": [result["plate_detail"]["ssim"], result["plate_detail"]["sharpness"]],
            "plate SSIM / sharpness (bare render)": [result["plate_bare"]["ssim"], result["plate_bare"]["sharpness"]],
            "blink what-if gain (dB)": result["blinks"]["mean_gain_db"],
            "blink what-if SSIM / sharpness vs the real closed eye": [result["blinks"].get("mean_ssim_edit"),
                                                                      result["blinks"].get("mean_sharpness")],
            "another real blink in its place (dB)": result["blinks"].get("mean_another_gain_db"),
            "the real closed eye's own labels in its place (dB)": result["blinks"].get("mean_answer_labels_gain_db"),
            "half-closed eye what-if gain (dB)": result["squint"]["mean_gain_db"],
            "glance what-if gain (dB)": result["gaze"]["mean_gain_db"],
            "mouth what-if gain (dB)": result["mouth"]["mean_gain_db"],
            "opening mouth what-if gain (dB)": result["jaw"]["mean_gain_db"],
            "teeth 0: tooth-bright pixels left (mean / worst frame)": [result["teeth_left"]["mean_left"],
                                                                        result["teeth_left"]["max_left"]],
            "teeth 0: tooth-like pixels left (mean / worst frame)": [
                result["teeth_left"].get("mean_tooth_like_left"), result["teeth_left"].get("max_tooth_like_left")],
            "teeth 0: frames showing teeth / left whole": [result["teeth_left"].get("showing_teeth"),
                                                           len(result["teeth_left"].get("untouched", []))],
            "contact sheet": result["sheet"]}
    print(M.format_table(M.json_safe(rows)), flush=True)
    return 0
