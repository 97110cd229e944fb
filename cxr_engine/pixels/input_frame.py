"""Which part of an image the classifier sees: the whole image (cxr-pre-1) or the lungs' bounding box
plus a margin (cxr-pre-2, "lung box"; ``cxr_engine.pixels.preprocessing`` describes both versions),
in either version without a border of padding (Pixel Padding Value, PS3.3 C.7.5.1.1.2: not image data).

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
from .preprocessing import LUNG_BOX_MARGINS, check_preprocessing_version, is_lung_box

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


#: A padding border is cut off only when the image data inside it spans at least this many pixels each way.
MIN_CONTENT_SIDE = 32


#: A row (column) belongs to the image data's box when at least this share of the fullest row (column) is image
#: data: a burned-in marker or a stray pixel in the padding border does not widen the box.
CONTENT_LINE_SHARE = 0.25


def content_box(padding: np.ndarray | None) -> tuple[int, int, int, int] | None:
    """The box (row0, col0, row1, col1; ends exclusive) of the image data that padding (``CxrImage.padding``:
    bool, True = padding) frames; None when there is no padding, it frames nothing (the box is the whole image),
    or the image data inside spans fewer than :data:`MIN_CONTENT_SIDE` pixels either way (the whole image is
    used then, as without padding).

    The box is the longest run of rows, and of columns, each at least :data:`CONTENT_LINE_SHARE` image data
    (of the fullest row's, column's count), not merely every row holding a data pixel: one stray pixel or a
    burned-in marker in the border brought the whole border back (a tester's finding). The thin cap of a round
    field can fall outside it.

    Padding is not image data (PS3.3 C.7.5.1.1.2): a modality fills the area outside the exposed field
    with it. Left in the model input it is a black frame the training films never had (they carry no
    padding), and it moved a film's call: ``../shared/bugcases/padding-autowindow.dcm`` was pneumonia 0.78
    with its border; without it normal 0.51 / pneumonia 0.45, as its unpadded original
    (``CR-MONO1-10-chest.dcm``) cut to the same box (0.52 / 0.44)."""
    if padding is None or not padding.any() or padding.all():
        return None
    data = ~np.asarray(padding, dtype=bool)
    r0, r1 = _longest_full_run(data.sum(axis=1))
    c0, c1 = _longest_full_run(data.sum(axis=0))
    box = (r0, c0, r1, c1)
    if box == (0, 0, *padding.shape) or min(r1 - r0, c1 - c0) < MIN_CONTENT_SIDE:
        return None
    return box


def _longest_full_run(counts: np.ndarray) -> tuple[int, int]:
    """(start, end; end exclusive) of the longest run of entries of ``counts`` at least ``CONTENT_LINE_SHARE`` of
    its largest."""
    full = np.concatenate(([0], (counts >= CONTENT_LINE_SHARE * counts.max()).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(full))
    starts, ends = edges[::2], edges[1::2]
    longest = int(np.argmax(ends - starts))
    return int(starts[longest]), int(ends[longest])


def _intersect(box: tuple[int, int, int, int], other: tuple[int, int, int, int]) -> tuple[int, int, int, int] | None:
    r0, c0 = max(box[0], other[0]), max(box[1], other[1])
    r1, c1 = min(box[2], other[2]), min(box[3], other[3])
    return (r0, c0, r1, c1) if r1 > r0 and c1 > c0 else None


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

    Both versions first leave out a border of padding: a ``CxrImage`` whose padding frames its image
    data is seen inside :func:`content_box` (cxr-pre-1: that box; cxr-pre-2: the lung box cut to it).
    cxr-pre-2 and cxr-pre-3: the lungs' bounding box from ``segment`` (default: the bundled lung model) widened by
    the version's ``LUNG_BOX_MARGINS`` of its height and width, clipped to the image
    (``LungFields.box``); the whole image (without its padding border) with ``FALLBACK_WARNING``
    (logged with the file) when the lung fields are not found. ``ValueError`` for an unknown version.
    """
    check_preprocessing_version(version, "preprocessing")
    if display is None:
        display = image.display() if isinstance(image, CxrImage) else np.asarray(image)
    frame = whole_image(display.shape)
    padding = image.padding if isinstance(image, CxrImage) else None
    content = content_box(padding) if padding is not None and padding.shape == display.shape else None
    unpadded = frame if content is None else InputFrame(content, frame.shape)
    if not is_lung_box(version):
        return unpadded
    fields = (segment or _default_segment)(image, display)
    margins = LUNG_BOX_MARGINS[version]
    if margins["bottom"] == margins["sides"] == margins["top"]:
        box = fields.box(margins["top"])
    else:
        box = fields.box(margins["top"], bottom=margins["bottom"], sides=margins["sides"])
    if box is None:
        where = getattr(image, "path", None) or "image"
        logger.warning("%s: %s", where, FALLBACK_WARNING)
        return InputFrame(unpadded.box, frame.shape, FALLBACK_WARNING)
    box = tuple(int(v) for v in box)
    return InputFrame(_intersect(box, unpadded.box) or unpadded.box, frame.shape)
