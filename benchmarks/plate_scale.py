"""Plate-density rendering from 512² to 4K plates: seconds and memory per frame, and what the compositor sees.

The product renders a 128² (``cpu`` preset) or 1024² (paper) crop and keeps the plate's own pixel density by
splitting render and plate by frequency (``vq_models.detail``). Issue 15 asks that this hold for plates from
480² to 4K with faces of 200 to 1,500 pixels. Training a shot per plate size would cost hours, and the plate's
size changes nothing the networks see (the aligned crops, labels and renders stay the same): only the
paste-back and the detail transfer work at plate resolution. So a trained shot is **re-plated**: each plate
frame is warped onto a larger canvas by a similarity (Lanczos, in linear light), given film grain at the new
canvas's own pixel density (fine detail the render must keep and that no upscale invents), and the shot's
crop transforms and tracking are mapped through the same similarity; the networks and label maps are the
shot's own. For each plate size it reports:

- the face's size in plate pixels (the tracked face oval's larger extent, median over the measured frames);
- ``identity``: ``render_frame`` with plate detail (what a render server spends on a frame; the host composites),
  median seconds per frame over the measured frames, each frame read for the first time (the plate's EXR read
  included, as on a farm);
- ``edit``: the same for ``eye_open 0`` (``edit-only``: detail from a donor frame where the labels changed);
- peak memory of one edited frame's ``render_frame`` (plates not yet cached): ``tracemalloc``'s peak (the numpy arrays, which are what grows with the
  plate; torch's own CPU buffers are not traced and depend only on the crop) and the process's peak resident size
  so far (plates are measured in the order given, so give them smallest first);
- face-region SSIM and ROI sharpness of the identity composite against the re-plated plate
  (``vq_models.evaluation.plate.plate_metrics``), and the edit's pixels changed outside its alpha (must be 0).

    .venv/bin/python benchmarks/plate_scale.py --shot RUN/shot [--plates 512x512,1920x1080,3840x2160]
        [--frames 6] [--span 24] [--threads 2] [--work DIR [--reuse]]

A plate entry ``WxH`` scales the shot's plate so its height fills H; ``WxH@S`` uses scale S instead (a face
larger than the canvas's share, e.g. ``3840x2160@6.5`` for a 1,500-pixel face). The face is centred on the
canvas. Re-plated shots are written under ``--work`` (default: a temporary folder, removed afterwards); they
link to the shot's own networks and crops rather than copying them.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np

#: film grain added to the re-plated frames: standard deviation of the multiplicative noise in linear light, and
#: the blur (plate pixels) that gives it a grain's size rather than single-pixel noise
GRAIN_SIGMA = 0.03
GRAIN_BLUR = 0.6
#: the tracking keys whose points are plate pixels (the mesh's third coordinate is depth, scaled too)
TRACKED_POINTS = ("landmarks5", "mesh")


def parse_plate(text: str, source_height: int) -> tuple[int, int, float]:
    """``WxH`` or ``WxH@S`` → (width, height, scale of the shot's plate)."""
    size, _, scale = text.partition("@")
    w, _, h = size.lower().partition("x")
    width, height = int(w), int(h)
    return width, height, float(scale) if scale else height / float(source_height)


def _similarity(scale: float, centre: np.ndarray, width: int, height: int) -> np.ndarray:
    """(3, 3) source plate pixel → canvas pixel: scale about the face centre, which lands mid-canvas."""
    tx = (width - 1) / 2.0 - scale * centre[0]
    ty = (height - 1) / 2.0 - scale * centre[1]
    return np.array([[scale, 0.0, tx], [0.0, scale, ty], [0.0, 0.0, 1.0]])


def _map_points(points: list, a: np.ndarray) -> list:
    p = np.asarray(points, np.float64)
    xy = p[:, :2] @ a[:2, :2].T + a[:2, 2]
    rest = p[:, 2:] * a[0, 0]
    return np.concatenate([xy, rest], axis=1).round(3).tolist()


def replate(shot_dir: Path, out_dir: Path, width: int, height: int, scale: float, frames: list[int]) -> Path:
    """A copy of the shot at ``frames`` whose plate is ``width``×``height`` (see the module docstring)."""
    from vq_models.detail import PlateFrames
    from vq_models.io.images import write_image
    from vq_models.io.sources import open_source
    from vq_models.shot import CropTransform, Shot, ShotLayout

    shot, out = Shot.open(shot_dir), ShotLayout(out_dir)
    rewritten = (out.meta_path, out.transforms_path, out.tracking_path)  # the rest links to the shot's own
    out_dir.mkdir(parents=True, exist_ok=True)
    for child in shot_dir.iterdir():
        if out_dir / child.name not in rewritten and not (out_dir / child.name).exists():
            (out_dir / child.name).symlink_to(child.resolve())
    tracking = json.loads(shot.tracking_path.read_text())
    centres = [np.asarray(tracking["frames"][str(f)]["landmarks5"], np.float64).mean(axis=0) for f in frames
               if str(f) in tracking["frames"]]
    a = _similarity(scale, np.median(centres, axis=0), width, height)

    plate_dir = out_dir / "plate"
    plate_dir.mkdir(exist_ok=True)
    meta = shot.plate
    source_path = PlateFrames(shot).source_path()  # the shot's plate, found the way the detail pass finds it
    if source_path is None:
        raise SystemExit(f"{shot_dir}: its plate source {meta.get('source')!r} is not readable")
    with open_source(str(source_path), colorspace=meta.get("colorspace") or None) as source:
        for f in frames:
            image = source.read(f)
            px = np.asarray(image.pixels[..., :3], np.float32)
            big = cv2.warpAffine(px, a[:2], (width, height), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)
            grain = np.random.default_rng(f).normal(0.0, GRAIN_SIGMA, (height, width, 1)).astype(np.float32)
            grain = cv2.GaussianBlur(grain, (0, 0), GRAIN_BLUR)[..., None] * (GRAIN_SIGMA / max(float(grain.std()), 1e-6))
            write_image(plate_dir / f"frame.{f:04d}.exr", np.maximum(big * (1.0 + grain), 0.0), dtype="half",
                        colorspace=image.colorspace)

    shot_meta = json.loads(shot.meta_path.read_text())
    shot_meta["frames"] = list(frames)
    shot_meta["plate"].update({"source": str((plate_dir / "frame.%04d.exr").resolve()), "kind": "sequence",
                               "frames": f"{frames[0]}-{frames[-1]}", "width": width, "height": height,
                               "display_window": [0, 0, width, height], "data_window": [0, 0, width, height]})
    out.meta_path.write_text(json.dumps(shot_meta, indent=2))

    inv = np.linalg.inv(a)
    transforms = {"version": 1, "frames": {}}
    for f in frames:
        tf = shot.transform(f)
        p2c = np.vstack([tf.plate_to_crop, [0.0, 0.0, 1.0]]) @ inv
        transforms["frames"][str(f)] = CropTransform.from_plate_to_crop(p2c[:2]).to_json()
    out.transforms_path.write_text(json.dumps(transforms))

    tracking["image_size"] = [width, height]
    for key, frame in list(tracking["frames"].items()):
        if int(key) not in frames:
            del tracking["frames"][key]
            continue
        for name in TRACKED_POINTS:
            if frame.get(name):
                frame[name] = _map_points(frame[name], a)
        frame["contours"] = {k: _map_points(v, a) for k, v in (frame.get("contours") or {}).items()}
    out.tracking_path.write_text(json.dumps(tracking))
    return out_dir


def face_pixels(model, frames: list[int]) -> float:
    """Median over ``frames`` of the tracked face oval's larger extent (width or height), plate pixels."""
    from vq_models.tracking.schema import load_tracking

    tracking = load_tracking(model.shot.tracking_path)
    sizes = []
    for f in frames:
        pts = np.asarray(tracking.frames[f].contours["face_oval"], np.float64)[:, :2]
        sizes.append(float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]))))
    return float(np.median(sizes))


