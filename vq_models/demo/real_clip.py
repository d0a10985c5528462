"""``vqedit demo --clip VIDEO``: the whole pipeline on real footage, judged the way a compositor looks at it.

prep → Stage I → prior → Stage II at the ``cpu`` preset, then, in process: identity renders scored at plate
resolution (SSIM and LPIPS in the face, sharpness in the ROI, flicker), the shot's own blinks (whole and caught
half way), glances, closed mouths and opening mouths as what-ifs for ``eye_open``, ``gaze``, ``mouth_open 0`` and
``mouth_open`` above 1, and a plate-resolution contact sheet of eyes closed, gaze and teeth removed beside the
paper's bare paste (no plate detail). Trained models are reused on re-runs (``--retrain`` starts over);
everything measured is written to ``OUT/metrics.json``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from vq_models.demo.steps import StepRunner
from vq_models.io.atomic import atomic_write_json

STEPS = 7


def _vqedit(argv: list[str]) -> None:
    """Run a ``vqedit`` sub-command in process (its user errors propagate as VQEditError)."""
    from vq_models.cli import build_parser

    args = build_parser().parse_args(argv)
    args._run(args)


def pick_frames(model: Any) -> dict[str, int]:
    """Frames the contact sheet shows: eyes wide open for the eye edits; for teeth, the frame with the most
    pixels of the prior's teeth codes (the widest mouth when the prior has none)."""
    from vq_models.evaluation.plate import openness

    o = openness(model)
    eyes = np.nan_to_num(np.nanmean(np.stack([o["left_eye"], o["right_eye"]]), axis=0), nan=-1.0)
    mouth = np.nan_to_num(o["mouth"], nan=-1.0)
    prior = model.prior(required=False)
    teeth = prior.codes_of(("upper_teeth", "lower_teeth")) if prior is not None else []
    if teeth:
        mouth = np.array([np.isin(model.label_map(f), teeth).sum() for f in model.frames], np.float64)
    return {"eyes": model.frames[int(np.argmax(eyes))], "mouth": model.frames[int(np.argmax(mouth))]}


SHEET_EDITS: dict[str, tuple[str, dict[str, Any]]] = {
    "eyes closed": ("eyes", {"op": "eye_open", "eye": "both", "value": 0.0}),
    "gaze left": ("eyes", {"op": "gaze", "eye": "both", "value": [-0.25, 0.0]}),
    "teeth removed": ("mouth", {"op": "teeth", "which": "both", "value": 0.0}),
}


def _earlier_timings(path: Path) -> dict[str, float]:
    """The stage timings of the report at ``path``, if it has them (empty when it is missing or unreadable)."""
    try:
        timings = json.loads(path.read_text()).get("timings_s") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {k: float(v) for k, v in timings.items() if isinstance(v, (int, float))}


def run_real_demo(clip: str | Path, out: str | Path, *, frames: str | None = None, retrain: bool = False,
                  device: str = "cpu", preset: str = "cpu", size: int = 256, every: int = 4,
                  progress: bool = True) -> dict[str, Any]:
    """Run the real-footage demo; returns (and writes) the metrics. ``progress``: the steps' progress bars."""
    from vq_models.evaluation.plate import WHATIFS, plate_metrics, teeth_left
    from vq_models.runtime import ShotModel

    out = Path(out)
    shot = out / "models" / Path(clip).stem
    runner = StepRunner(out / "logs", STEPS)
    trained = (shot / "stage2" / "meta.json").is_file() and (shot / "prior.json").is_file()
    if retrain and shot.exists():
        shutil.rmtree(shot)
        trained = False
    # a reused shot keeps the times its training took (from the last report), not the reuse's zero seconds
    earlier = _earlier_timings(out / "metrics.json") if trained else {}
    timings: dict[str, float | None] = {}

    def timed(name: str, what: str, argv: list[str] | None) -> None:
        with runner.step(name, what):
            t0 = time.perf_counter()
            if argv is None:
                runner.say(f"      reusing {shot} (--retrain to start over)")
            else:
                _vqedit(argv)
            timings[name] = round(time.perf_counter() - t0, 1) if argv is not None else earlier.get(name)

    quiet = [] if progress else ["--no-progress"]
    train = ["--preset", preset, "--device", device, *quiet]
    quick = ["--iters", "12"] if preset == "tiny" else []  # the tests' seconds-long run
    timed("prep", f"track and crop {clip}", None if trained else
          ["prep", str(clip), "--out", str(shot), "--size", str(size), "--preview", *quiet,
           *(["--frames", frames] if frames else [])])
    timed("stage1", "Stage I: inversion + vector-quantised segmentation", None if trained else
          ["train", str(shot), "--stage", "1", *train])
    timed("prior", "artist prior proposed from the codes", None if trained else ["prior", str(shot), "--auto"])
    timed("stage2", "Stage II: SPADE renderer", None if trained else ["train", str(shot), "--stage", "2", *train, *quick])
    model = ShotModel.load(shot)
    result: dict[str, Any] = {"clip": str(clip), "shot": str(shot), "preset": preset, "timings_s": timings,
                              "stage2_val": json.loads((shot / "stage2" / "meta.json").read_text()).get("val")}
    with runner.step("plate", "identity renders scored at plate resolution"):
        scored = model.frames[:: max(1, every)]
        result["plate_detail"] = plate_metrics(model, scored, detail="plate")
        result["plate_bare"] = plate_metrics(model, scored, detail="none", lpips=False)
    with runner.step("whatif", "eye_open, gaze and mouth_open vs the shot's own blinks, glances and mouths; the "
                     "teeth teeth 0 leaves"):
        for key, whatif in WHATIFS.items():
            result[key] = whatif(model)
        result["teeth_left"] = teeth_left(model)
    with runner.step("sheet", "plate-resolution contact sheet"):
        picks = pick_frames(model)
        rows = [(name, picks[part], {"version": 1, "edits": [edit]}) for name, (part, edit) in SHEET_EDITS.items()]
        sheet, skipped = write_plate_sheet(model, rows, out / "contact_sheet_plate.png")
        result["sheet"], result["sheet_skipped"] = str(sheet), skipped
        for name, why in skipped.items():
            runner.say(f"      {name}: not shown ({why})")
        result["sheet_frames"] = picks
    for key in ("plate_detail", "plate_bare"):
        result[key].pop("per_frame", None)
    atomic_write_json(out / "metrics.json", _json_safe(result))
    return result


