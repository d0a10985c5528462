"""How well the unsupervised codes segment the face, against ground-truth part labels.

Codes have no names, so each code is given the ground-truth part it overlaps most (over the whole shot);
a part's prediction is then the union of its codes, and we report per-part IoU and the mean. This is the
standard "Hungarian-free" many-to-one evaluation of unsupervised segmentation: it rewards codes that
stay inside one part, which is exactly what an artist needs to edit a part by its codes.

Comparison happens in crop space at the label resolution: ground truth (plate space) is warped through
each frame's plate_to_crop with nearest neighbour; pixels outside the plate are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vq_models.errors import InputError
from vq_models.io.jsonfile import read_json

__all__ = ["SegmentationReport", "confusion", "match_codes", "part_ious", "load_parts", "evaluate_shot",
           "format_table"]

IGNORE = 255


@dataclass
class SegmentationReport:
    parts: dict[int, str]
    iou: dict[int, float]  # part id -> IoU (parts present in the ground truth)
    code_to_part: dict[int, int]  # code -> part id (codes that occur)
    mean_iou: float  # over every part present in the ground truth
    mean_iou_face: float  # the same without the part named "background"
    frames: int

    def to_json(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "mean_iou": self.mean_iou,
            "mean_iou_face": self.mean_iou_face,
            "parts": {self.parts.get(p, str(p)): {"id": p, "iou": v,
                                                  "codes": sorted(c for c, q in self.code_to_part.items() if q == p)}
                      for p, v in self.iou.items()},
            "code_to_part": {str(c): self.parts.get(p, str(p)) for c, p in sorted(self.code_to_part.items())},
        }


def confusion(pred: np.ndarray, gt: np.ndarray, num_codes: int, num_parts: int, ignore: int = IGNORE) -> np.ndarray:
    """(num_codes, num_parts) pixel counts of code c on part p, skipping ``ignore`` pixels on either side."""
    pred = np.asarray(pred).ravel().astype(np.int64)
    gt = np.asarray(gt).ravel().astype(np.int64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction and ground truth differ in size: {pred.shape} vs {gt.shape}")
    ok = (gt != ignore) & (pred != ignore) & (pred < num_codes) & (gt < num_parts)
    idx = pred[ok] * num_parts + gt[ok]
    return np.bincount(idx, minlength=num_codes * num_parts).reshape(num_codes, num_parts)


def match_codes(conf: np.ndarray) -> dict[int, int]:
    """Each code that occurs → the part it overlaps most."""
    return {int(c): int(np.argmax(conf[c])) for c in range(conf.shape[0]) if conf[c].sum() > 0}


def part_ious(conf: np.ndarray, code_to_part: dict[int, int]) -> dict[int, float]:
    """IoU per part present in the ground truth, the prediction being the union of the part's codes."""
    gt_area = conf.sum(axis=0)
    out: dict[int, float] = {}
    for p in range(conf.shape[1]):
        if gt_area[p] == 0:
            continue
        codes = [c for c, q in code_to_part.items() if q == p]
        inter = int(conf[codes, p].sum()) if codes else 0
        pred_area = int(conf[codes].sum()) if codes else 0
        union = pred_area + int(gt_area[p]) - inter
        out[p] = inter / union if union else 0.0
    return out


def load_parts(path: str | Path | None, num_parts_seen: int = 0) -> dict[int, str]:
    """Part names by id from parts.json: a list of names, ``{"parts": [...]}``, ``{name: id}`` or
    ``{id: name}``. Without a file, parts are named by their id."""
    if path is None:
        return {i: str(i) for i in range(num_parts_seen)}
    path = Path(path)
    data = read_json(path, "parts file not found")
    if isinstance(data, dict) and "parts" in data:
        data = data["parts"]
    if isinstance(data, list):
        if all(isinstance(x, str) for x in data):
            return dict(enumerate(data))
        if all(isinstance(x, dict) and "id" in x and "name" in x for x in data):
            return {int(x["id"]): str(x["name"]) for x in data}
    if isinstance(data, dict) and data:
        if all(isinstance(v, int) for v in data.values()):
            return {int(v): str(k) for k, v in data.items()}
        if all(str(k).isdigit() for k in data):
            return {int(k): str(v) for k, v in data.items()}
    raise InputError(f"{path}: expected a list of part names or a mapping of names to ids")


def _frame_path(pattern: str, frame: int) -> Path:
    if "%" in pattern:
        try:
            return Path(pattern % frame)
        except (TypeError, ValueError):
            raise InputError(f"--gt-labels {pattern!r}: expected one printf field like %04d") from None
    if "#" in pattern:
        n = pattern.count("#")
        return Path(pattern.replace("#" * n, f"{frame:0{n}d}"))
    raise InputError(f"--gt-labels {pattern!r}: expected a frame pattern such as labels/frame.%04d.png")


def evaluate_shot(shot_dir: str | Path, gt_pattern: str, parts_path: str | Path | None = None) -> SegmentationReport:
    """Compare SHOT/stage1/labels with plate-space ground-truth label maps over every shot frame."""
    from vq_models.io.images import read_label_map
    from vq_models.shot import Shot
    from vq_models.stage1_model import Stage1Model, plate_labels_to_crop

    shot = Shot.open(shot_dir)
    model = Stage1Model.load(shot.stage1_dir, load_networks=False)
    names = load_parts(parts_path) if parts_path is not None else None
    num_parts = (max(names) + 1) if names else 255
    conf = np.zeros((model.num_codes, num_parts), np.int64)
    for frame in shot.frames:
        path = _frame_path(gt_pattern, frame)
        if not path.is_file():
            raise InputError(f"{path}: ground-truth labels for frame {frame} not found")
        gt = plate_labels_to_crop(read_label_map(path), shot.transform(frame).plate_to_crop, shot.crop_size,
                                  model.label_size)
        conf += confusion(model.label_map(frame), gt, model.num_codes, num_parts)
    if names is None:
        used = np.nonzero(conf.sum(axis=0))[0]
        num_used = int(used.max()) + 1 if len(used) else 0
        conf = conf[:, :num_used]
        names = load_parts(None, num_used)
    mapping = match_codes(conf)
    ious = part_ious(conf, mapping)
    face = [v for p, v in ious.items() if names.get(p) != "background"]
    return SegmentationReport(
        parts=names, iou=ious, code_to_part=mapping,
        mean_iou=float(np.mean(list(ious.values()))) if ious else 0.0,
        mean_iou_face=float(np.mean(face)) if face else 0.0,
        frames=len(shot.frames),
    )


def format_table(report: SegmentationReport) -> str:
    """Per-part IoU and codes as a plain-text table."""
    lines = [f"{'part':<16} {'IoU':>6}  codes"]
    for p, v in report.iou.items():
        codes = sorted(c for c, q in report.code_to_part.items() if q == p)
        lines.append(f"{report.parts.get(p, str(p)):<16} {v:6.3f}  {' '.join(map(str, codes)) or '-'}")
    lines.append(f"{'mean':<16} {report.mean_iou:6.3f}")
    lines.append(f"{'mean (face)':<16} {report.mean_iou_face:6.3f}  (without background; {report.frames} frames)")
    return "\n".join(lines)
