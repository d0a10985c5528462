"""Round-trip cost of the render server versus rendering in process.

Measures, for 256² and 1024² plates, the median time of
  (a) in-process: ``model.render_frame`` + composite over the plate, and
  (b) through the server: RenderClient → ``vqedit serve`` subprocess on loopback → EXR bytes → decode →
      composite,
and prints the ratio at 1024² and the added milliseconds at 256². The last line reads exactly
``roundtrip 1024: R.RRx in-process; 256: +M.M ms``.

By default it uses the deterministic test backend (tests/server_backend.py), whose "render" is cheap
numpy — so the ratio is an upper bound on the overhead relative to a real Stage II forward pass. Point
``--models DIR --model NAME --backend module:callable`` at trained shots to measure the real thing.

    .venv/bin/python benchmarks/roundtrip.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import os
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
from render_server.exr import decode_exr_bytes  # noqa: E402
from render_server.models import resolve_loader  # noqa: E402


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (imports, model load, first allocation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _stage_models(root: Path) -> None:
    import server_backend

    for size in (256, 1024):
        server_backend.write_model(
            root / f"bench{size}", label_size=64, render_size=256, num_codes=64, frames=[1],
            plate={"width": size, "height": size, "display_window": [0, 0, size, size],
                   "data_window": [0, 0, size, size], "colorspace": "lin_rec709", "pixel_aspect": 1.0},
            crop_box=[size // 8, size // 8, size * 3 // 4],
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--models", help="models folder (default: staged test-backend models)")
    ap.add_argument("--backend", default="server_backend:load")
    ap.add_argument("--frame", type=int, default=1)
    args = ap.parse_args()
    loader = resolve_loader(args.backend)
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(args.models) if args.models else Path(tmp)
        if not args.models:
            _stage_models(models)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))
        proc = subprocess.Popen(
            [sys.executable, "-m", "render_server", "--models", str(models), "--bind", "tcp://127.0.0.1:*",
             "--backend", args.backend, "--workers", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )
        try:
            address = proc.stdout.readline().strip().rsplit(" ", 1)[-1]  # type: ignore[union-attr]
            client = RenderClient(address, timeout=120, retries=0)
            results = {}
            for size in (256, 1024):
                name = f"bench{size}"
                model = loader(models / name, "cpu")
                plate = np.random.default_rng(size).uniform(0, 1, (size, size, 3)).astype(np.float32)
                win = (0, 0, size, size)

                def in_process(model=model, plate=plate, win=win):
                    fr = model.render_frame(args.frame, None, feather=8.0)
                    return composite_over(fr.rgba, tuple(fr.data_window), plate, win)

                def via_server(name=name, plate=plate, win=win):
                    reply = client.render_frame(name, args.frame, feather=8.0)
                    img = decode_exr_bytes(reply["exr"])
                    return composite_over(img.pixels, img.data_window, plate, win)

                a = _median_ms(in_process, args.repeats)
                b = _median_ms(via_server, args.repeats)
                server_ms = client.render_frame(name, args.frame)["elapsed_ms"]
                results[size] = (a, b)
                print(f"{size}²: in-process {a:.1f} ms, via server {b:.1f} ms "
                      f"(server-side render+EXR encode {server_ms:.1f} ms)")
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
