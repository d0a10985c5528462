"""Re-run only Stage I's codebook on a trained shot: new K, RGB/context/region-tap weights, ROI weight or seed, no
retraining.

Why: the inversion network is the expensive part of Stage I (minutes to hours); the codebook is a k-means
over its final features (seconds). An artist who looks at the exemplar and wants more codes around the
mouth, or a different seed because two parts came out merged, should not pay for a new inversion. The
codes change, so anything built on the old ones (the artist prior, the Stage II renderer) is stale:
without ``force`` that is refused; with it those files move to ``SHOT/stale/<time>/``, never deleted.

Labels are written to a new folder, then the codebook (atomically), then the folder is swapped in by one
rename, and meta.json goes last. An interrupt before the codebook is written leaves the old model intact;
one after it, until meta.json is written, leaves a codebook that disagrees with meta.json (a changed K or
RGB tap then fails to load with a "does not fit meta.json" error; run recluster again).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from vq_models.config import apply_mapping, config_to_dict, read_config_file, save_config
from vq_models.errors import InputError
from vq_models.io.atomic import atomic_write_json
from vq_models.shot import LABEL_DIR, META_FILE, Shot, ShotLayout
from vq_models.stage1_model import CODEBOOK_FILE, Stage1Model, read_meta
from vq_models.train.checkpoint import save_weights
from vq_models.train.codebook import (
    colour_tap_meta,
    fit_codebook,
    foreground_features,
    usage_meta,
    write_labels,
)
from vq_models.train.stage1_config import Stage1Config, check_colour_tap
from vq_models.train.stage1_data import ShotFrames
from vq_models.vq_input import region_tap_multiplier, rgb_multiplier


def stale_dependents(shot_root: Path) -> list[Path]:
    """Files and folders made for the current codes: the artist prior and the Stage II model."""
    layout = ShotLayout(shot_root)
    return [p for p in (layout.prior_path, layout.stage2_dir) if p.exists()]


def recluster(
    shot_dir: str | Path,
    *,
    num_codes: int | None = None,
    rgb_weight: float | None = None,
    context_weight: float | None = None,
    context_sigma: float | None = None,
    region_weight: float | None = None,
    roi_weight: float | None = None,
    seed: int | None = None,
    lloyd: int | None = None,
    force: bool = False,
    device: str = "cpu",
) -> dict[str, Any]:
    """New codebook and labels for SHOT's trained Stage I network; returns a summary (also in meta.json)."""
    shot = Shot.open(shot_dir)
    out = shot.stage1_dir
    meta = read_meta(out)
    old = apply_mapping(Stage1Config(), read_config_file(out / "config.yaml"))
    changes: dict[str, Any] = {}
    if num_codes is not None:
        if not 2 <= num_codes <= 255:
            raise InputError(f"--codes {num_codes}: choose 2..255 (labels are uint8)")
        changes["num_codes"] = int(num_codes)
    for name, flag, value in (("vq_rgb_weight", "--rgb-weight", rgb_weight),
                              ("vq_context_weight", "--context-weight", context_weight),
                              ("vq_context_sigma", "--context-sigma", context_sigma),
                              ("vq_region_weight", "--region-weight", region_weight)):
        if value is not None:
            check_colour_tap(name, value, flag)
            changes[name] = float(value)
    if roi_weight is not None:
        if roi_weight < 1:
            raise InputError(f"--roi-weight {roi_weight}: must be >= 1 (1 = every pixel counts the same)")
        changes["vq_refine_roi_weight"] = float(roi_weight)
    if seed is not None:
        changes["seed"] = int(seed)
    if lloyd is not None:
        if lloyd < 1:
            raise InputError(f"--lloyd {lloyd}: at least one pass")
        changes["vq_refine_lloyd"] = int(lloyd)
    config = dataclasses.replace(old, **changes)
    if config.vq_refine_lloyd < 1:
        config = dataclasses.replace(config, vq_refine_lloyd=15)

    stale = stale_dependents(shot.root)
    if stale and not force:
        names = ", ".join(str(p.relative_to(shot.root)) for p in stale)
        raise InputError(f"{shot.root}: {names} were made for the current codes and would be stale after "
                         "reclustering; rerun with --force to move them to stale/ (then retrain Stage II)")

    t0 = time.monotonic()
    dev = torch.device(device)
    model = Stage1Model.load(out, device)
    net = model.net
    net.vq_rgb_multiplier = rgb_multiplier(config.vq_rgb_weight)
    net.vq_context_multiplier = rgb_multiplier(config.vq_context_weight)
    net.vq_context_sigma = config.vq_context_sigma
    net.vq_region_multiplier = region_tap_multiplier(config.vq_region_weight)
    data = ShotFrames(shot, config.input_size)
    points = foreground_features(net, data, config, dev)
    vq, passes = fit_codebook(points, config, net.vq_dim, dev)
    del points

    moved_to = None
    if stale:
        moved_to = shot.root / "stale" / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        moved_to.mkdir(parents=True, exist_ok=True)
        for p in stale:
            shutil.move(str(p), str(moved_to / p.name))

    new_dir, old_dir = out / (LABEL_DIR + ".new"), out / (LABEL_DIR + ".old")
    for d in (new_dir, old_dir):
        if d.exists():
            shutil.rmtree(d)
    usage = write_labels(net, vq, data, config, dev, new_dir)
    save_weights(out / CODEBOOK_FILE, dict(vq.state_dict().items()))
    save_config(config, out / "config.yaml")
    if (out / LABEL_DIR).exists():
        (out / LABEL_DIR).rename(old_dir)
    new_dir.rename(out / LABEL_DIR)
    shutil.rmtree(old_dir, ignore_errors=True)
    summary = {
        "from": {"num_codes": old.num_codes, "vq_rgb_weight": old.vq_rgb_weight,
                 "vq_context_weight": old.vq_context_weight, "vq_context_sigma": old.vq_context_sigma,
                 "vq_region_weight": old.vq_region_weight,
                 "vq_refine_roi_weight": old.vq_refine_roi_weight, "seed": old.seed},
        "changes": changes,
        "lloyd_passes": passes,
        "seconds": round(time.monotonic() - t0, 1),
        "stale_moved_to": str(moved_to) if moved_to else None,
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    meta.update({
        "num_codes": config.num_codes,
        "code_dim": int(vq.dim),
        **colour_tap_meta(config, net),
        "vq_refine_lloyd_passes": passes,
        **usage_meta(usage),
        "config": config_to_dict(config),
        "reclustered": meta.get("reclustered", []) + [summary],
    })
    atomic_write_json(out / META_FILE, meta)  # last: the model is consistent again from here on
    return summary
