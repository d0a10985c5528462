""":func:`run_demo`: synth → prep → Stage I → Stage II → prior → server render → metrics → movie + sheet.

Trained models are expensive and the outputs are cheap, so a re-run reuses the shot and its models when
``OUT/demo_state.json`` says they were trained with the same training-relevant settings (``--retrain``
forces a fresh run); rendering, metrics and outputs always run again.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vq_models.config import load_config
from vq_models.demo.config import DEMO_PRESETS, DemoConfig, describe, fingerprint
from vq_models.demo.steps import StepRunner
from vq_models.io.atomic import atomic_write_json
from vq_models.shot import ShotLayout

MODEL_NAME = "demo"
STEPS = 8


@dataclass
class DemoLayout:
    """Where everything goes under OUT."""

    root: Path

    @property
    def synth(self) -> Path:
        return self.root / "synth"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def shot(self) -> Path:
        return self.models / MODEL_NAME

    @property
    def plate_pattern(self) -> str:
        return str(self.synth / "plate" / "frame.%04d.exr")

    @property
    def out_pattern(self) -> str:
        return str(self.root / "{pass}" / "frame.%04d.exr")

    def comp(self, frame: int) -> Path:
        return self.root / "comp" / f"frame.{frame:04d}.exr"

    def render(self, frame: int) -> Path:
        return self.root / "render" / f"frame.{frame:04d}.exr"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / "demo_state.json"


@dataclass
class DemoResult:
    """What the demo wrote and measured."""

    out: Path
    frames: list[int]
    outputs: dict[str, str]
    metrics: dict[str, Any]
    reused: bool
    timings: dict[str, float] = field(default_factory=dict)


def resolve_config(quick: bool, overrides: list[str] | tuple[str, ...] = ()) -> DemoConfig:
    """``--quick`` → the ``tiny`` demo preset, else ``cpu``; then ``KEY=VALUE`` overrides."""
    return load_config(DEMO_PRESETS, "tiny" if quick else "cpu", None, list(overrides))


def _can_reuse(layout: DemoLayout, config: DemoConfig) -> bool:
    if not layout.state.is_file():
        return False
    try:
        state = json.loads(layout.state.read_text())
    except json.JSONDecodeError:
        return False
    return (state.get("fingerprint") == fingerprint(config)
            and ShotLayout(layout.shot).stage2_meta_path.is_file()
            and ShotLayout(layout.shot).stage1_meta_path.is_file()
            and ShotLayout(layout.shot).prior_path.is_file()
            and (layout.synth / "tracking.json").is_file())


def _run_command(argv: list[str]) -> None:
    """Run a ``vqedit`` sub-command in-process (its user errors propagate as VQEditError)."""
    from vq_models.cli import build_parser

    args = build_parser().parse_args(argv)
    args._run(args)


def run_demo(out: str | Path, config: DemoConfig, *, retrain: bool = False, progress: bool = True,
             device: str = "cpu", preset_name: str = "") -> DemoResult:
    """Run the whole demo into ``out``; raises :class:`~vq_models.demo.steps.DemoStepFailed` on a failure."""
    import torch

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    layout = DemoLayout(Path(out))
    layout.root.mkdir(parents=True, exist_ok=True)
    runner = StepRunner(layout.logs, STEPS)
    reuse = not retrain and _can_reuse(layout, config)
    t_start = time.perf_counter()

    # 1-4: footage and models --------------------------------------------------------------------------
    with runner.step("synth", f"synthetic shot, {config.frames} frames at {config.size}x{config.size}, scene-linear EXR"):
        if reuse:
            runner.say(f"      reusing {layout.synth} (--retrain to start over)")
        else:
            from vq_models.synth.writer import write_synth_shot

            for old in (layout.synth, layout.models, layout.root / "comp", layout.root / "render"):
                if old.exists():
                    shutil.rmtree(old)
            layout.state.unlink(missing_ok=True)
            write_synth_shot(layout.synth, config.frames, config.size, config.seed, config.start,
                             config.supersample, progress=progress)
    with runner.step("prep", f"align, mask and overlay into a {config.crop_size}px shot (tracking from the generator)"):
        if reuse:
            runner.say(f"      reusing {layout.shot}")
        else:
            import dataclasses

            from vq_models.face.prep import PRESETS, run_prep

            prep_cfg = dataclasses.replace(PRESETS[config.prep_preset], crop_size=config.crop_size)
            run_prep(layout.plate_pattern, layout.shot, config=prep_cfg, tracking_path=layout.synth / "tracking.json",
                     progress=progress)
    with runner.step("stage1", f"train Stage I (from-scratch StyleGAN prior + VQ), preset {config.stage1_preset} "
                     f"{' '.join(config.stage1_overrides)}"):
        if reuse:
            runner.say(f"      reusing trained Stage I in {layout.shot / 'stage1'}")
        else:
            from vq_models.train.stage1 import STAGE1_PRESETS, train_stage1

            cfg1 = load_config(STAGE1_PRESETS, config.stage1_preset, None, list(config.stage1_overrides))
            train_stage1(layout.shot, cfg1, device=device, progress=progress)
    with runner.step("stage2", f"train Stage II (SPADE renderer), preset {config.stage2_preset} "
                     f"{' '.join(config.stage2_overrides)}"):
        if reuse:
            runner.say(f"      reusing trained Stage II in {layout.shot / 'stage2'}")
        else:
            from vq_models.train.stage2 import load_stage2_config, train_stage2

            cfg2 = load_stage2_config(config.stage2_preset, None, list(config.stage2_overrides))
            train_stage2(layout.shot, cfg2, device=device, progress=progress)

    # 5: prior + exemplar -------------------------------------------------------------------------------
    exemplar = layout.root / "exemplar.png"
    with runner.step("prior", "auto-propose the artist prior and write the exemplar PNG"):
        if not reuse:
            _run_command(["prior", str(layout.shot), "--auto", "--force"])
            atomic_write_json(layout.state, {"fingerprint": fingerprint(config), "config": describe(config)})
        else:
            runner.say(f"      reusing {layout.shot / 'prior.json'}")
        _run_command(["exemplar", str(layout.shot), "--out", str(exemplar), "--size", "256"])
        facts, notes, program = _plan(layout)
        atomic_write_json(layout.root / "program.json", program)
        for note in notes:
            runner.say(f"      {note}")

    # 6-7: render through a real server, measure ----------------------------------------------------------
    from vq_models.demo.server import DemoServer

    server = DemoServer(layout.models, layout.logs / "render_server.log")
    try:
        with runner.step("render", "start a render server on a free loopback port; the headless host node renders "
                         "the keyframed edit program (comp + RGBA passes)"):
            from host_plugin.farm import render_range

            address = server.start()
            runner.say(f"      render server listening on {address}")
            report = render_range(address, MODEL_NAME, facts.frames, layout.out_pattern, program=program,
                                  feather=config.feather, mode="edit-only", chunk=config.chunk,
                                  passes=("comp", "render"), plate_source=layout.plate_pattern, progress=progress,
                                  timeout=300.0)
            runner.say(f"      {report.summary()}")
        with runner.step("measure", "metrics: held-out reconstruction, plate-resolution identity, edits vs what-if "
                         "frames, locality"):
            metrics = _measure(layout, config, facts, address, report.frames)
            code = server.stop()
            if code != 0:
                raise RuntimeError(f"render server exited with code {code} on shutdown (see {server.log_path})")
            runner.say("      render server shut down cleanly")
    finally:
        server.stop()

    # 8: what a person looks at ---------------------------------------------------------------------------
    outputs = {"comp": str(layout.root / "comp" / "frame.%04d.exr"), "render": str(layout.root / "render" / "frame.%04d.exr"),
               "exemplar": str(exemplar), "program": str(layout.root / "program.json"),
               "shot": str(layout.shot), "logs": str(layout.logs)}
    with runner.step("outputs", "before/after movie, contact sheet, metrics JSON"):
        movie, sheet = _write_views(layout, config, facts.frames, metrics["locality"]["frames_with_edits"])
        outputs["before_after"] = str(movie)
        outputs["contact_sheet"] = str(sheet)
        outputs["metrics"] = str(layout.root / "metrics.json")
        metrics.update({
            "version": 1, "preset": preset_name, "frames": len(facts.frames), "reused_models": reuse,
            "program_notes": notes, "config": describe(config), "outputs": outputs,
        })
    metrics["timings_s"] = dict(runner.timings, total=round(time.perf_counter() - t_start, 2))
    from vq_models.metrics import json_safe

    atomic_write_json(layout.root / "metrics.json", json_safe(metrics))
    return DemoResult(layout.root, facts.frames, outputs, metrics, reuse, runner.timings)


def _plan(layout: DemoLayout):  # noqa: ANN202 - (ShotFacts, notes, program)
    """Probe the prior's usable ops on the middle frame and build the demo's program."""
    from vq_models.demo.program import demo_program
    from vq_models.edits.prior import load_prior
    from vq_models.evaluation.programs import ShotFacts, probe_frames, usable_ops
    from vq_models.shot import Shot
    from vq_models.tracking.schema import load_tracking

    shot = Shot.open(layout.shot)
    prior = load_prior(shot.prior_path)
    tracking = load_tracking(shot.tracking_path)
    contours = {f: {k: np.asarray(v) for k, v in (t.contours or {}).items()} for f, t in tracking.frames.items()}
    facts = ShotFacts(frames=shot.frames, contours=contours, skin="skin" in prior.segments)
    facts.usable = usable_ops(layout.shot, prior, probe_frames(shot.frames))
    program, notes = demo_program(facts)
    if not program["edits"]:
        from vq_models.errors import VQEditError

        raise VQEditError(f"{shot.prior_path}: the prior supports none of the demo's edits ({'; '.join(notes)})")
    return facts, notes, program


def _measure(layout: DemoLayout, config: DemoConfig, facts: Any, address: str, frames: list[int]) -> dict[str, Any]:
    from host_plugin.node import EditKnobs, EditNode
    from vq_models.evaluation import locality_of_files, measure_whatifs, reconstruction

    meta = json.loads(ShotLayout(layout.shot).stage2_meta_path.read_text())

    def node_factory(program: dict[str, Any]) -> EditNode:
        return EditNode(EditKnobs(server=address, model=MODEL_NAME, edits=program["edits"], feather=config.feather,
                                  mode="edit-only", timeout=300.0))

    from vq_models.evaluation.plate import plate_metrics
    from vq_models.runtime import ShotModel

    spread = sorted({frames[int(i)] for i in np.linspace(0, len(frames) - 1, min(8, len(frames))).round()})
    plate = plate_metrics(ShotModel.load(layout.shot), spread)
    plate.pop("per_frame", None)
    return {
        "reconstruction": reconstruction(meta, config.min_ssim, config.min_psnr),
        "plate_resolution": plate,
        "edits": measure_whatifs(node_factory, layout.synth, facts, config.measure_frames),
        "locality": locality_of_files([layout.comp(f) for f in frames], [layout.render(f) for f in frames],
                             layout.plate_pattern, frames),
    }


def _write_views(layout: DemoLayout, config: DemoConfig, frames: list[int], edited: list[int]) -> tuple[Path, Path]:
    from vq_models.demo.outputs import write_before_after, write_contact_sheet
    from vq_models.io.images import read_image as read_exr

    plates, comps = [], []
    for f in frames:
        plates.append(read_exr(layout.plate_pattern % f).full_frame())
        comps.append(read_exr(layout.comp(f)).full_frame())
    movie = write_before_after(layout.root / "before_after.mp4", plates, comps, config.fps)
    pool = edited or frames
    pick = sorted({pool[int(i)] for i in np.linspace(0, len(pool) - 1, min(config.contact_frames, len(pool))).round()})
    rows = []
    for f in pick:
        i = frames.index(f)
        alpha = read_exr(layout.render(f)).full_frame()[..., 3]
        rows.append((f, plates[i], comps[i], alpha))
    sheet = layout.root / "contact_sheet.png"
    write_contact_sheet(sheet, rows)
    return movie, sheet


def summary_table(result: DemoResult) -> str:
    """The short table printed at the end: metrics, then where every output is."""
    m = result.metrics
    rec = m["reconstruction"]
    loc = m["locality"]
    lines = ["", "vqedit demo: results", "-" * 64]
    ssim = f"{rec['ssim']:.3f}" if rec.get("ssim") is not None else "n/a"
    psnr = f"{rec['psnr_db']:.2f} dB" if rec.get("psnr_db") is not None else "n/a"
    lines.append(f"{'reconstruction (held-out, face crop)':40s} SSIM {ssim}  PSNR {psnr}  "
                 f"{'within bounds' if rec['within_bounds'] else 'BELOW bounds'}")
    pr = m.get("plate_resolution")
    if pr:
        lines.append(f"{'identity at plate resolution (face)':40s} SSIM {pr['ssim']:.3f}  sharpness {pr['sharpness']:.2f}  "
                     f"flicker {pr['flicker']:.4f}  ({pr['detail']} detail)")
    for name, e in m["edits"].items():
        if e.get("status") == "ok":
            lines.append(f"{'edit vs what-if ' + name:40s} {e['psnr_edit_db']:.2f} dB (plate {e['psnr_plate_db']:.2f} dB, "
                         f"{e['gain_db']:+.2f}) on {len(e['frames'])} frames")
        else:
            lines.append(f"{'edit vs what-if ' + name:40s} {e.get('status')}")
    lines.append(f"{'locality: differing px outside alpha':40s} {loc['differing_pixels_outside_alpha']} "
                 f"(of {loc['pixels_outside_alpha']}; {len(loc['frames_with_edits'])} frames edited)")
    t = m.get("timings_s", {})
    lines.append(f"{'time':40s} " + ", ".join(f"{k} {v:.0f}s" for k, v in t.items()))
    lines += ["-" * 64, "outputs:"]
    for key in ("comp", "render", "before_after", "contact_sheet", "exemplar", "metrics", "program", "shot", "logs"):
        if key in result.outputs:
            lines.append(f"  {key:14s} {result.outputs[key]}")
    return "\n".join(lines)
