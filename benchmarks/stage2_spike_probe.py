"""Stage II loss-spike probe: replay a stretch of a finished run from one of its checkpoints and record, per
step, the G loss, the gradient norm and which weight tensors moved most.

Why: late in a ``--preset cpu`` run the G loss jumps ~10x within one step (the spike guard rolls it back;
benchmarks/RESULTS.md). Whether that is a hard batch or the weights diverging, and which layer diverges,
decides the fix. Batches are a pure function of (seed, step), so the replay draws the very batches of the
original run; ``--frozen`` scores them on the checkpoint's weights at lr 0 (a hard batch scores high
there too).

    .venv/bin/python benchmarks/stage2_spike_probe.py SHOT --from-step 1000 --to-step 1300 --out probe.json
    .venv/bin/python benchmarks/stage2_spike_probe.py SHOT --from-step 1000 --to-step 1300 --set adam_eps=1e-6
    .venv/bin/python benchmarks/stage2_spike_probe.py SHOT --from-step 1500 --to-step 1300 --frozen  # hard batches?

SHOT must have been trained with ``keep_checkpoints`` large enough to still hold ``--from-step``
(``--set keep_checkpoints=5``). The spike guard is off in the replay unless ``--guard``.
Writes a JSON of per-step records and prints the steps whose loss jumped, each with the tensors whose
relative update (|Δw| / |w|) was largest in that step and the step before.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch


def _relative_updates(G: torch.nn.Module, before: dict[str, torch.Tensor]) -> dict[str, float]:
    out = {}
    for name, p in G.named_parameters():
        w0 = before[name]
        out[name] = float((p.detach() - w0).norm() / (w0.norm() + 1e-12))
    return out


def replay(shot_dir: str | Path, from_step: int, steps: range, overrides: list[str], *, frozen: bool = False,
           prior: bool = False, top: int = 5, verbose: bool = False):
    """Load the run's checkpoint ``from_step`` and run ``steps`` of its training (with ``overrides`` on its
    config.yaml; lr 0 when ``frozen``); returns (per-step records, the nets afterwards)."""
    from vq_models.shot import Shot
    from vq_models.train.checkpoint import CheckpointManager
    from vq_models.train.distributed import init_distributed
    from vq_models.train.stage2 import apply_optimiser_settings, build_stage2_nets, load_stage2_data
    from vq_models.train.stage2_config import load_stage2_config
    from vq_models.train.stage2_step import train_step

    shot = Shot.open(shot_dir)
    config = load_stage2_config("cpu", shot.stage2_dir / "config.yaml", overrides)
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    torch.set_flush_denormal(True)
    data = load_stage2_data(shot, config, shot.root / "prior.json" if prior else None)
    info = init_distributed("cpu")
    nets, _ = build_stage2_nets(config, data, info)
    ckpt = shot.stage2_dir / "checkpoints" / f"step_{from_step:08d}"
    CheckpointManager(ckpt.parent).load(ckpt, nets.modules, nets.optimizers)
    apply_optimiser_settings(nets, config)  # the checkpoint brought its own betas and eps: the overrides win
    if frozen:
        config = dataclasses.replace(config, lr_g=0.0, lr_d=0.0)
    records = []
    for step in steps:
        before = {n: p.detach().clone() for n, p in nets.G.named_parameters()}
        scalars = train_step(step, config, nets, data.train_set, info, info.device)
        if frozen:  # Adam with lr 0 still moves its moments: put the weights back exactly
            with torch.no_grad():
                for n, p in nets.G.named_parameters():
                    p.copy_(before[n])
        moved = _relative_updates(nets.G, before)
        largest = sorted(moved.items(), key=lambda kv: -kv[1])[:top]
        records.append({"step": step, "g_loss": scalars["loss/g_total"], "l1": scalars["loss/l1"],
                        "g_norm": scalars.get("grad/g_norm"), "top_updates": largest})
        if verbose:
            print(f"{step:5d} loss {scalars['loss/g_total']:.5f} grad {scalars.get('grad/g_norm', 0):.3f} "
                  f"top {largest[0][0]} {largest[0][1]:.2e}", flush=True)
    return records, nets


def probe(args: argparse.Namespace) -> dict:
    """The command line's run: replay (or score, ``--frozen``) the steps and find the spikes among them."""
    overrides = [*args.set, *([] if args.guard else ["spike_factor=0"])]
    if args.frozen and args.to_step <= args.from_step:  # the window of steps ending at --to-step
        steps = range(args.to_step - args.window + 1, args.to_step + 1)
    else:
        steps = range(args.from_step + 1, args.to_step + 1)
    records, _ = replay(args.shot, args.from_step, steps, overrides, frozen=args.frozen, prior=args.prior,
                        top=args.top, verbose=args.verbose)
    return {"shot": str(args.shot), "from_step": args.from_step, "to_step": args.to_step, "frozen": args.frozen,
            "overrides": overrides, "records": records, "spikes": find_spikes(records, args.factor)}


def find_spikes(records: list[dict], factor: float, decay: float = 0.95) -> list[dict]:
    """Steps whose loss exceeds ``factor`` x the running mean of the steps before: the spike guard's own rule
    (``SpikeGuard.is_spike``), with no warm-up since a replay starts late in a run."""
    from vq_models.train.spike_guard import SpikeGuard

    rule = SpikeGuard(factor=factor, decay=decay, warmup=0)
    spikes = []
    for i, r in enumerate(records):
        if rule.is_spike(r["step"], r["g_loss"]):
            spikes.append({"step": r["step"], "g_loss": r["g_loss"], "reference": rule.reference,
                           "top_updates": r["top_updates"],
                           "top_updates_step_before": records[i - 1]["top_updates"] if i else []})
            continue
        rule.observe(r["g_loss"])
    return spikes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shot")
    ap.add_argument("--from-step", type=int, required=True, help="checkpoint step to start from")
    ap.add_argument("--to-step", type=int, required=True, help="last step to replay")
    ap.add_argument("--window", type=int, default=30, help="with --frozen and --to-step < --from-step: steps scored")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Stage II config override")
    ap.add_argument("--prior", action="store_true", help="the run was trained with SHOT/prior.json")
    ap.add_argument("--guard", action="store_true", help="keep the run's spike guard on")
    ap.add_argument("--frozen", action="store_true", help="score the steps' batches at lr 0 (hard batches?)")
    ap.add_argument("--factor", type=float, default=4.0, help="loss jump that counts as a spike")
    ap.add_argument("--top", type=int, default=5, help="tensors listed per step")
    ap.add_argument("--out", help="JSON of per-step records")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    result = probe(args)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    losses = [r["g_loss"] for r in result["records"]]
    print(f"{len(losses)} steps, G loss min {min(losses):.5f} median {sorted(losses)[len(losses) // 2]:.5f} "
          f"max {max(losses):.5f}")
    for s in result["spikes"]:
        print(f"spike at step {s['step']}: {s['g_loss']:.4f} vs running {s['reference']:.4f}")
        for name, rel in s["top_updates_step_before"][:3]:
            print(f"   step before: {name} moved {rel:.2e}")
        for name, rel in s["top_updates"][:3]:
            print(f"   spike step:  {name} moved {rel:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
