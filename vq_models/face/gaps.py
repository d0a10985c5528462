"""Lost-face handling: find frames without a face, bridge short gaps, report long ones by number.

A face is lost for a few frames in real plates (motion blur, a hand, a turn). Short gaps are bridged by
linear interpolation of every tracked point (5 points, contours, mesh) between the neighbours that have
a face; at the ends of the range the nearest tracked frame is held. A gap longer than ``max_gap`` is an
error that lists the lost frames and suggests the ranges to prep separately (splitting the shot).
"""

from __future__ import annotations

from vq_models.errors import InputError
from vq_models.io.sequences import format_frame_list
from vq_models.tracking.schema import FrameTrack


def runs(frames: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs ``[(first, last), ...]`` of a sorted frame list (by position in the shot)."""
    out: list[tuple[int, int]] = []
    for f in frames:
        if out and f == out[-1][1] + 1:
            out[-1] = (out[-1][0], f)
        else:
            out.append((f, f))
    return out


def _lerp(a: FrameTrack, b: FrameTrack, t: float) -> FrameTrack:
    contours = {k: (1 - t) * a.contours[k] + t * b.contours[k]
                for k in a.contours if k in b.contours and a.contours[k].shape == b.contours[k].shape}
    mesh = None
    if a.mesh is not None and b.mesh is not None and a.mesh.shape == b.mesh.shape:
        mesh = (1 - t) * a.mesh + t * b.mesh
    return FrameTrack((1 - t) * a.landmarks5 + t * b.landmarks5, contours, mesh)


def bridge_gaps(
    tracks: dict[int, FrameTrack | None], frames: list[int], max_gap: int, source: str = "plate"
) -> tuple[dict[int, FrameTrack], list[int]]:
    """Fill lost frames; returns (a track for every frame, the bridged frame numbers).

    Raises :class:`InputError` when no frame has a face, or when a run of lost frames (by position in
    ``frames``) is longer than ``max_gap``.
    """
    have = [i for i, f in enumerate(frames) if tracks.get(f) is not None]
    if not have:
        span = f"{frames[0]}-{frames[-1]}" if len(frames) > 1 else str(frames[0])
        raise InputError(f"{source}: no face found in any frame ({span})")
    lost_pos = [i for i, f in enumerate(frames) if tracks.get(f) is None]
    long_runs = [(a, b) for a, b in runs(lost_pos) if b - a + 1 > max_gap]
    if long_runs:
        lost = [frames[i] for i in lost_pos]
        keep = [(frames[a], frames[b]) for a, b in runs(have)]
        ranges = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in keep)
        raise InputError(
            f"{source}: face lost in frames {format_frame_list(lost)}; gaps over {max_gap} frames cannot be "
            f"bridged: split the shot with --frames ({ranges}) or raise --max-gap"
        )
    out: dict[int, FrameTrack] = {}
    bridged: list[int] = []
    for i, f in enumerate(frames):
        tr = tracks.get(f)
        if tr is not None:
            out[f] = tr
            continue
        prev = max((j for j in have if j < i), default=None)
        nxt = min((j for j in have if j > i), default=None)
        if prev is None or nxt is None:
            near = tracks[frames[nxt if prev is None else prev]]
            assert near is not None
            out[f] = _lerp(near, near, 0.0)
        else:
            a, b = tracks[frames[prev]], tracks[frames[nxt]]
            assert a is not None and b is not None
            out[f] = _lerp(a, b, (i - prev) / (nxt - prev))
        bridged.append(f)
    return out, bridged
