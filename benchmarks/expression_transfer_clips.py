"""Expression transfer between two real clips: does the result's mouth open as the driver's does?

    .venv/bin/python benchmarks/expression_transfer_clips.py --driver runs/m0/models/lp_d0 \
        --target runs/m13/models/lp_d13 --out /tmp/xfer_d0_d13 [--frames 78]

The driver is a prepped shot (no training needed), the target a trained one. The first ``--frames`` frames of
each are paired in order and ``vqedit transfer-expression`` renders the driver's lower face into the target's
plate (edit-only, plate detail, PNG composites in ``OUT/comp``). The result is then tracked again with the
built-in tracker, as a new plate would be, and its mouth opening (inner-lip gap over the outer eye-corner
distance, from the 478-point mesh) is compared with the driver's from its own tracking: Pearson correlation
over the range, beside the same correlation for the untouched target (what the transfer had to change).

Writes ``OUT/openings.json`` and ``OUT/contact_sheet.png`` (for the frames where the driver's mouth is most
closed, median and most open: driver | target plate | result, each the lower face at plate resolution, no
resampling). It also scores each result's sharpness where the transfer changed the plate (high-frequency energy
over the plate's there). Real clips stay out of the repository: write OUT outside it. The last line reads
``expression_transfer_clips DRIVER -> TARGET: r X.XX (untouched target r Y.YY) over N frames; sharpness ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vq_models.cli import main as vqedit  # noqa: E402
from vq_models.detail import PlateFrames  # noqa: E402
from vq_models.evaluation.plate import laplacian_energy  # noqa: E402
from vq_models.io.colour import to_network  # noqa: E402
from vq_models.io.images import read_image, write_image  # noqa: E402
from vq_models.shot import Shot  # noqa: E402
from vq_models.tracking.schema import load_tracking  # noqa: E402

INNER_LIP_TOP, INNER_LIP_BOTTOM = 13, 14
OUTER_EYE_CORNERS = (33, 263)


def mouth_opening(mesh: np.ndarray | None) -> float:
    """Inner-lip gap over the outer eye-corner distance (scale- and position-free), NaN without a mesh."""
    if mesh is None:
        return float("nan")
    m = np.asarray(mesh, np.float64)[:, :2]
    eyes = float(np.linalg.norm(m[OUTER_EYE_CORNERS[0]] - m[OUTER_EYE_CORNERS[1]]))
    return float(np.linalg.norm(m[INNER_LIP_TOP] - m[INNER_LIP_BOTTOM])) / max(eyes, 1e-9)


def shot_openings(shot_dir: Path, frames: list[int]) -> np.ndarray:
    tracking = load_tracking(Shot.open(shot_dir).tracking_path)
    return np.array([mouth_opening(tracking.frames[f].mesh if f in tracking.frames else None) for f in frames])


def tracked_openings(paths: list[Path]) -> np.ndarray:
    from vq_models.face.tracker import FaceTracker

    out = []
    with FaceTracker(max_faces=1) as tracker:
        for p in paths:
            faces = tracker.track(np.asarray(read_image(p).pixels)[..., :3])
            out.append(mouth_opening(faces[0].landmarks478 if faces else None))
    return np.array(out)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def lower_face_box(shot: Shot, frame: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Plate box (x0, y0, x1, y1) around the lower half of the crop: the mouth, chin and cheeks."""
    tf = shot.transform(frame)
    s = shot.crop_size
    corners = tf.to_plate(np.array([[0.2 * s, 0.55 * s], [0.8 * s, 0.55 * s], [0.2 * s, 0.95 * s], [0.8 * s, 0.95 * s]]))
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
    return max(0, x0), max(0, y0), min(size[0], x1), min(size[1], y1)


def render_sharpness(target: Path, pairs: list[tuple[int, int]], comps: dict[int, Path]) -> np.ndarray:
    """Per pair: the result's high-frequency energy over the target plate's (``laplacian_energy``) where the
    transfer changed the plate (|result - plate| above 2/255), NaN where it changed nothing: 1 keeps the
    plate's density, a 128² render stretched over the face scores near 0.15."""
    src = PlateFrames(Shot.open(target))
    out = []
    for t, _ in pairs:
        plate = np.asarray(to_network(src.image(t)), np.float32)[..., :3]
        result = np.asarray(to_network(read_image(comps[t])), np.float32)[..., :3]
        changed = np.abs(result - plate).max(axis=-1) > 2.0 / 255.0
        out.append(laplacian_energy(result, changed) / laplacian_energy(plate, changed) if changed.sum() > 50
                   else float("nan"))
    return np.array(out)


