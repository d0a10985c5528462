"""Headless host: render a frame range through the render server, as a render-farm task would.

``vqedit render SHOT ... --server tcp://...`` calls :func:`render_range`; it drives the same
:class:`~host_plugin.node.EditNode` a Nuke artist uses, so a farm render and an interactive one cannot
drift apart. Up to a chunk of frames is in flight at once, a window sliding over the range (the servers
overlap work and transfer, and never wait for a chunk's last frame to be written), every output is written
atomically, and a report says what was written and how long it took.

Composites keep the plate's own pixel type (a 32-bit float plate is written as float, a half plate as
half), so outside the render's alpha the output is the plate bit for bit. This module imports in the
thin host environment; reading plates and writing EXRs needs the full vqedit environment
(OpenImageIO), imported inside the functions that do it, with a one-line error when it is missing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host_plugin.client import RenderClient
from host_plugin.errors import InputError
from host_plugin.files import atomic_write_bytes
from host_plugin.knobs import DRIVER_KNOBS
from host_plugin.node import EditKnobs, EditNode

PASSES = ("comp", "render")


@dataclass
class FarmReport:
    """What a farm task did: frames and files written, wall time, per-frame round trip."""

    frames: list[int] = field(default_factory=list)
    outputs: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    chunks: int = 0

    @property
    def ms_per_frame(self) -> float:
        return 1e3 * self.seconds / max(1, len(self.frames))

    def summary(self) -> str:
        return f"rendered {len(self.frames)} frame(s) in {self.chunks} chunk(s), {self.seconds:.2f}s ({self.ms_per_frame:.1f} ms/frame)"


def _full_env(what: str) -> Any:
    """The vqedit modules the comp pass needs (image I/O): a one-line error in a thin environment."""
    try:
        from vq_models.io import images
        from vq_models.runtime import save_composite
    except ImportError as exc:
        raise InputError(f"{what} needs the full vqedit environment (OpenImageIO): {exc}") from None
    return images, save_composite


def parse_frames(frames: Any) -> list[int]:
    """``"1001-1100"``, ``"1001-1100x2"``, ``"1001,1005,1010-1012"`` or a list of ints → sorted unique ints
    (text goes through :func:`vq_models.io.sequences.parse_frame_range`, the one range syntax of vqedit)."""
    if not isinstance(frames, str):
        return sorted({int(f) for f in frames})
    try:
        from vq_models.io.sequences import parse_frame_range
    except ImportError:
        raise InputError("--frames as text needs the full vqedit environment; pass a list of frames") from None
    return parse_frame_range(frames)


def split_chunks(frames: Sequence[int], chunk: int) -> list[list[int]]:
    """Frame list → consecutive chunks of ``chunk`` frames (one farm task or one in-flight window each)."""
    if chunk < 1:
        raise InputError(f"--chunk {chunk}: must be at least 1")
    return [list(frames[i : i + chunk]) for i in range(0, len(frames), chunk)]


def output_path(pattern: str, pass_name: str, frame: int, multi: bool) -> Path:
    """Expand ``pattern``: ``{pass}`` → pass name (required with several passes), %04d/####/@@@@ → frame."""
    if multi and "{pass}" not in pattern:
        raise InputError(f"output {pattern!r}: several passes need a {{pass}} placeholder")
    try:
        from vq_models.io.sequences import normalize_pattern
    except ImportError:
        raise InputError("output patterns need the full vqedit environment") from None
    return Path(normalize_pattern(pattern.replace("{pass}", pass_name)) % frame)




class _PlateReader:
    """Plate frames from a FrameSource-like object (``.read(frame)``) or a path pattern."""

    def __init__(self, source: Any):
        self.source = source
        self._opened: Any = None
        if isinstance(source, (str, Path)):
            try:
                from vq_models.io.sources import open_source  # type: ignore[import-not-found]

                self._opened = open_source(str(source))
            except ImportError:
                self._opened = None

    def read(self, frame: int) -> Any:
        if hasattr(self.source, "read"):
            return self.source.read(frame)
        if self._opened is not None:
            return self._opened.read(frame)
        path = output_path(str(self.source), "", frame, multi=False)
        if not path.is_file():
            raise InputError(f"plate {path}: frame {frame} not found")
        return _full_env("reading plates")[0].read_image(path)


