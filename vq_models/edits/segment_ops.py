"""Low-level segment operations (replace, translate, scale, dilate, erode, paint) on uint8 label maps: what an
artist does to a named segment or a code by hand, each listed in :data:`SEGMENT_OPERATIONS` beside its spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vq_models.edits import geometry as geo
from vq_models.edits.ops import code_for
from vq_models.edits.prior import Prior
from vq_models.edits.spec import DetailMove, FrameContext, Operation, OpResult, OpSpec, label_shift
from vq_models.errors import InputError

_BIG = 1e6



def _target(labels: np.ndarray, params: Mapping[str, Any], prior: Prior) -> np.ndarray:
    if "segment" in params:
        return prior.mask(labels, params["segment"])
    return labels == params["code"]


def replace(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior, ctx: FrameContext) -> np.ndarray:
    """Switch (value ≥ 0.5): every pixel of the source segment/code takes the destination's code."""
    out = labels.copy()
    if value >= 0.5:
        out[_target(labels, params, prior)] = code_for(labels, params["to"], prior)
    return out


def _move(labels: np.ndarray, target: np.ndarray, moved: np.ndarray, codes: np.ndarray) -> np.ndarray:
    out = geo.nearest_fill(labels, target & ~moved, ~target, int(labels[0, 0]))
    out[moved] = codes[moved]
    return out


def translate(labels: np.ndarray, value: tuple[float, float], params: Mapping[str, Any], prior: Prior,
              ctx: FrameContext) -> np.ndarray:
    """Move a segment/code by [dx, dy] label pixels; the uncovered area takes the nearest other code."""
    return _translate(labels, value, params, prior, ctx).labels


def _translate(labels: np.ndarray, value: tuple[float, float], params: Mapping[str, Any], prior: Prior,
               ctx: FrameContext) -> OpResult:
    """:func:`translate` with where it put the segment, and its shift: the plate's own detail of the segment
    moves with it (a mole, a brow, a scar keeps its texture and grain at the new place)."""
    target = _target(labels, params, prior)
    shift = (float(value[0]), float(value[1]))
    if shift == (0.0, 0.0) or not target.any():
        return OpResult(labels.copy())
    dx, dy = label_shift(shift)
    if dx == 0 and dy == 0:  # under half a label pixel: the labels stay, the render moves (DetailMove)
        return OpResult(labels.copy(), [DetailMove(target, shift)])
    moved = geo.shift(target, dx, dy, False)
    codes = geo.shift(np.where(target, labels, 0).astype(labels.dtype), dx, dy, 0)
    return OpResult(_move(labels, target, moved, codes), [DetailMove(moved, shift)])


def scale(labels: np.ndarray, value: tuple[float, float], params: Mapping[str, Any], prior: Prior,
          ctx: FrameContext) -> np.ndarray:
    """Scale a segment/code by [sx, sy] about its bounding-box centre (nearest neighbour)."""
    target = _target(labels, params, prior)
    if tuple(value) == (1.0, 1.0) or not target.any():
        return labels.copy()
    x0, y0, x1, y1 = geo.bbox(target)  # type: ignore[misc]
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    moved = geo.scale_about(target, value[0], value[1], cx, cy, 0)
    codes = geo.scale_about(np.where(target, labels, 0).astype(np.uint8), value[0], value[1], cx, cy, 0)
    return _move(labels, target, moved, codes)


def dilate(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior, ctx: FrameContext) -> np.ndarray:
    """Grow a segment/code by ``value`` pixels; the new band takes the segment's paint code."""
    out = labels.copy()
    target = _target(labels, params, prior)
    r = int(round(value))
    if r <= 0 or not target.any():
        return out
    band = geo.dilate(target, r) & ~target
    out[band] = code_for(labels, params.get("segment", params.get("code")), prior)
    return out


def erode(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior, ctx: FrameContext) -> np.ndarray:
    """Shrink a segment/code by ``value`` pixels; the removed rim takes the nearest other code."""
    target = _target(labels, params, prior)
    r = int(round(value))
    if r <= 0 or not target.any():
        return labels.copy()
    rim = target & ~geo.erode(target, r)
    return geo.nearest_fill(labels, rim, ~target, int(labels[0, 0]))


def paint(labels: np.ndarray, value: float, params: Mapping[str, Any], prior: Prior, ctx: FrameContext) -> np.ndarray:
    """Switch (value ≥ 0.5): fill a polygon with a segment/code. ``space: crop`` means label-map pixel
    coordinates; ``space: plate`` means plate pixels, mapped through the frame's crop transform."""
    out = labels.copy()
    if value < 0.5:
        return out
    pts = np.asarray(params["polygon"], dtype=np.float64)
    if params.get("space", "crop") == "plate":
        if ctx.transform is None or not ctx.crop_size:
            raise InputError("paint: space 'plate' needs the frame's crop transform (render through a shot)")
        s = labels.shape[0] / float(ctx.crop_size)
        pts = (ctx.transform.to_crop(pts) + 0.5) * s - 0.5
    region = geo.rasterize_polygon(pts, labels.shape)
    out[region] = code_for(labels, params.get("segment", params.get("code")), prior)
    return out


SEGMENT_OPERATIONS: dict[str, Operation] = {
    "replace": Operation(OpSpec("scalar", 0.0, 1.0, target="to", doc="switch: applied where value >= 0.5"), replace),
    "translate": Operation(OpSpec("vec2", -_BIG, _BIG, target="one", doc="[dx, dy] in label-map pixels"), translate,
                           run=_translate),
    "scale": Operation(OpSpec("scale", 0.0, 100.0, target="one", doc="factor or [sx, sy] about the segment's centre"), scale),
    "dilate": Operation(OpSpec("scalar", 0.0, 1000.0, target="one", doc="radius in label-map pixels"), dilate),
    "erode": Operation(OpSpec("scalar", 0.0, 1000.0, target="one", doc="radius in label-map pixels"), erode),
    "paint": Operation(OpSpec("scalar", 0.0, 1.0, required=("polygon",), optional={"space": "crop"}, target="one",
                    doc="switch: paints the polygon with the segment/code where value >= 0.5"), paint),
}