def contact_sheet(out: Path, driver: Path, target: Path, pairs: list[tuple[int, int]], comps: dict[int, Path],
                  rows: list[int]) -> Path:
    """Driver | target plate | result per row, each its lower face at plate resolution (padded to one width)."""
    d_shot, t_shot = Shot.open(driver), Shot.open(target)
    d_src, t_src = PlateFrames(d_shot), PlateFrames(t_shot)
    tiles: list[list[np.ndarray]] = []
    for i in rows:
        tf, df = pairs[i]
        t_plate = np.asarray(to_network(t_src.image(tf)), np.float32)[..., :3]
        d_plate = np.asarray(to_network(d_src.image(df)), np.float32)[..., :3]
        result = np.asarray(to_network(read_image(comps[tf])), np.float32)[..., :3]
        tb = lower_face_box(t_shot, tf, (t_plate.shape[1], t_plate.shape[0]))
        db = lower_face_box(d_shot, df, (d_plate.shape[1], d_plate.shape[0]))
        cut = lambda img, b: img[b[1]:b[3], b[0]:b[2]]  # noqa: E731
        tiles.append([cut(d_plate, db), cut(t_plate, tb), cut(result, tb)])
    h = max(t.shape[0] for row in tiles for t in row)
    w = max(t.shape[1] for row in tiles for t in row)
    sheet = np.full((h * len(tiles) + 4 * (len(tiles) - 1), w * 3 + 8, 3), 0.1, np.float32)
    for r, row in enumerate(tiles):
        for c, t in enumerate(row):
            y, x = r * (h + 4), c * (w + 4)
            sheet[y:y + t.shape[0], x:x + t.shape[1]] = t
    path = out / "contact_sheet.png"
    write_image(path, np.clip(sheet, 0, 1), dtype="uint8")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--driver", type=Path, required=True, help="prepped driver shot")
    ap.add_argument("--target", type=Path, required=True, help="trained target shot")
    ap.add_argument("--out", type=Path, required=True, help="output folder (outside the repository)")
    ap.add_argument("--frames", type=int, default=0, help="frames paired from the start of each (default: all both have)")
    ap.add_argument("--strength", type=float, default=1.0)
    args = ap.parse_args()

    d_frames, t_frames = Shot.open(args.driver).frames, Shot.open(args.target).frames
    n = min(len(d_frames), len(t_frames)) if args.frames <= 0 else min(args.frames, len(d_frames), len(t_frames))
    pairs = list(zip(t_frames[:n], d_frames[:n], strict=True))
    comp_dir = args.out / "comp"
    comp_dir.mkdir(parents=True, exist_ok=True)
    rc = vqedit([
        "transfer-expression", str(args.driver), "--shot", str(args.target),
        "--out", str(comp_dir / "frame.%04d.png"),
        "--frames", f"{pairs[0][0]}-{pairs[-1][0]}", "--driver-frames", f"{pairs[0][1]}-{pairs[-1][1]}",
        "--strength", str(args.strength), "--no-progress",
    ])
    if rc:
        return rc
    comps = {t: comp_dir / f"frame.{t:04d}.png" for t, _ in pairs}
    driver = shot_openings(args.driver, [d for _, d in pairs])
    before = shot_openings(args.target, [t for t, _ in pairs])
    after = tracked_openings([comps[t] for t, _ in pairs])
    r, r0 = pearson(driver, after), pearson(driver, before)
    sharp = render_sharpness(args.target, pairs, comps)
    order = np.argsort(np.nan_to_num(driver, nan=np.inf))
    rows = [int(order[0]), int(order[len(order) // 2]), int(order[np.isfinite(driver).sum() - 1])]
    sheet = contact_sheet(args.out, args.driver, args.target, pairs, comps, rows)
    (args.out / "openings.json").write_text(json.dumps({
        "pairs": pairs, "driver": driver.tolist(), "target_before": before.tolist(), "result": after.tolist(),
        "r": r, "r_untouched": r0, "sharpness": [None if not np.isfinite(v) else v for v in sharp],
    }, indent=1))
    for (t, d), a, b, c, h in zip(pairs, driver, before, after, sharp, strict=True):
        print(f"target {t} driver {d}: driver {a:.3f} target {b:.3f} result {c:.3f} sharpness {h:.2f}")
    print(f"contact sheet: {sheet}")
    ok = np.isfinite(sharp)
    median = f"{np.median(sharp[ok]):.2f}, lowest {np.min(sharp[ok]):.2f}" if ok.any() else "-"
    print(f"expression_transfer_clips {args.driver.name} -> {args.target.name}: r {r:.2f} "
          f"(untouched target r {r0:.2f}) over {n} frames; sharpness of the changed region {median}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
