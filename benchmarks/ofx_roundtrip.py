"""The OpenFX plug-in's round trip per frame versus ``EditNode.evaluate`` alone, on the same frame.

(a) ``EditNode.evaluate(frame, plate)``: request → render server → reply → composite, in this process
    (what the farm and the bridge run);
(b) the compiled VQFaceEdit plug-in's render action, as a host sees it: the ctypes test host
    (tests/ofx_host/host.py) hands it a float RGB Source and an Output image; the plug-in packs the pixels
    into shared memory, the bridge process runs (a) on them and the plug-in copies the result out.
Both at 1024² and 256² plates (the tiny test shot staged at that plate size, as benchmarks/roundtrip.py
does), alternating (a) and (b), median of ``--repeats``. The last line reads
``ofx_roundtrip 1024: R.RRx EditNode.evaluate (plug-in P ms, evaluate E ms); 256: +M.M ms``.

    .venv/bin/python benchmarks/ofx_roundtrip.py [--repeats 15] [--shot DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "ofx_host")]

from host import OfxHost  # noqa: E402
from roundtrip import stage_shot  # noqa: E402  (the same staged plate sizes as the server round trip)
from server_fixtures import ServerProcess  # noqa: E402

from host_plugin.node import EditKnobs, EditNode, Plate  # noqa: E402
from vq_models.shot import Shot  # noqa: E402

SIZES = (1024, 256)


def build(root: Path) -> Path:
    proc = subprocess.run(["cmake", "-S", str(REPO / "host_plugin" / "ofx"), "-B", str(root / "ofx"),
                           f"-DVQEDIT_PYTHON={sys.executable}", "-DCMAKE_BUILD_TYPE=Release"], capture_output=True, text=True)
    proc2 = subprocess.run(["cmake", "--build", str(root / "ofx"), "-j", "2"], capture_output=True, text=True)
    if proc.returncode or proc2.returncode:
        raise SystemExit(f"build failed:\n{proc.stderr}{proc2.stdout[-2000:]}{proc2.stderr}")
    return root / "ofx" / "VQFaceEdit.ofx.bundle" / "Contents" / "Linux-x86-64" / "VQFaceEdit.ofx"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--shot", help="a trained shot (default: build the tiny test shot)")
    ap.add_argument("--binary", help="an already built VQFaceEdit.ofx (default: build one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.shot:
            shot = Path(args.shot)
        else:
            from conftest import build_tiny_shot

            shot = build_tiny_shot(root / "shot")
        binary = build(root) if not args.binary else Path(args.binary)
        models = root / "models"
        for size in SIZES:
            stage_shot(shot, models / f"bench{size}", size)
        server = ServerProcess(models, "--workers", "1")
        results: dict[int, tuple[float, float]] = {}
        try:
            frame = Shot.open(shot).frames[1]
            for size in SIZES:
                plate = np.random.default_rng(size).uniform(0, 1, (size, size, 3)).astype(np.float32)
                node = EditNode(EditKnobs(server=server.address, model=f"bench{size}", feather=8.0))
                host = OfxHost(str(binary), project=(size, size))
                host.load()
                host.describe()
                host.describe_in_context("OfxImageEffectContextFilter")
                inst = host.create_instance("OfxImageEffectContextFilter")
                for name, value in (("server", server.address), ("model", f"bench{size}"), ("feather", 8.0)):
                    host.set_param(inst, name, value)
                host.connect(inst, "Source", plate, negative_rows=True)  # top-down memory: no host-side copy
                window = (0, 0, size, size)
                direct, plugin = [], []
                for i in range(args.repeats + 2):
                    t0 = time.perf_counter()
                    node.evaluate(frame, Plate(plate, window, window))
                    dt = time.perf_counter() - t0
                    st, _ = host.render(inst, float(frame), out_negative_rows=True)
                    if st != 0:
                        raise SystemExit(f"plug-in render failed: {host.persistent_message(inst)}")
                    if i >= 2:  # warm-up: bridge start, model load, first allocations
                        direct.append(dt * 1e3)
                        plugin.append(host.last_render_s * 1e3)
                d, p = statistics.median(direct), statistics.median(plugin)
                pair = statistics.median(a / b for a, b in zip(plugin, direct, strict=True))  # neighbours share the load
                results[size] = (p, d, pair)
                print(f"{size}²: plug-in render action {p:.1f} ms (spread {min(plugin):.1f}-{max(plugin):.1f}), "
                      f"EditNode.evaluate {d:.1f} ms (spread {min(direct):.1f}-{max(direct):.1f}), "
                      f"median ratio of neighbouring runs {pair:.2f}x", flush=True)
                host.destroy_instance(inst)
                host.unload()
                node.close()
        finally:
            server.stop()
    p1, d1, _ = results[1024]
    p2, d2, _ = results[256]
    print(f"ofx_roundtrip 1024: {p1 / d1:.2f}x EditNode.evaluate (plug-in {p1:.1f} ms, evaluate {d1:.1f} ms); "
          f"256: {p2 - d2:+.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