def render_range(
    server: str | RenderClient,
    model: str,
    frames: str | Iterable[int],
    out_pattern: str,
    program: dict[str, Any] | None = None,
    feather: float = 8.0,
    mode: str = "identity",
    chunk: int = 10,
    passes: Sequence[str] = ("comp",),
    plate_source: Any = None,
    mix: float = 1.0,
    timeout: float = 120.0,
    retries: int = 2,
    progress: bool = True,
    patterns: Mapping[str, str] | None = None,
    driver: Mapping[str, Any] | None = None,
) -> FarmReport:
    """Render ``frames`` of shot model ``model`` through the server at ``server`` and write the passes.

    - ``program``: an edit program map ``{"version": 1, "edits": [...]}``; numeric values may be
      animated as ``{"keys": [[frame, value], ...]}``.
    - ``passes``: ``comp`` (render over the plate, plate data window, colour space and pixel type;
      needs ``plate_source``) and/or ``render`` (the premultiplied RGBA EXR exactly as the server sent it).
    - ``out_pattern``: e.g. ``out/shot.%04d.exr``; with both passes it must contain ``{pass}``.
    - ``chunk``: frames in flight at once, a window sliding over the range (and the natural farm task size,
      see :func:`split_chunks`); the report counts the chunks of that size written.
    - ``patterns``: per-pass output patterns overriding ``out_pattern`` (``vqedit render --passes`` puts
      the render pass in ``rgba/`` beside the composites this way).
    - ``driver``: expression transfer, the node's driver knobs (:data:`host_plugin.knobs.DRIVER_KNOBS`:
      ``driver``, ``driver_strength``, ``driver_frame_offset``; the last two may be animated).
    """
    frame_list = parse_frames(frames)
    if not frame_list:
        raise InputError("--frames: no frames to render")
    bad = [p for p in passes if p not in PASSES]
    if bad or not passes:
        raise InputError(f"passes {list(passes)}: choose from {', '.join(PASSES)}")
    if "comp" in passes and plate_source is None:
        raise InputError("pass 'comp' needs the plate (plate_source)")
    if program is not None and (not isinstance(program, dict) or not isinstance(program.get("edits"), list)):
        raise InputError("program: expected {\"version\": 1, \"edits\": [...]}")
    pattern_of = {p: (patterns or {}).get(p, out_pattern) for p in passes}
    multi = len(set(pattern_of.values())) < len(passes)
    for p in passes:
        output_path(pattern_of[p], p, frame_list[0], multi)  # fail before any work on a bad pattern
    if "comp" in passes:
        images, save_composite = _full_env("the comp pass")

    client = server if isinstance(server, RenderClient) else RenderClient(server, timeout, retries)
    knobs = EditKnobs(server=client.address, model=model, edits=list((program or {}).get("edits", [])),
                      feather=feather, mix=mix, mode=mode, timeout=timeout, retries=retries)
    unknown = sorted(set(driver or {}) - set(DRIVER_KNOBS))
    if unknown:
        raise InputError(f"driver: unknown knob(s) {', '.join(unknown)} (known: {', '.join(DRIVER_KNOBS)})")
    for name, value in (driver or {}).items():
        setattr(knobs, name, value)
    node = EditNode(knobs, client=client)
    plates = _PlateReader(plate_source) if plate_source is not None else None
    report = FarmReport(outputs={p: [] for p in passes})
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(frame_list), desc=f"render {model}", unit="frame")
    t0 = time.perf_counter()
    if chunk < 1:
        raise InputError(f"--chunk {chunk}: must be at least 1")
    plate_iter = (plates.read(f) for f in frame_list) if plates is not None else None
    fmt = "exr" if "render" in passes else "half"  # the render pass is written as the server sent it
    try:
        # one window sliding over the whole range: while a frame is written the next ``chunk - 1`` stay on the
        # wire, also across a chunk's end (windows drained per chunk left the servers idle there)
        for done, res in enumerate(node.evaluate_many(frame_list, plate_iter, in_flight=chunk, fmt=fmt), 1):
            if "render" in passes:
                path = output_path(pattern_of["render"], "render", res.frame, multi)
                atomic_write_bytes(path, res.render_exr)
                report.outputs["render"].append(str(path))
            if "comp" in passes:
                path = output_path(pattern_of["comp"], "comp", res.frame, multi)
                save_composite(path, images.ImageData(res.image, _channels(res.image.shape[2]), res.data_window,
                                                      res.display_window, colorspace=res.colorspace or "lin_rec709",
                                                      bit_depth=res.bit_depth))
                report.outputs["comp"].append(str(path))
            report.frames.append(res.frame)
            if done % chunk == 0 or done == len(frame_list):
                report.chunks += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if not isinstance(server, RenderClient):
            client.close()
    report.seconds = time.perf_counter() - t0
    return report


def _channels(n: int) -> tuple[str, ...]:
    return ("R", "G", "B", "A")[:n] if n <= 4 else tuple(f"C{i}" for i in range(n))
