"""Round-trip cost of the render server versus rendering in process, on a real trained shot.

Measures, for 256² and 1024² plates, the median time of
  (a) in-process: ``ShotModel.render_frame`` + composite over the plate (what ``vqedit render`` does), and
  (b) through the server: RenderClient → ``vqedit serve`` subprocess on loopback → payload → decode →
      composite (the same host-side composite an EditNode does),
and prints the ratio at 1024² and the added milliseconds at 256². The last line reads exactly
``roundtrip 1024: R.RRx in-process; 256: +M.M ms``.

The model is the test suite's tiny trained shot (built here once: synth → prep → Stage I/II tiny →
prior), served by the default loader. The plate size sets the payload, so the shot is staged twice with
its plate description and crop transforms rescaled to 256² and 1024² (the same trained weights render
the same crop; paste-back, alpha and the EXR payload run at the staged plate size). ``--format raw``
measures the raw float32 array reply instead of EXR; ``--breakdown`` times the EXR encode/decode alone.

    .venv/bin/python benchmarks/roundtrip.py [--repeats 10] [--shot DIR] [--format exr|raw] [--breakdown]
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

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from host_plugin.client import RenderClient  # noqa: E402
from host_plugin.node import composite_over  # noqa: E402
from host_plugin.protocol import decode_array  # noqa: E402
from vq_models.io.images import ImageData, decode_image_bytes  # noqa: E402
from vq_models.runtime import ShotModel  # noqa: E402

SIZES = (256, 1024)


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (imports, model load, first allocation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _rescaled(matrix: list[list[float]], k: float) -> list[list[float]]:
    """plate_to_crop for a plate scaled by ``k`` (pixel centres: p' = (p + 0.5) k - 0.5)."""
    m = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    unscale = np.array([[1 / k, 0, 0.5 / k - 0.5], [0, 1 / k, 0.5 / k - 0.5], [0, 0, 1]])
    return (m @ unscale)[:2].tolist()


def stage_shot(shot: Path, dst: Path, size: int) -> Path:
    """Copy ``shot`` with its plate declared ``size``² and the crop transforms rescaled to match."""
    shutil.copytree(shot, dst, ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    meta = json.loads((dst / "shot.json").read_text())
    old = int(meta["plate"]["display_window"][2])
    meta["plate"]["display_window"] = meta["plate"]["data_window"] = [0, 0, size, size]
    (dst / "shot.json").write_text(json.dumps(meta, indent=1))
    tf = json.loads((dst / "transforms.json").read_text())
    for entry in tf["frames"].values():
        p2c = _rescaled(entry["plate_to_crop"], size / old)
        entry["plate_to_crop"] = p2c
        entry["crop_to_plate"] = np.linalg.inv(np.vstack([p2c, [0, 0, 1]]))[:2].tolist()
    (dst / "transforms.json").write_text(json.dumps(tf))
    return dst


def _breakdown(model: ShotModel, frame: int) -> str:
    from render_server.handlers import wire_exr

    fr = model.render_frame(frame, None, feather=8.0)
    image = fr.rgba_image()  # what the server sends: the render's bounding box
    data = wire_exr(image)
    enc = _median_ms(lambda: wire_exr(image), 5)
    dec = _median_ms(lambda: decode_image_bytes(data), 5)
    render = _median_ms(lambda: model.render_frame(frame, None, feather=8.0), 5)
    return f"render_frame {render:.1f} ms, EXR encode {enc:.1f} ms, decode {dec:.1f} ms, {len(data) / 2**20:.1f} MiB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--shot", help="a trained shot to use (default: build the tiny test shot)")
    ap.add_argument("--format", choices=("exr", "raw"), default="exr")
    ap.add_argument("--breakdown", action="store_true", help="also time EXR encode/decode on their own")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
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

                def in_process(model=model, plate_img=plate_img, frame=frame):
                    return model.render_frame(frame, None, feather=8.0).composite(plate_img)  # as `vqedit render`

                def via_server(name=name, plate=plate, win=win, frame=frame):
                    reply = client.render_frame(name, frame, feather=8.0, fmt=args.format)
                    if args.format == "raw":
                        return composite_over(decode_array(reply["rgba"], "rgba"), tuple(reply["data_window"]), plate, win)
                    img = decode_image_bytes(reply["exr"])
                    return composite_over(img.pixels, img.data_window, plate, win)

                a = _median_ms(in_process, args.repeats)
                b = _median_ms(via_server, args.repeats)
                server_ms = client.render_frame(name, frame, fmt=args.format)["elapsed_ms"]
                results[size] = (a, b)
                print(f"{size}²: in-process {a:.1f} ms, via server {b:.1f} ms ({args.format}; server-side render"
                      f"{' + EXR encode' if args.format == 'exr' else ''} {server_ms:.1f} ms)")
                if args.breakdown:
                    print(f"  {size}²: {_breakdown(model, frame)}")
            client.close()
        finally:
            proc.terminate()
            proc.wait(10)
    a1, b1 = results[1024]
    a2, b2 = results[256]
    print(f"roundtrip 1024: {b1 / a1:.2f}x in-process; 256: +{b2 - a2:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
