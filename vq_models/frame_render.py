"""A frame rendered into plate space, and how a composite of it is written.

:class:`FrameRender` is what :meth:`vq_models.runtime.ShotModel.render_frame` returns: the render pasted into
the plate's display window with its alpha, plus what the edit and the detail pass did. The CLI, the server and
the host all composite and write through it, so an EXR from the farm and one from ``vqedit render`` agree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vq_models.composite import alpha_bounds, composite_in_box, premultiplied_rgba
from vq_models.detail import DetailResult
from vq_models.io.colour import LINEAR, SRGB, convert, default_colorspace, resolve_colorspace
from vq_models.io.images import ImageData, write_image


@dataclass
class FrameRender:
    """One frame rendered into plate space.

    ``rgba`` is premultiplied, in the plate's colour space, over the plate's display window; ``rgb`` is
    the un-premultiplied render there (what :func:`vq_models.composite.composite_image` blends; 0 where
    the alpha is 0, within the bounding box of the alpha the render itself);
    ``changed`` is the label-space mask of pixels the edits changed at this frame.
    """

    frame: int
    rgb: np.ndarray  # (H, W, 3) float32, plate colour space
    alpha: np.ndarray  # (H, W) float32
    changed: np.ndarray  # (L, L) bool
    labels: np.ndarray  # (L, L) uint8, edited labels at t
    crop: np.ndarray  # (R, R, 3) float32 sRGB, the render in crop space
    colorspace: str
    display_window: tuple[int, int, int, int]
    data_window: tuple[int, int, int, int]
    detail: DetailResult | None = None  # what the plate-density detail pass did (None: not run)

    @property
    def rgba(self) -> np.ndarray:
        """(H, W, 4) premultiplied RGBA over :attr:`rgba_window`, in :attr:`colorspace`."""
        return premultiplied_rgba(self.rgb, self.alpha)

    @property
    def rgba_window(self) -> tuple[int, int, int, int]:
        """The window :attr:`rgba` covers: the plate's display window (what the crop transforms refer to),
        so a render pass lines up with the plate in any compositor whatever the plate's data window."""
        return self.display_window

    def rgb_in(self, colorspace: str) -> np.ndarray:
        """The un-premultiplied render converted to ``colorspace`` (no copy of work when it is ours)."""
        if resolve_colorspace(colorspace) == resolve_colorspace(self.colorspace):
            return self.rgb
        return convert(self.rgb, self.colorspace, colorspace)

    def composite(self, plate: Any) -> Any:
        """Render over ``plate`` (an :class:`~vq_models.io.images.ImageData`) in the plate's own colour space,
        keeping its data/display windows, channels and metadata; plate pixels outside the alpha bit for bit."""
        return composite_in_box(self.rgb_in(plate.colorspace), self.alpha, self.rgba_window, plate)

    def alpha_box(self) -> tuple[int, int, int, int]:
        """The bounding box (x, y, w, h, display coordinates) of ``alpha > 0``: what a render pass needs to
        carry as its EXR data window (1x1 at the window's origin when nothing is rendered)."""
        bounds = alpha_bounds(self.alpha)  # on the server's reply path every frame
        wx, wy = self.rgba_window[:2]
        if bounds is None:
            return (wx, wy, 1, 1)
        x0, y0, x1, y1 = bounds
        return (wx + x0, wy + y0, x1 - x0, y1 - y0)

    def rgba_image(self, colorspace: str | None = None) -> Any:
        """The premultiplied RGBA render as an ImageData whose data window is :meth:`alpha_box` (the
        display window is the plate's). This is the server's reply and the ``--passes`` EXR: on a 2K/4K
        plate the face box is a fraction of the frame, so the payload and the premultiply shrink with it.
        ``colorspace`` defaults to the render's own (the plate's)."""
        x, y, w, h = self.alpha_box()
        wx, wy = self.rgba_window[:2]
        rows, cols = slice(y - wy, y + h - wy), slice(x - wx, x + w - wx)
        cs = colorspace or self.colorspace
        rgb = self.rgb[rows, cols]
        if colorspace is not None:
            if resolve_colorspace(colorspace) != resolve_colorspace(self.colorspace):
                rgb = convert(rgb, self.colorspace, colorspace)
        rgba = premultiplied_rgba(rgb, self.alpha[rows, cols])
        return ImageData(rgba, ["R", "G", "B", "A"], (x, y, w, h), self.display_window, colorspace=cs)



def save_composite(path: str | Path, image: Any) -> None:
    """Write a composite (ImageData) atomically; the extension picks the format and the colour encoding.

    EXR (and other float formats) hold scene-linear values: an sRGB-encoded plate is converted to
    ``lin_rec709``. 8/16-bit formats hold the display encoding: a scene-linear plate is converted to sRGB. When the plate is already in the target encoding no conversion happens, so pixels outside the
    alpha stay the plate's bit for bit.
    """
    target = default_colorspace(path)
    source = resolve_colorspace(image.colorspace)
    if target == LINEAR and source == SRGB:
        image = dataclasses.replace(image, pixels=convert(image.pixels, source, LINEAR), colorspace=LINEAR)
    elif target == SRGB and source != SRGB:
        image = dataclasses.replace(image, pixels=convert(image.pixels, source, SRGB), colorspace=SRGB, bit_depth="")
    write_image(path, image)
