"""Write a synthetic shot: plate EXRs, ground-truth labels, tracking, what-if frames and a preview.

Layout (see docs/synth.md)::

    OUT/plate/frame.%04d.exr            scene-linear half, lin_rec709 (drawn in sRGB, then converted)
    OUT/labels/frame.%04d.png           uint8 part ids (parts.json)
    OUT/parts.json                      {"version": 1, "parts": {"background": 0, ...}}
    OUT/tracking.json                   landmarks5 + contours per frame, from the exact geometry, and a
                                        478-point MediaPipe-topology mesh fitted to it (synth/mesh.py)
    OUT/states.json                     the per-frame parametric state (the ground truth behind it all)
    OUT/whatif/NAME/frame.%04d.exr      the same state with one field changed (same noise)
    OUT/whatif/NAME/labels/frame.%04d.png
    OUT/preview.png                     contact sheet for a person to look at
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vq_models.io.atomic import atomic_write_json
from vq_models.synth.draw import SynthFrame, render, render_whatif
from vq_models.synth.face_model import PARTS, FaceState
from vq_models.synth.mesh import synth_mesh
from vq_models.synth.performance import WHATIFS, performance
from vq_models.tracking.schema import FrameTrack, Tracking, save_tracking

FRAME = "frame.{:04d}"
PLATE_COLORSPACE = "lin_rec709"
#: OpenImageIO stamps EXRs with the write time; a fixed stamp keeps a seed's files bit-identical.
FIXED_DATETIME = "2000:01:01 00:00:00"

#: Display colours for the part ids (preview only).
PART_COLOURS = np.array(
    [
        [0, 0, 0], [120, 70, 40], [230, 180, 150], [90, 50, 30], [200, 120, 200], [245, 245, 245],
        [40, 160, 60], [10, 10, 90], [250, 140, 40], [230, 40, 60], [170, 20, 120], [70, 20, 30],
        [250, 250, 120], [120, 230, 230], [255, 110, 140],
    ],
    dtype=np.uint8,
)  # fmt: skip


@dataclass
class SynthResult:
    """What was written, and how long it took (seconds, frames per second)."""

    out: Path
    frames: list[int]
    size: int
    seconds: float

    @property
    def fps(self) -> float:
        return len(self.frames) / max(self.seconds, 1e-9)


def _write_frame(image_dir: Path, label_dir: Path, frame: int, synth: SynthFrame) -> None:
    from vq_models.io.colour import convert
    from vq_models.io.images import write_image, write_label_map

    linear = convert(synth.rgb, "sRGB", PLATE_COLORSPACE)
    write_image(
        image_dir / f"{FRAME.format(frame)}.exr",
        linear,
        dtype="half",
        colorspace=PLATE_COLORSPACE,
        metadata={"DateTime": FIXED_DATETIME},
    )
    write_label_map(label_dir / f"{FRAME.format(frame)}.png", synth.labels)


def _state_json(state: FaceState) -> dict[str, float | int | bool]:
    return {k: v for k, v in dataclasses.asdict(state).items() if k != "identity"}


def coloured_labels(labels: np.ndarray) -> np.ndarray:
    """uint8 labels -> float32 sRGB (H, W, 3) with one colour per part."""
    return PART_COLOURS[np.clip(labels, 0, len(PART_COLOURS) - 1)].astype(np.float32) / 255.0


def contact_sheet(frames: list[tuple[str, SynthFrame]], whatifs: list[SynthFrame]) -> np.ndarray:
    """Rows: the frames, their labels over a dimmed frame, and the what-ifs of the last frame."""
    rows = [
        np.concatenate([f.rgb for _, f in frames], 1),
        np.concatenate([0.35 * f.rgb + 0.65 * coloured_labels(f.labels) for _, f in frames], 1),
    ]
    if whatifs:
        row = np.concatenate([w.rgb for w in whatifs], 1)
        pad = rows[0].shape[1] - row.shape[1]
        if pad > 0:
            row = np.concatenate([row, np.zeros((row.shape[0], pad, 3), np.float32)], 1)
        rows.append(row[:, : rows[0].shape[1]])
    return np.clip(np.concatenate(rows, 0), 0.0, 1.0)


def write_synth_shot(
    out: str | Path,
    frames: int = 120,
    size: int = 256,
    seed: int = 0,
    start: int = 1001,
    ss: int = 2,
    progress: bool = True,
    mouth: np.ndarray | None = None,
    vary: bool = False,
) -> SynthResult:
    """Render and write a whole synthetic shot (see the module docstring for the layout); ``mouth``: the
    mouth opening per frame instead of talking, ``vary``: the seed also draws the face's proportions, skin
    tone and lighting (:func:`~vq_models.synth.performance.performance`)."""
    from vq_models.io.images import write_image

    out = Path(out)
    t0 = time.perf_counter()
    states = performance(frames, seed, mouth=mouth, vary=vary)
    numbers = [start + i for i in range(frames)]
    tracks: dict[int, FrameTrack] = {}
    preview_idx = sorted(
        {
            0,
            int(np.argmin([s.eye_open for s in states])),
            int(np.argmax([s.mouth_open for s in states])),
            frames - 1,
        }
    )
    preview: list[tuple[str, SynthFrame]] = []
    preview_whatifs: list[SynthFrame] = []
    for i, (number, state) in enumerate(
        tqdm(list(zip(numbers, states, strict=True)), desc="synth", unit="frame", disable=not progress)
    ):
        synth = render(state, size, ss)
        _write_frame(out / "plate", out / "labels", number, synth)
        geom = synth.geometry
        # the mesh makes prep render the 3D overlay (face/overlay.py), as it does for a tracked clip
        tracks[number] = FrameTrack(geom.landmarks5(), geom.contours(), synth_mesh(geom))
        whatifs = []
        for name, edit in WHATIFS.items():
            w = render_whatif(synth, edit(state))
            _write_frame(out / "whatif" / name, out / "whatif" / name / "labels", number, w)
            whatifs.append(w)
        if i in preview_idx:
            preview.append((str(number), synth))
            if i == int(np.argmax([s.mouth_open for s in states])):
                preview_whatifs = whatifs
    atomic_write_json(out / "parts.json", {"version": 1, "parts": {name: i for i, name in enumerate(PARTS)}})
    meta = {"generator": "vqedit synth", "seed": int(seed), "supersample": int(ss)}
    save_tracking(Tracking((size, size), tracks, meta), out / "tracking.json")
    atomic_write_json(
        out / "states.json",
        {
            "version": 1,
            "seed": int(seed),
            "identity": states[0].identity.record(),
            "whatifs": list(WHATIFS),
            "frames": {str(n): _state_json(s) for n, s in zip(numbers, states, strict=True)},
        },
    )
    write_image(
        out / "preview.png", contact_sheet(preview, preview_whatifs), dtype="uint8", colorspace="sRGB"
    )
    return SynthResult(out, numbers, size, time.perf_counter() - t0)
