"""Fingerprint short deterministic Stage I, recluster and Stage II runs, to prove a restructure changed nothing.

Why: a refactor of the trainers must leave every weight, label and loss bit for bit as it was. This runs a
few steps of each on tiny drawn shots (about a minute on one core), hashes the weights, codebooks, label
maps, logged losses and meta.json (timings dropped), and writes or compares a JSON of those hashes:

    .venv/bin/python scripts/golden_training.py --write /tmp/golden_before.json   # on the old code
    .venv/bin/python scripts/golden_training.py --compare /tmp/golden_before.json # on the new code

Hashes are only comparable on one machine and torch build (float results depend on the CPU's kernels), so
the file is not committed; run both sides in one place.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from stage1_shot import CROP, make_shot  # noqa: E402
from test_stage2 import make_shot as make_stage2_shot  # noqa: E402

from vq_models.config import load_config  # noqa: E402
from vq_models.io.images import read_label_map  # noqa: E402
from vq_models.train import logging as train_logging  # noqa: E402
from vq_models.train.checkpoint import load_weights  # noqa: E402

LOSSES: list[tuple[int, dict[str, float]]] = []
_original_log = train_logging.TrainLogger.log


def _recording_log(self, step: int, scalars: dict[str, float]) -> None:
    LOSSES.append((int(step), {k: float(v) for k, v in scalars.items()}))
    _original_log(self, step, scalars)


def _hash_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()[:16]


def _weights(path: Path) -> dict[str, str]:
    return {k: _hash_bytes(v.detach().cpu().contiguous().numpy().tobytes()) for k, v in sorted(load_weights(path).items())}


def _labels(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.glob("*.png")):
        h.update(p.name.encode())
        h.update(read_label_map(p).tobytes())
    return h.hexdigest()[:16]


def _renamed(tree: Any) -> Any:
    """Renames that change no behaviour, applied to both sides: Stage I meta.json said "prior" for the StyleGAN
    backbone, and its config used Stage I's own knob names before both trainers shared one name per knob."""
    from vq_models.train.stage1_config import Stage1Config

    renames = getattr(Stage1Config, "DEPRECATED_NAMES", {})
    if isinstance(tree, dict):
        if tree.get("stage") == 1:
            for key in ("", "_description", "_sources"):
                if f"prior{key}" in tree:
                    tree[f"backbone{key}"] = tree.pop(f"prior{key}")
            config = tree.get("config", {})
            tree["config"] = {renames[k][0] if k in renames else k: renames[k][1](v) if k in renames else v
                              for k, v in config.items()}
        for value in tree.values():
            _renamed(value)
    return tree


def _meta(path: Path) -> Any:
    meta = json.loads(path.read_text())
    meta.pop("timings", None)
    if isinstance(meta.get("prior"), dict) and "path" in meta["prior"]:
        meta["prior"]["path"] = Path(meta["prior"]["path"]).name
    for c in (meta.get("val") or {}).get("curve", []) if isinstance(meta.get("val"), dict) else []:
        c.pop("seconds", None)
    for r in meta.get("reclustered", []):
        r.pop("seconds", None)
        r.pop("utc", None)
        r.pop("stale_moved_to", None)
    return meta


def _losses() -> list:
    out = list(LOSSES)
    LOSSES.clear()
    return out


def run_all(work: Path) -> dict[str, Any]:
    """Every fingerprinted run; each entry names its run."""
    from vq_models.train.recluster import recluster
    from vq_models.train.stage1 import STAGE1_PRESETS, train_stage1
    from vq_models.train.stage2 import load_stage2_config, train_stage2

    torch.set_num_threads(1)
    train_logging.TrainLogger.log = _recording_log
    result: dict[str, Any] = {}
    for name, extra in (("s1_tiny", []),
                        ("s1_taps", ["vq_refine_reinit=true", "vq_refine_roi_weight=2", "vq_rgb_weight=2",
                                     "vq_context_weight=1", "vq_refine_epochs=0"])):
        root = work / name
        make_shot(root)
        # "iters": the old name, so this also runs on revisions before the rename (it is still read)
        config = load_config(STAGE1_PRESETS, "tiny", None, ["iters=5", f"label_size={CROP}", *extra])
        out = train_stage1(root, config, progress=False)
        result[name] = {"losses": _losses(), "model": _weights(out / "model.safetensors"),
                        "codebook": _weights(out / "codebook.safetensors"), "labels": _labels(out / "labels"),
                        "meta": _meta(out / "meta.json")}
    root = work / "s1_taps"
    summary = recluster(root, num_codes=6, context_weight=2.0, roi_weight=3.0, seed=1)
    summary.pop("seconds", None)
    summary.pop("utc", None)
    result["recluster"] = {"summary": summary, "codebook": _weights(root / "stage1" / "codebook.safetensors"),
                           "labels": _labels(root / "stage1" / "labels"), "meta": _meta(root / "stage1" / "meta.json")}
    prior = root / "prior.json"
    prior.write_text(json.dumps({"version": 1, "segments": {"a": [0, 1], "b": [2]}}))
    cfg = load_stage2_config("tiny", overrides=["iterations=6", "log_every=1", "eval_every=3", "val_every=2",
                                                "shift_augment=2", "paint_prob=1.0", "paint_radius=3",
                                                "spike_factor=1.02", "spike_warmup=1", "spike_snapshot_every=2",
                                                "grad_clip=0.5", "lr_decay_from=0.5"])
    out = train_stage2(root, cfg, progress=False, prior_path=prior)
    result["s2_prior"] = {"losses": _losses(), "model": _weights(out / "model.safetensors"),
                          "meta": _meta(out / "meta.json")}
    root = work / "s2_plain"
    make_stage2_shot(root)
    cfg = load_stage2_config("tiny", overrides=["iterations=8", "log_every=1", "gp_every=2", "label_embed=4"])
    out = train_stage2(root, cfg, progress=False)
    result["s2_plain"] = {"losses": _losses(), "model": _weights(out / "model.safetensors"),
                          "meta": _meta(out / "meta.json")}
    return result


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'new' if k in b else 'golden'}")
            else:
                out += _diff(a[k], b[k], f"{path}.{k}")
        return out
    return [] if a == b else [f"{path}: {str(a)[:120]} != {str(b)[:120]}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="JSON")
    group.add_argument("--compare", metavar="JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = json.loads(json.dumps(run_all(Path(tmp))))
    if args.write:
        Path(args.write).write_text(json.dumps(result, indent=1, sort_keys=True))
        print(f"golden fingerprints written to {args.write}")
        return 0
    diffs = _diff(_renamed(json.loads(Path(args.compare).read_text())), _renamed(result))
    for d in diffs[:40]:
        print("DIFF", d)
    print("bit-identical" if not diffs else f"{len(diffs)} differences")
    return 0 if not diffs else 1


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
