"""`vqedit demo --quick` end to end through the CLI: real synth, training, render server and host node.

One module-scoped run (the expensive part) feeds several checks; a second run checks reuse, a third one
with a broken model checks the failure report. Everything is real: files, a server subprocess on a
loopback port, training steps on tiny models.
"""

from __future__ import annotations

import json
import math
import time

import cv2
import numpy as np
import pytest

from vq_models.cli import main
from vq_models.demo.config import DEMO_PRESETS
from vq_models.io.images import read_image

pytestmark = pytest.mark.timeout(300)

QUICK = DEMO_PRESETS["tiny"]
FRAMES = [QUICK.start + i for i in range(QUICK.frames)]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("demo") / "out"
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    t0 = time.perf_counter()
    with redirect_stdout(buf):
        rc = main(["demo", "--quick", "--out", str(out), "--no-progress"])
    seconds = time.perf_counter() - t0
    return out, rc, buf.getvalue(), seconds


def test_quick_demo_writes_every_output(demo_run):
    out, rc, text, seconds = demo_run
    assert rc == 0, text
    assert seconds < 120, f"--quick took {seconds:.0f}s"
    comps = sorted((out / "comp").glob("frame.*.exr"))
    renders = sorted((out / "render").glob("frame.*.exr"))
    assert [p.name for p in comps] == [f"frame.{f:04d}.exr" for f in FRAMES]
    assert [p.name for p in renders] == [p.name for p in comps]
    rgba = read_image(renders[0])
    assert [c.upper() for c in rgba.channels] == ["R", "G", "B", "A"]
    assert read_image(comps[0]).full_frame().shape[:2] == (QUICK.size, QUICK.size)
    for key in ("comp", "render", "before_after", "contact_sheet", "exemplar", "metrics"):
        assert key in text  # the closing table says where everything is


def test_metrics_present_finite_and_within_bounds(demo_run):
    out, rc, _, _ = demo_run
    m = json.loads((out / "metrics.json").read_text())
    rec = m["reconstruction"]
    assert math.isfinite(rec["ssim"]) and math.isfinite(rec["psnr_db"]) and rec["frames"]
    assert rec["ssim"] >= QUICK.min_ssim and rec["psnr_db"] >= QUICK.min_psnr and rec["within_bounds"]
    eyes = m["edits"]["eyes_closed"]
    assert eyes["status"] == "ok" and eyes["frames"]
    assert math.isfinite(eyes["psnr_edit_db"]) and math.isfinite(eyes["psnr_plate_db"])
    assert eyes["psnr_edit_db"] > eyes["psnr_plate_db"]  # closing the eyes moves the frame toward the what-if
    for name in ("no_teeth", "mouth_closed"):
        assert name in m["edits"] and m["edits"][name]["status"]
    plate = m["plate_resolution"]  # what the compositor sees: the composite in the plate's own pixels
    assert plate["detail"] == "plate" and 0.9 < plate["ssim"] <= 1.0 and 0.5 < plate["sharpness"] < 1.5
    assert plate["flicker"] >= 0
    loc = m["locality"]
    assert loc["differing_pixels_outside_alpha"] == 0
    assert loc["pixels_inside_alpha"] > 0 and loc["frames_with_edits"]
    assert set(m["timings_s"]) >= {"synth", "prep", "stage1", "stage2", "prior", "render", "measure", "total"}


def test_composite_equals_plate_outside_alpha_and_changes_inside(demo_run):
    out, _, _, _ = demo_run
    m = json.loads((out / "metrics.json").read_text())
    f = m["locality"]["frames_with_edits"][0]
    comp = read_image(out / "comp" / f"frame.{f:04d}.exr").full_frame()
    plate = read_image(out / "synth" / "plate" / f"frame.{f:04d}.exr").full_frame()
    alpha = read_image(out / "render" / f"frame.{f:04d}.exr").full_frame()[..., 3]
    assert np.array_equal(comp[alpha == 0][:, :3], plate[alpha == 0][:, :3])
    assert np.abs(comp[alpha > 0.5][:, :3] - plate[alpha > 0.5][:, :3]).max() > 1e-3


def test_movie_and_contact_sheet_decode(demo_run):
    out, _, _, _ = demo_run
    movie = out / "before_after.mp4"
    if movie.is_file():
        cap = cv2.VideoCapture(str(movie))
        count = 0
        size = None
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            count += 1
            size = frame.shape[:2]
        cap.release()
        assert count == len(FRAMES)
    else:
        gif = read_image(out / "before_after.gif")
        size, count = gif.pixels.shape[:2], len(FRAMES)
    assert size is not None and size[1] == 2 * size[0]  # plate | edited, square frames side by side
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] > 4 * QUICK.size and sheet.shape[0] > QUICK.size
    assert cv2.imread(str(out / "exemplar.png")) is not None


def test_second_run_reuses_models_and_a_broken_model_names_the_step(demo_run):
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, _, _, first = demo_run
    stamp = (out / "models" / "demo" / "stage2" / "model.safetensors").stat().st_mtime_ns
    buf = io.StringIO()
    t0 = time.perf_counter()
    with redirect_stdout(buf):
        assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    second = time.perf_counter() - t0
    assert "reusing" in buf.getvalue()
    assert (out / "models" / "demo" / "stage2" / "model.safetensors").stat().st_mtime_ns == stamp
    assert second < first
    # a corrupt Stage II model: the render step fails, says why and where its log is
    (out / "models" / "demo" / "stage2" / "model.safetensors").write_bytes(b"not a safetensors file")
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        rc = main(["demo", "--quick", "--out", str(out), "--no-progress"])
    line = err.getvalue().strip().splitlines()[-1]
    assert rc != 0
    assert line.startswith("demo: step 6 (render) failed: ") and line.endswith(f"(log: {out / 'logs' / 'render.log'})")
    assert "failed after" in (out / "logs" / "render.log").read_text()


def test_fingerprint_follows_the_trainer_presets_not_only_the_overrides(monkeypatch):
    """A demo folder trained before a preset changed must not be reused (its models are stale)."""
    import dataclasses

    from vq_models.demo.config import DEMO_PRESETS, fingerprint
    from vq_models.train import stage1

    cfg = DEMO_PRESETS["cpu"]
    before = fingerprint(cfg)
    assert fingerprint(cfg) == before  # stable
    changed = dict(stage1.STAGE1_PRESETS)
    changed["cpu"] = dataclasses.replace(changed["cpu"], encoder_channels=changed["cpu"].encoder_channels + 1)
    monkeypatch.setattr(stage1, "STAGE1_PRESETS", changed)
    assert fingerprint(cfg) != before