def _timed_render(model, frame: int, program, mode: str):
    """Seconds for ``render_frame`` (what a render server spends on a frame, its plate read included) and the
    render (the host composites it; not timed)."""
    t0 = time.perf_counter()
    fr = model.render_frame(frame, program, mode=mode, detail="plate")
    return time.perf_counter() - t0, fr


def measure(shot_dir: Path, frames: list[int]) -> dict:
    """The module docstring's figures on one (re-plated) shot."""
    from vq_models.evaluation.checks import LocalityCount, on_window
    from vq_models.evaluation.plate import plate_metrics
    from vq_models.runtime import ShotModel

    program = {"version": 1, "edits": [{"op": "eye_open", "eye": "both", "value": 0.0}]}
    row: dict = {}
    model = ShotModel.load(shot_dir)
    model.render_frame(frames[0], None, mode="identity", detail="none")  # warm-up: networks, label maps
    row["identity_s"] = statistics.median(_timed_render(model, f, None, "identity")[0] for f in frames)
    model = ShotModel.load(shot_dir)  # cold plate cache again for the edit's timing
    model.render_frame(frames[0], None, mode="identity", detail="none")
    edit_s, locality = [], LocalityCount()
    for f in frames:
        seconds, fr = _timed_render(model, f, program, "edit-only")
        edit_s.append(seconds)
        plate = model.detail.plates.image(f)
        alpha = on_window(fr.alpha, plate.display_window, plate.data_window)
        locality.add(f, fr.composite(plate).pixels, plate.pixels, alpha)
    row["edit_s"] = statistics.median(edit_s)
    row["changed_outside_alpha"] = locality.differing
    fresh = ShotModel.load(shot_dir)
    fresh.render_frame(frames[0], None, mode="identity", detail="none")  # networks and label maps loaded
    tracemalloc.start()
    fresh.render_frame(frames[-1], program, mode="edit-only", detail="plate")
    row["peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    row["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    metrics = plate_metrics(model, frames, lpips=False)
    row["ssim"] = metrics["ssim"]
    row["sharpness"] = metrics["sharpness"]
    row["face_px"] = face_pixels(model, frames)
    return row


def write_sheet(shot_dir: Path, path: Path) -> None:
    """The real-clip demo's plate contact sheet (``vq_models.demo.real_clip``) for a re-plated shot, at 1:1."""
    from vq_models.demo.real_clip import SHEET_EDITS, pick_frames, write_plate_sheet
    from vq_models.runtime import ShotModel

    model = ShotModel.load(shot_dir)
    picks = pick_frames(model)
    rows = [(name, picks[part], {"version": 1, "edits": [edit]}) for name, (part, edit) in SHEET_EDITS.items()]
    write_plate_sheet(model, rows, path, height=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shot", type=Path, help="trained shot directory (default: train the quick demo's)")
    parser.add_argument("--plates", default="512x512,1920x1080,3840x2160", help="plate sizes WxH[@scale]")
    parser.add_argument("--frames", type=int, default=6, help="measured frames, spread over the span (default 6)")
    parser.add_argument("--span", type=int, default=24,
                        help="the shot's first SPAN frames are re-plated (detail donors come from them; default 24)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--work", type=Path, help="keep the re-plated shots here (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true", help="with --work: keep re-plated shots already there")
    parser.add_argument("--sheet", type=Path, help="write the last plate's contact sheet here, one sheet pixel per "
                        "plate pixel: eyes closed, gaze, teeth removed (plate | plate detail | bare render | alpha)")
    args = parser.parse_args()

    import torch

    from vq_models.shot import Shot, ShotLayout

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        if args.shot is None:
            from render_speed import _tiny_shot

            args.shot = _tiny_shot(work / "demo")
        shot = Shot.open(args.shot)
        # a plate sequence has no gaps, and every re-plated frame may lend detail: a contiguous span
        span = shot.frames[:args.span]
        frames = [span[int(i)] for i in np.linspace(0, len(span) - 1, args.frames).round()]
        source_height = int(shot.plate.get("height") or shot.plate["display_window"][3])
        results = []
        for entry in args.plates.split(","):
            width, height, scale = parse_plate(entry.strip(), source_height)
            t0 = time.perf_counter()
            out = work / f"plate_{width}x{height}_{scale:g}"
            if not (args.reuse and ShotLayout(out).meta_path.is_file()):
                out = replate(args.shot, out, width, height, scale, span)
            row = {"plate": f"{width}x{height}", "scale": scale, "replate_s": time.perf_counter() - t0,
                   **measure(out, frames)}
            results.append(row)
            print(f"{row['plate']:>10} scale {scale:5.2f}: face {row['face_px']:6.0f} px | identity "
                  f"{row['identity_s']:.2f} s, edit {row['edit_s']:.2f} s a frame | peak {row['peak_mib']:.0f} MiB "
                  f"(process {row['max_rss_mib']:.0f} MiB) | "
                  f"SSIM {row['ssim']:.3f}, sharpness {row['sharpness']:.2f} | changed outside alpha "
                  f"{row['changed_outside_alpha']} px", flush=True)
        if args.sheet is not None:
            write_sheet(out, args.sheet)
            print(f"contact sheet at plate pixels: {args.sheet}")
    print("plate_scale " + "; ".join(f"{r['plate']} face {r['face_px']:.0f}px: {r['identity_s']:.2f}/{r['edit_s']:.2f} s "
                                     f"{r['peak_mib']:.0f} MiB SSIM {r['ssim']:.3f} sharp {r['sharpness']:.2f}"
                                     for r in results))


if __name__ == "__main__":
    main()
