"""Fast 8-bit rendering of a ``CxrImage`` with any window, through a lookup table.

For integer modality values (nearly every radiograph) a uint8 LUT over the value range is
built once per window change and applied with one gather; float values fall back to the
vectorised formula. The maths is ``cxr_engine.pixels.windowing``'s, so both paths agree.
Pixels outside a display shutter (``CxrImage.shutter``) are shown last, at its P-value.
"""
from __future__ import annotations

import numpy as np

from .image import CxrImage
from .resampling import resize_bilinear
from .windowing import VoiLut, Window, apply_voi_lut_table, apply_window

# A LUT over more entries than this costs more than the formula it replaces.
_MAX_LUT_ENTRIES = 1 << 20


def build_lut(low: int, high: int, voi: Window | VoiLut, invert: bool) -> np.ndarray:
    """uint8 display values for every integer modality value in [low, high]."""
    values = np.arange(low, high + 1, dtype=np.int64)
    unit = apply_voi_lut_table(values, voi) if isinstance(voi, VoiLut) else apply_window(values, voi)
    if invert:
        unit = 1.0 - unit
    return to_uint8(unit)


def to_uint8(unit: np.ndarray) -> np.ndarray:
    """Quantise [0, 1] floats to uint8 by rounding."""
    return np.rint(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


def p_value_to_uint8(p_value: int) -> int:
    """A P-value (PS3.3 C.11.6: 0 black … 0xFFFF white) as the rendered image's 8-bit grey, by rounding."""
    return int(round(min(max(int(p_value), 0), 0xFFFF) * 255 / 0xFFFF))


def with_shutter(pixels: np.ndarray, image: CxrImage) -> np.ndarray:
    """uint8 (H, W) ``pixels`` rendered from ``image``, with the pixels outside its display shutter set to the
    shutter's P-value (PS3.3 C.7.6.11: after the Presentation LUT, so whatever the VOI and the inversion),
    in place; ``pixels`` itself when there is no shutter."""
    if image.shutter is not None:
        np.putmask(pixels, image.shutter, np.uint8(p_value_to_uint8(image.shutter_value)))
    return pixels


class Renderer:
    """Renders one image to uint8 repeatedly (e.g. during a window/level drag).

    It keeps the value offset array so that each new window costs one LUT build and one gather.
    """

    def __init__(self, image: CxrImage):
        self.image = image
        values = image.modality
        self._low = None
        if values.dtype.kind in "iu":
            low, high = int(values.min()), int(values.max())
            if high - low < _MAX_LUT_ENTRIES:
                self._low, self._high = low, high
                index_dtype = np.uint16 if high - low < 65536 else np.uint32
                self._index = (values.astype(np.int64, copy=False) - low).astype(index_dtype) if low else values.astype(index_dtype, copy=False)

    def render(self, voi: Window | VoiLut | None = None, invert: bool | None = None) -> np.ndarray:
        """uint8 image (H, W) with ``voi`` (default: the image's own) and display inversion.

        ``invert`` defaults to the image's own polarity (MONOCHROME1 → inverted); pass
        ``not image.invert`` for the user's "invert" toggle. Neither changes the pixels outside a
        display shutter, shown at its P-value (:func:`with_shutter`).
        """
        voi = self.image.default_voi() if voi is None else voi
        invert = self.image.invert if invert is None else invert
        if self._low is not None:
            lut = build_lut(self._low, self._high, voi, invert)
            return with_shutter(lut[self._index], self.image)
        unit = self.image.display(voi) if invert == self.image.invert else 1.0 - self.image.display(voi)
        return with_shutter(to_uint8(unit), self.image)


def render(image: CxrImage, voi: Window | VoiLut | None = None, invert: bool | None = None) -> np.ndarray:
    """One-off 8-bit rendering; use ``Renderer`` when the window changes often."""
    return Renderer(image).render(voi, invert)


def to_square_pixels(pixels: np.ndarray, pixel_aspect: float) -> np.ndarray:
    """``pixels`` (H, W[, C]) resampled (bilinear) so that its pixels are square.

    ``pixel_aspect`` is ``CxrImage.pixel_aspect`` (physical height / width of one pixel); the
    coarser axis is stretched, giving ``CxrImage.display_shape``. Square pixels (within 0.1 %)
    return ``pixels`` itself. Same dtype.
    """
    if abs(pixel_aspect - 1.0) < 1e-3:
        return pixels
    rows, cols = pixels.shape[:2]
    if pixel_aspect > 1.0:
        rows = max(1, round(rows * pixel_aspect))
    else:
        cols = max(1, round(cols / pixel_aspect))
    return resize_bilinear(pixels, rows, cols)
