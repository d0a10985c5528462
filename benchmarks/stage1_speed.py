"""Stage I speed: training steps/s and per-frame labelling time for a preset, on a drawn shot.

Why: the cpu preset must fit a 2-core machine and the paper preset a GPU; this tells which budget a
preset really needs before a long run. Prints one JSON line (and writes it with --json).

    .venv/bin/python benchmarks/stage1_speed.py --preset tiny --steps 10
    .venv/bin/python benchmarks/stage1_speed.py --preset cpu --device cuda --steps 50
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _random_paper_weights(folder: Path) -> dict[str, Path]:
    """Random-valued stand-ins for stylegan2-ffhq-config-f.pt and e4e_ffhq_encode.pt (same keys and shapes):
    speed does not depend on the values, and the real files are not available here."""
    from vq_models.nets.e4e import Encoder4Editing
    from vq_models.nets.stylegan2 import Generator

    torch.manual_seed(0)
    g = Generator(1024)
    with torch.no_grad():
        avg = g.mean_latent(4096)
    stylegan = folder / "stylegan2-random-config-f.pt"
    torch.save({"g_ema": g.state_dict(), "latent_avg": avg[0]}, stylegan)
    enc = Encoder4Editing(1024)
    state = {**{f"encoder.{k}": v for k, v in enc.state_dict().items()},
             **{f"decoder.{k}": v for k, v in g.state_dict().items()}}
    e4e = folder / "e4e-random.pt"
    torch.save({"state_dict": state, "opts": {"stylegan_size": 1024}, "latent_avg": avg.expand(18, -1).clone()}, e4e)
    return {"stylegan": stylegan, "e4e": e4e}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128, help="crop size of the drawn shot")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--json", default=None)
    parser.add_argument("--paper-random-weights", action="store_true",
                        help="time paper mode: write random full-size config-f StyleGAN2 (1024) and e4e checkpoints "
                             "in the published key layouts and train with --stylegan/--e4e on them")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from stage1_shot import draw_frame, make_shot

    from vq_models.config import load_config
    from vq_models.stage1_model import Stage1Model
    from vq_models.train.stage1 import STAGE1_PRESETS, train_stage1

    with tempfile.TemporaryDirectory() as tmp:
        shot = make_shot(Path(tmp) / "shot", frames=tuple(range(1, args.frames + 1)), size=args.crop)
        config = load_config(STAGE1_PRESETS, args.preset, overrides=[f"iterations={args.steps}",
                                                                      f"checkpoint_every={args.steps}",
                                                                      *args.overrides])
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        weights = _random_paper_weights(Path(tmp)) if args.paper_random_weights else {}
        t = time.monotonic()
        out = train_stage1(shot.root, config, device=args.device, **weights)
        total = time.monotonic() - t
        meta = json.loads((out / "meta.json").read_text())
        model = Stage1Model.load(out, device=args.device)
        d = draw_frame(0, args.crop)
        model.labels_from_image(d["overlay"], d["fg"], d["roi"])  # warm-up
        t = time.monotonic()
        n = 5
        for _ in range(n):
            model.labels_from_image(d["overlay"], d["fg"], d["roi"])
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        label_ms = (time.monotonic() - t) / n * 1000
    result = {
        "preset": args.preset, "device": args.device, "backbone": meta.get("backbone", meta.get("prior")), "threads": args.threads, "steps": args.steps,
        "batch_size": config.batch_size, "input_size": config.input_size, "label_size": config.label_size,
        "num_codes": config.num_codes, "code_dim": meta["code_dim"],
        "train_steps_per_s": round(args.steps / max(1e-9, meta["timings"]["train_seconds"]), 3),
        "run_seconds": round(total, 2), "label_ms_per_frame": round(label_ms, 2),
        "perplexity": round(meta["label_perplexity"], 2), "codes_used": meta["codes_used"],
        "peak_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1) if args.device.startswith("cuda")
        else round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
    }
    line = json.dumps(result)
    print(line)
    if args.json:
        Path(args.json).write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
