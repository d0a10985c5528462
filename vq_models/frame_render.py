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

from vq_models.composite import composite_in_box, premultiplied_rgba
from vq_models.detail import DetailResult
from vq_models.io.colour import LINEAR, SRGB, convert, default_colorspace, resolve_colorspace
from vq_models.io.images import ImageData, write_image


@dataclass
class FrameRender:
    """One frame rendered into plate space.

    The render is held over :attr:`box` only, the bounding box of its alpha > 0 (display coordinates):
    ``box_rgb`` is the un-premultiplied render there, in the plate's colour space (what
    :func:`vq_models.composite.composite_image` blends), ``box_alpha`` its alpha.
    Why a box: a face covers a fraction of a 2K/4K plate, and full-frame arrays would cost more to allocate
    and scan than the face's own pixels. :attr:`rgb`, :attr:`alpha` and
    :attr:`rgba` build the whole display window on demand, for checks that compare whole frames.
    ``changed`` is the label-space mask of pixels the edits changed at this frame, and of parts they moved
    (:func:`vq_models.moved_parts.redrawn`): what the render redrew.
    """

    frame: int
    box: tuple[int, int, int, int]  # (x, y, w, h), display coordinates; (wx, wy, 0, 0) when nothing shows
    box_rgb: np.ndarray  # (h, w, 3) float32, plate colour space
    box_alpha: np.ndarray  # (h, w) float32
    changed: np.ndarray  # (L, L) bool
    labels: np.ndarray  # (L, L) uint8, edited labels at t
    crop: np.ndarray  # (R, R, 3) float32 sRGB, the render in crop space
    colorspace: str
    display_window: tuple[int, int, int, int]
    data_window: tuple[int, int, int, int]
    detail: DetailResult | None = None  # what the plate-density detail pass did (None: not run)

    def _on_window(self, boxed: np.ndarray) -> np.ndarray:
        """``boxed`` (an array over :attr:`box`) placed on a zero array over the display window."""
        wx, wy, ww, wh = self.display_window
        out = np.zeros((wh, ww) + boxed.shape[2:], np.float32)
        x, y, w, h = self.box
        out[y - wy:y - wy + h, x - wx:x - wx + w] = boxed
        return out

    @property
    def rgb(self) -> np.ndarray:
        """(H, W, 3) the un-premultiplied render over the display window, 0 outside :attr:`box` (built on
        demand)."""
        return self._on_window(self.box_rgb)

    @property
    def alpha(self) -> np.ndarray:
        """(H, W) the alpha over the display window (built on demand)."""
        return self._on_window(self.box_alpha)

    @property
    def rgba(self) -> np.ndarray:
        """(H, W, 4) premultiplied RGBA over :attr:`rgba_window`, in :attr:`colorspace` (built on demand)."""
        return self._on_window(premultiplied_rgba(self.box_rgb, self.box_alpha))

    @property
    def rgba_window(self) -> tuple[int, int, int, int]:
        """The window :attr:`rgba` covers: the plate's display window (what the crop transforms refer to),
        so a render pass lines up with the plate in any compositor whatever the plate's data window."""
        return self.display_window

    def box_rgb_in(self, colorspace: str) -> np.ndarray:
        """:attr:`box_rgb` converted to ``colorspace`` (no copy of work when it is ours)."""
        if resolve_colorspace(colorspace) == resolve_colorspace(self.colorspace):
            return self.box_rgb
        return convert(self.box_rgb, self.colorspace, colorspace)

    def composite(self, plate: Any) -> Any:
        """Render over ``plate`` (an :class:`~vq_models.io.images.ImageData`) in the plate's own colour space,
        keeping its data/display windows, channels and metadata; plate pixels outside the alpha bit for bit."""
        return composite_in_box(self.box_rgb_in(plate.colorspace), self.box_alpha, self.box, plate)

    def alpha_box(self) -> tuple[int, int, int, int]:
        """The bounding box (x, y, w, h, display coordinates) of ``alpha > 0``: what a render pass needs to
        carry as its EXR data window (1x1 at the window's origin when nothing is rendered)."""
        x, y, w, h = self.box
        if w == 0 or h == 0:
            return (self.display_window[0], self.display_window[1], 1, 1)
        return self.box

    def alpha_box_arrays(self) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray]:
        """:meth:`alpha_box` with the render's rgb and alpha over it (zeros for the 1x1 of an empty render)."""
        box = self.alpha_box()
        if box == self.box:
            return box, self.box_rgb, self.box_alpha
        return box, np.zeros((1, 1, 3), np.float32), np.zeros((1, 1), np.float32)

    def rgba_image(self, colorspace: str | None = None) -> Any:
        """The premultiplied RGBA render as an ImageData whose data window is :meth:`alpha_box` (the
        display window is the plate's). This is the server's reply and the ``--passes`` EXR: on a 2K/4K
        plate the face box is a fraction of the frame, so the payload and the premultiply shrink with it.
        ``colorspace`` defaults to the render's own (the plate's)."""
        box, rgb, alpha = self.alpha_box_arrays()
        cs = colorspace or self.colorspace
        if colorspace is not None and resolve_colorspace(colorspace) != resolve_colorspace(self.colorspace):
            rgb = convert(rgb, self.colorspace, colorspace)
        return ImageData(premultiplied_rgba(rgb, alpha), ["R", "G", "B", "A"], box, self.display_window, colorspace=cs)


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
