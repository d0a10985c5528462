"""Server side of painting and seeing labels: the ``paint`` matte of a render request and the labels pass.

A host sends its paint input's matte in plate space (EXR bytes straight from disk, or an array with its
window); here it becomes label pixels painted with ``paint_segment`` (:mod:`vq_models.edits.matte`). The
``labels`` pass answers the question "which labels will this request render?": the edited label map at
the frame, in the exemplar's colours, placed over the plate through the crop transform, so an artist sees
it lined up with the plate and can paint on it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from host_plugin.protocol import BAD_REQUEST, ProtocolError, decode_array, get_field
from vq_models.errors import VQEditError

Window = tuple[int, int, int, int]
MAX_MATTE_SIDE = 16384


def decode_paint(fields: dict[str, Any]) -> tuple[np.ndarray, Window, str | int] | None:
    """The request's ``paint`` matte and ``paint_segment``: (matte (h, w) float32, window, target) or None.

    ``paint`` is ``{"exr": bin}`` (its alpha, or its only channel; window = the EXR's data window) or
    ``{"matte": array (h, w), "window": [x, y, w, h]}``.
    """
    paint = fields.get("paint")
    if paint is None:
        return None
    if not isinstance(paint, dict):
        raise ProtocolError(BAD_REQUEST, "paint: expected a map {exr} or {matte, window}")
    target = get_field(fields, "paint_segment", (str, int))
    if isinstance(target, str) and not target.strip():
        raise ProtocolError(BAD_REQUEST, "paint_segment: required with paint (a segment name of the prior, or a code)")
    if paint.get("exr") is not None:
        data = paint["exr"]
        if not isinstance(data, bytes):
            raise ProtocolError(BAD_REQUEST, "paint.exr: expected bytes (an EXR file)")
        from vq_models.io.images import decode_image_bytes

        try:
            image = decode_image_bytes(data)
        except VQEditError as exc:
            raise ProtocolError(BAD_REQUEST, f"paint.exr: {str(exc).splitlines()[0]}") from None
        channels = [c.upper() for c in image.channels]
        if "A" in channels:
            matte = image.pixels[..., channels.index("A")]
        elif len(channels) == 1:
            matte = image.pixels[..., 0]
        else:
            raise ProtocolError(BAD_REQUEST, f"paint.exr: no alpha channel (channels {', '.join(image.channels)})")
        window = tuple(int(v) for v in image.data_window)
    else:
        matte = decode_array(paint.get("matte"), "paint.matte", ("uint8", "float16", "float32"), ndim=(2,))
        if max(matte.shape) > MAX_MATTE_SIDE:
            raise ProtocolError(BAD_REQUEST, f"paint.matte: sides must be ≤ {MAX_MATTE_SIDE}")
        win = paint.get("window")
        if not (isinstance(win, list) and len(win) == 4 and all(isinstance(v, int) and not isinstance(v, bool) for v in win)):
            raise ProtocolError(BAD_REQUEST, "paint.window: expected [x, y, width, height] integers")
        if [win[3], win[2]] != list(matte.shape):
            raise ProtocolError(BAD_REQUEST, f"paint.window: {win[2]}x{win[3]} does not match the matte's {matte.shape[1]}x{matte.shape[0]}")
        matte = matte.astype(np.float32) / (255.0 if matte.dtype == np.uint8 else 1.0)
        window = (win[0], win[1], win[2], win[3])
    matte = np.nan_to_num(np.asarray(matte, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return matte, window, target  # type: ignore[return-value]


def painted_labels(model: Any, frame: int, base: np.ndarray, paint: tuple[np.ndarray, Window, str | int]) -> np.ndarray:
    """``base`` (the frame's edited labels) with the matte's label pixels painted with the target segment."""
    from vq_models.edits.matte import apply_matte, matte_to_label_mask

    matte, window, target = paint
    mask = matte_to_label_mask(matte, window, model.shot.transform(frame), model.shot.crop_size, model.label_size)
    return apply_matte(base, mask, target, model.prior(required=False), int(model.num_codes))


def labels_pass(model: Any, frame: int, labels: np.ndarray) -> Any:
    """The labels pass: ``labels`` (L, L) in the exemplar's colours, in plate space (nearest label pixel,
    alpha 1 over the crop's footprint), as an RGBA ImageData in the plate's colour space whose data window
    is the footprint's box."""
    from vq_models.exemplar import colourise
    from vq_models.io.colour import from_network
    from vq_models.io.images import ImageData
    from vq_models.runtime import _footprint

    info = model.plate_info
    size = (int(info["display_window"][2]), int(info["display_window"][3]))
    crop_size, L = int(model.shot.crop_size), int(model.label_size)
    (x0, y0, x1, y1), sub = _footprint(model.shot.transform(frame), crop_size, size, margin=0)
    ys, xs = np.mgrid[0 : y1 - y0, 0 : x1 - x0]
    crop = sub.to_crop(np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64))
    lab = np.floor((crop + 0.5) * (L / crop_size)).astype(np.int64)
    inside = (lab[:, 0] >= 0) & (lab[:, 0] < L) & (lab[:, 1] >= 0) & (lab[:, 1] < L)
    colours = colourise(labels, int(model.num_codes)).astype(np.float32) / 255.0
    rgb = np.zeros((lab.shape[0], 3), np.float32)
    rgb[inside] = colours[lab[inside, 1], lab[inside, 0]]
    alpha = inside.astype(np.float32)
    h, w = y1 - y0, x1 - x0
    rgb = from_network(rgb.reshape(h, w, 3), info["colorspace"]) * alpha.reshape(h, w, 1)
    rgba = np.concatenate([rgb, alpha.reshape(h, w, 1)], axis=2).astype(np.float32)
    return ImageData(rgba, ["R", "G", "B", "A"], (x0, y0, w, h), tuple(info["display_window"]), colorspace=info["colorspace"])
