"""Which part of an image the classifier sees: the whole image (cxr-pre-1) or the lungs' bounding box
plus a margin (cxr-pre-2, "lung box"; ``cxr_engine.pixels.preprocessing`` describes both versions).

:func:`input_frame` decides the box once per image; the model input is made from the crop
(``cxr_engine.models.classifier.unnormalised_input``) and the heat-map is put back into the same box
(``cxr_engine.models.classifier.heatmap_in_image_geometry``). numpy only at import; the lung model is
loaded on first use (``cxr_engine.models.lung_fields``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .image import CxrImage
from .preprocessing import LUNG_BOX_MARGIN, LUNG_BOX_VERSION, check_preprocessing_version

logger = logging.getLogger(__name__)

#: Logged (with the file) when cxr-pre-2 finds no lung fields and falls back to the whole image.
FALLBACK_WARNING = "lung fields not found: the classifier saw the whole image (cxr-pre-2 fallback)"

#: ``segment(image, display) -> LungFields`` (``cxr_engine.models.lung_fields``).
Segment = Callable[[object, np.ndarray], object]


@dataclass(frozen=True)
class InputFrame:
    """The box of the image (row0, col0, row1, col1; ends exclusive, the image's own pixel grid) that
    the model input is made from, the image's (rows, columns), and the fallback warning if any."""

    box: tuple[int, int, int, int]
    shape: tuple[int, int]
    warning: str | None = None

    @property
    def whole(self) -> bool:
        """True when the box is the whole image."""
        return self.box == (0, 0, *self.shape)

    def crop(self, array: np.ndarray | None) -> np.ndarray | None:
        """``array`` (the image's shape, e.g. its display or padding mask) cut to the box; None stays None."""
        if array is None or self.whole:
            return array
        r0, c0, r1, c1 = self.box
        return array[r0:r1, c0:c1]


def whole_image(shape: tuple[int, ...]) -> InputFrame:
    """The frame of cxr-pre-1: the whole image."""
    rows, cols = int(shape[0]), int(shape[1])
    return InputFrame((0, 0, rows, cols), (rows, cols))


def _default_segment(image, display: np.ndarray):
    from ..models.lung_fields import default_segmenter

    return default_segmenter().segment(image, display=display)


def input_frame(image: CxrImage | np.ndarray, version: str, display: np.ndarray | None = None,
                segment: Segment | None = None) -> InputFrame:
    """The frame of ``image`` (a ``CxrImage`` or a 2-D array of presentation values) under preprocessing ``version``.

    cxr-pre-2: the lungs' bounding box from ``segment`` (default: the bundled lung model) widened by
    ``LUNG_BOX_MARGIN`` of its height and width each side, clipped to the image
    (``LungFields.box``); the whole image with ``FALLBACK_WARNING`` (logged with the file) when the
    lung fields are not found. ``ValueError`` for an unknown version.
    """
    check_preprocessing_version(version, "preprocessing")
    if display is None:
        display = image.display() if isinstance(image, CxrImage) else np.asarray(image)
    frame = whole_image(display.shape)
    if version != LUNG_BOX_VERSION:
        return frame
    fields = (segment or _default_segment)(image, display)
    box = fields.box(LUNG_BOX_MARGIN)
    if box is None:
        where = getattr(image, "path", None) or "image"
        logger.warning("%s: %s", where, FALLBACK_WARNING)
        return InputFrame(frame.box, frame.shape, FALLBACK_WARNING)
    return InputFrame(tuple(int(v) for v in box), frame.shape)