def _json_safe(value: Any) -> Any:
    from vq_models import metrics as M

    return M.json_safe(value)


def write_plate_sheet(model: Any, rows: list[tuple[str, int, dict[str, Any]]], path: Path,
                      height: int | None = 300) -> tuple[Path, dict[str, str]]:
    """One row per edit, cut around the edited region at the plate's own pixel density (every cell the same
    shape): plate, edit with plate detail, edit as the bare render (the paper's paste), alpha. Edits the
    shot's prior cannot do are left out and returned with the reason. ``height``: each row's cells scaled to
    it (nearest), or None for one sheet pixel per plate pixel (how a compositor looks at a 4K plate)."""
    from vq_models.errors import InputError
    from vq_models.evaluation import sheet_row, write_sheet, zoom_box
    from vq_models.evaluation.plate import render_on_plate

    sheet_rows = []
    skipped: dict[str, str] = {}
    for name, frame, program in rows:
        try:
            detailed = render_on_plate(model, frame, program, "edit-only", 8.0, "plate")
            bare = render_on_plate(model, frame, program, "edit-only", 8.0, "none")
        except InputError as exc:
            skipped[name] = str(exc)
            continue
        h, w = detailed.alpha.shape
        changed = _box_of(detailed.alpha > 0, pad=16)
        box = zoom_box(changed or _box_of(_face_mask(model, frame)), (w, h), aspect=2.0)
        alpha = np.repeat(detailed.alpha[..., None], 3, axis=2)
        cells = [_cut(img, box) for img in (detailed.plate, detailed.comp, bare.comp, alpha)]
        note = "" if changed else "\nno label changed"
        sheet_rows.append((f"{name}\nframe {frame}{note}", sheet_row(cells, height or cells[0].shape[0])))
    if not sheet_rows:  # nothing the prior can edit: the plate alone, so the sheet still shows the shot
        frame = model.frames[len(model.frames) // 2]
        plate = model.detail.plates.read(frame)
        cell = _cut(plate, _box_of(_face_mask(model, frame)))
        sheet_rows.append((f"no edit usable\nframe {frame}", sheet_row([cell], height or cell.shape[0])))
    write_sheet(path, sheet_rows, ["plate", "edit (plate detail)", "edit (bare render)", "alpha"])
    return path, skipped


def _face_mask(model: Any, frame: int) -> np.ndarray:
    from vq_models.composite import face_alpha

    info = model.plate_info
    size = (info["display_window"][2], info["display_window"][3])
    return face_alpha(model.shot.fg_mask(frame), model.shot.transform(frame), size, 0.0,
                      crop_size=model.shot.crop_size) > 0.5


def _box_of(mask: np.ndarray, pad: int = 4) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    if not ys.size:
        return None
    h, w = mask.shape
    return (max(0, xs.min() - pad), max(0, ys.min() - pad), min(w, xs.max() + pad + 1), min(h, ys.max() + pad + 1))


def _cut(img: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    if box is None:
        return img
    x0, y0, x1, y1 = box
    return img[y0:y1, x0:x1]
