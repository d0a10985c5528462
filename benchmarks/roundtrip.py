"""Round-trip cost of the render server versus rendering in process, on a real trained shot.

Measures, for 256² and 1024² plates, the median over ``--repeats`` runs of
  (a) in-process: ``ShotModel.render_frame`` + composite over the plate (what ``vqedit render`` does, with the
      malloc settings every ``vqedit`` command gets: ``vq_models.process.keep_freed_memory``), and
  (b) through the server: RenderClient → ``vqedit serve`` subprocess on loopback → payload → decode →
      composite (what ``EditNode.evaluate`` does on a host that composites in Python),
with a breakdown of both: (a) render and composite; (b) server render, payload encode (server side: the
premultiply into the payload's dtype and writing it), transfer (wall time of the request minus the server's own
time), decode and composite (host side), each a median. The payload is
``--format half`` by default (raw half floats of the render's box, what the host asks for), or ``exr``
(what the Nuke gizmo writes to disk) or ``raw`` (float32). The last line reads exactly
``roundtrip 1024: R.RRx in-process; 256: +M.M ms``.

The model is the test suite's tiny trained shot (built here once: synth → prep → Stage I/II tiny →
prior), served by the default loader. The plate size sets the payload, so the shot is staged twice with
its plate description and crop transforms rescaled to 256² and 1024² (the same trained weights render
the same crop; paste-back, alpha and the payload run at the staged plate size). The two measurements
alternate repeat by repeat, in alternating order, so a busy machine slows both alike.

``--runs N`` repeats the whole measurement N times, each with a fresh server process (the run-to-run spread,
not the spread within a run, is what decides whether a target holds); it prints each run's figures, the
spread, and the last line holds the median over the runs of each figure.

    .venv/bin/python benchmarks/roundtrip.py [--repeats 15] [--runs 1] [--shot DIR] [--format half|exr|raw]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Both sides get what `vqedit serve` sets for itself: OpenMP threads that sleep instead of spinning between
# parallel regions (on a shared 2-core machine the spinning of one process starves the other).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from host_plugin.client import RenderClient  # noqa: E402
from host_plugin.node import composite_over  # noqa: E402
from host_plugin.protocol import decode_array  # noqa: E402
from vq_models.io.images import ImageData, decode_image_bytes  # noqa: E402
from vq_models.process import keep_freed_memory  # noqa: E402
from vq_models.runtime import ShotModel  # noqa: E402
from vq_models.shot import ShotLayout  # noqa: E402

SIZES = (256, 1024)


def _rescaled(matrix: list[list[float]], k: float) -> list[list[float]]:
    """plate_to_crop for a plate scaled by ``k`` (pixel centres: p' = (p + 0.5) k - 0.5)."""
    m = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    unscale = np.array([[1 / k, 0, 0.5 / k - 0.5], [0, 1 / k, 0.5 / k - 0.5], [0, 0, 1]])
    return (m @ unscale)[:2].tolist()


def stage_shot(shot: Path, dst: Path, size: int) -> Path:
    """Copy ``shot`` with its plate declared ``size``² and the crop transforms rescaled to match (the plate's
    pixels are not needed: these benchmarks send their own plate with each request)."""
    shutil.copytree(shot, dst, ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    layout = ShotLayout(dst)
    meta = json.loads(layout.meta_path.read_text())
    old = int(meta["plate"]["display_window"][2])
    meta["plate"]["display_window"] = meta["plate"]["data_window"] = [0, 0, size, size]
    layout.meta_path.write_text(json.dumps(meta, indent=1))
    tf = json.loads(layout.transforms_path.read_text())
    for entry in tf["frames"].values():
        p2c = _rescaled(entry["plate_to_crop"], size / old)
        entry["plate_to_crop"] = p2c
        entry["crop_to_plate"] = np.linalg.inv(np.vstack([p2c, [0, 0, 1]]))[:2].tolist()
    layout.transforms_path.write_text(json.dumps(tf))
    return dst


def _decode(reply: dict, fmt: str) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The reply's premultiplied RGBA (float32) and its window, as the host decodes it."""
    if fmt == "exr":
        img = decode_image_bytes(reply["exr"])
        return img.pixels, tuple(img.data_window)
    return decode_array(reply["rgba"], "rgba", shm=True), tuple(reply["data_window"])  # float16 → float32 in the composite


WARMUP = 3  # model load on the server, first allocations, the composite's thread pool


def measure(models: Path, fmt: str, repeats: int) -> dict[int, tuple[float, float]]:
    """One run against a fresh server: {size: (in-process ms, via-server ms)}, medians of ``repeats``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "render_server", "--models", str(models), "--bind", "tcp://127.0.0.1:*",
         "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    results = {}
    try:
        address = proc.stdout.readline().strip().rsplit(" ", 1)[-1]  # type: ignore[union-attr]
        client = RenderClient(address, timeout=120, retries=0)
        for size in SIZES:
            name = f"bench{size}"
            model = ShotModel.load(models / name)
            frame = model.frames[len(model.frames) // 2]
            plate = np.random.default_rng(size).uniform(0, 1, (size, size, 3)).astype(np.float32)
            win = (0, 0, size, size)
            plate_img = ImageData(plate, ["R", "G", "B"], win, win, colorspace="lin_rec709")
            keys = ("in", "render", "in_comp", "via", "server", "encode", "transfer", "decode", "comp")
            parts: dict[str, list[float]] = {k: [] for k in keys}

            def in_process(model=model, plate_img=plate_img, frame=frame, parts=parts):
                t0 = time.perf_counter()
                fr = model.render_frame(frame, None, feather=8.0)
                t1 = time.perf_counter()
                fr.composite(plate_img)  # as `vqedit render`
                del fr
                t2 = time.perf_counter()
                parts["render"].append((t1 - t0) * 1e3)
                parts["in_comp"].append((t2 - t1) * 1e3)
                parts["in"].append((t2 - t0) * 1e3)

            def via_server(name=name, plate=plate, win=win, frame=frame, parts=parts):
                t0 = time.perf_counter()
                reply = client.render_frame(name, frame, feather=8.0, fmt=fmt, shm=client.same_host)
                t1 = time.perf_counter()
                rgba, rwin = _decode(reply, fmt)
                t2 = time.perf_counter()
                composite_over(rgba, rwin, plate, win)
                del rgba
                t3 = time.perf_counter()
                parts["server"].append(reply["elapsed_ms"] - reply["encode_ms"])
                parts["encode"].append(reply["encode_ms"])
                parts["transfer"].append((t1 - t0) * 1e3 - reply["elapsed_ms"])
                parts["decode"].append((t2 - t1) * 1e3)
                parts["comp"].append((t3 - t2) * 1e3)
                parts["via"].append((t3 - t0) * 1e3)

            for _ in range(WARMUP):
                in_process()
                via_server()
            for v in parts.values():
                v.clear()
            for i in range(repeats):  # alternate, in alternating order, so load on the machine hits both alike
                for fn in (in_process, via_server) if i % 2 == 0 else (via_server, in_process):
                    fn()
            med = {k: statistics.median(v) for k, v in parts.items()}
            results[size] = (med["in"], med["via"])
            print(f"{size}²: in-process {med['in']:.1f} ms = render {med['render']:.1f} + composite "
                  f"{med['in_comp']:.2f}; via server {med['via']:.1f} ms ({fmt}) = server render {med['server']:.1f} + encode "
                  f"{med['encode']:.2f} + transfer {med['transfer']:.2f} + decode {med['decode']:.2f} + composite "
                  f"{med['comp']:.2f} ms (medians of {repeats})", flush=True)
        client.close()
    finally:
        proc.terminate()
        proc.wait(10)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--runs", type=int, default=1, help="whole measurements, each with a fresh server (default 1)")
    ap.add_argument("--shot", help="a trained shot to use (default: build the tiny test shot)")
    ap.add_argument("--format", choices=("half", "exr", "raw"), default="half")
    args = ap.parse_args()
    # the in-process side runs with the process settings every `vqedit` command gets (cli.main), as `vqedit render`
    keep_freed_memory()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    ratios, deltas = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.shot:
            shot = Path(args.shot)
        else:
            from conftest import build_tiny_shot

            shot = build_tiny_shot(root / "build")
        models = root / "models"
        for size in SIZES:
            stage_shot(shot, models / f"bench{size}", size)
        for run in range(max(1, args.runs)):
            results = measure(models, args.format, args.repeats)
            (a1, b1), (a2, b2) = results[1024], results[256]
            ratios.append(b1 / a1)
            deltas.append(b2 - a2)
            if args.runs > 1:
                print(f"run {run + 1}: roundtrip 1024: {b1 / a1:.2f}x in-process; 256: {b2 - a2:+.1f} ms", flush=True)
    if len(ratios) > 1:
        print(f"over {len(ratios)} runs: 1024: {min(ratios):.2f}-{max(ratios):.2f}x "
              f"(median {statistics.median(ratios):.2f}x); 256: {min(deltas):+.1f} to {max(deltas):+.1f} ms "
              f"(median {statistics.median(deltas):+.1f})")
    print(f"roundtrip 1024: {statistics.median(ratios):.2f}x in-process; 256: {statistics.median(deltas):+.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
