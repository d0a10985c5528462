"""eye_open's column rule (the path for shots with no blink to borrow) against real and synthetic closed eyes.

Why: on a shot that blinks, ``eye_open`` borrows a real closed eye (``vq_models/edits/exemplars.py``), so the
blink what-if of such a shot says nothing about the geometric rule that every shot without a blink gets. This
script switches the exemplar path off and scores the rule with its knobs set as asked:

- on trained real shots, the blink what-if (``vq_models.evaluation.plate.blink_whatif``: each blink's open
  frame rendered with ``eye_open 0`` against the real closed frame; the gain in dB over the unedited frame);
- on Stage II acceptance folders (``stage2_acceptance.py --out DIR``), the synthetic eyes-closed what-if.

    .venv/bin/python benchmarks/eye_open_rule.py --shot RUNS/lp_d0/shot --shot RUNS/lp_d13/shot \\
        --acceptance /tmp/s2acc --set LASH_BAND_SHARE=0.25 --set LID_SKIN_ROWS=5

Prints one line per shot, then ``eye_open_rule KNOBS: real +X.XX dB (mean over shots), synthetic Y.YY dB``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KNOBS = ("LID_MARGIN_SHARE", "LID_SKIN_ROWS", "LASH_BAND_SHARE", "LASH_OVER_LID_SHARE")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shot", action="append", default=[], help="a trained real shot that blinks")
    parser.add_argument("--acceptance", action="append", default=[], help="a stage2_acceptance.py --out folder")
    parser.add_argument("--set", dest="knobs", action="append", default=[], metavar="KNOB=VALUE",
                        help=f"one of {', '.join(KNOBS)} (vq_models/edits/ops.py)")
    parser.add_argument("--exemplars", action="store_true", help="keep the exemplar path on (the product default)")
    args = parser.parse_args()
    if not args.shot and not args.acceptance:
        parser.error("give at least one --shot or --acceptance")

    from vq_models.edits import ops
    from vq_models.evaluation import InProcessNode, measure_whatifs, shot_facts
    from vq_models.evaluation.plate import blink_whatif
    from vq_models.runtime import ShotModel

    for item in args.knobs:
        name, _, value = item.partition("=")
        if name not in KNOBS:
            parser.error(f"--set {item}: the knob must be one of {', '.join(KNOBS)}")
        setattr(ops, name, type(getattr(ops, name))(float(value)))
    knobs = " ".join(f"{k}={getattr(ops, k)}" for k in KNOBS)

    def load(path: Path) -> ShotModel:
        model = ShotModel.load(path)
        if not args.exemplars:
            model.exemplars.close = lambda *a, **k: None  # every eye takes the column rule
        return model

    real, synthetic = [], []
    for shot in args.shot:
        report = blink_whatif(load(Path(shot)))
        if report["count"]:
            real.append(report["mean_gain_db"])
        gain = "-" if report["mean_gain_db"] is None else f"+{report['mean_gain_db']:.2f}"
        print(f"{shot}: blink what-if {gain} dB over {report['count']} blink(s) "
              f"{[round(e['gain_db'], 2) for e in report['events']]}", flush=True)
    for folder in map(Path, args.acceptance):
        model = load(folder / "shot")
        row = measure_whatifs(lambda program, m=model: InProcessNode(m, program, 4.0), folder / "synth",
                              shot_facts(model), 12).get("eyes_closed", {})
        synthetic.append(row.get("psnr_edit_db", float("nan")))
        print(f"{folder}: eyes-closed what-if {synthetic[-1]:.2f} dB (plate {row.get('psnr_plate_db', float('nan')):.2f})",
              flush=True)
    fmt = lambda v: f"{np.mean(v):.2f}" if v else "-"  # noqa: E731
    print(f"eye_open_rule {knobs}{' exemplars' if args.exemplars else ''}: real +{fmt(real)} dB, "
          f"synthetic {fmt(synthetic)} dB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
