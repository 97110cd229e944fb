"""Does a decoded film hold an image at all? A blank, constant or near-constant image, or one a few
pixels across, has nothing a classifier could read: the engine gives it no class
(``cxr_engine.classification.classify_files``' ``not-classified`` stage; the classifiers raise
``NoImageContentError``), whatever the model would answer.

The thresholds are far from every real film the project holds: over the 8 DICOMs of
``dicom/``, the 16 of ``dicom_rsna/``, the 400 of ``cxr_other/`` and 1,500 of ``cxr3/`` (a seeded
sample), the narrowest 0.5th–99.5th percentile span of the presentation values is 0.31 of [0, 1]
(:data:`UNIFORM_SPAN` is 0.02) and the shortest side 81 pixels (:data:`MIN_SIDE_PX` is 32; the
shortest in cxr3's manifest is 81 too); none is caught
(``python -m benchmarks.content_margins --data ../shared/data -n 1500``).
"""
from __future__ import annotations

import numpy as np

from .image import CxrImage
from .preprocessing import STRETCH_PERCENTILES

#: A film shorter than this on either side (pixels, at full resolution) is not classified: no chest
#: radiograph is stored this small (the model input is 224 px).
MIN_SIDE_PX = 32
#: Presentation values whose 0.5th–99.5th percentile span (the model input's contrast stretch,
#: ``preprocessing.STRETCH_PERCENTILES``) is below this share of [0, 1] hold no film.
UNIFORM_SPAN = 0.02
#: How every reason of this module starts (the CSV ``message``, the app's panel, the PDF).
NO_CONTENT = "no image content"


def is_nearly_uniform(image: CxrImage) -> bool:
    """Whether the presentation values (``CxrImage.display_sample``, padding left out) span less than
    :data:`UNIFORM_SPAN` of [0, 1] between their 0.5th and 99.5th percentiles: a blank, black, white or
    one-pixel image, to which a model would still give a confident-looking class."""
    values, padding = image.display_sample()
    if padding is not None:
        kept = values[~padding]
        values = kept if kept.size else values
    if values.size < 2:
        return True
    low, high = np.percentile(values, STRETCH_PERCENTILES)
    return bool(high - low < UNIFORM_SPAN)


def no_content_reason(image: CxrImage) -> str:
    """Why ``image`` holds nothing to classify, ``""`` when it holds a film; the reason starts with
    :data:`NO_CONTENT` and gives no path (callers put the file in front):

    - fewer than :data:`MIN_SIDE_PX` pixels on a side at full resolution (``shape × reduction``):
      ``no image content: the image is 1 × 1 pixels (a film has at least 32 on each side)``;
    - every modality value the same (padding left out): ``no image content: every pixel has the same value``;
    - :func:`is_nearly_uniform`: ``no image content: nearly every pixel has the same value (...)``.
    """
    rows, cols = (side * max(1, image.reduction) for side in image.shape)
    if min(rows, cols) < MIN_SIDE_PX:
        return f"{NO_CONTENT}: the image is {cols} × {rows} pixels (a film has at least {MIN_SIDE_PX} on each side)"
    if not is_nearly_uniform(image):
        return ""
    values = image.image_values()
    if values.size == 0 or values.min() == values.max():
        return f"{NO_CONTENT}: every pixel has the same value"
    low, high = STRETCH_PERCENTILES
    return (f"{NO_CONTENT}: nearly every pixel has the same value (the middle {high - low:g} % of the displayed "
            f"values lie within {100 * UNIFORM_SPAN:g} % of the display range)")


def require_content(image) -> None:
    """``NoImageContentError`` naming the file and :func:`no_content_reason` when a ``CxrImage`` holds no
    image; anything else (arrays of presentation values, as training and the tests pass) is let through."""
    if not isinstance(image, CxrImage):
        return
    reason = no_content_reason(image)
    if reason:
        from ..errors import NoImageContentError

        raise NoImageContentError(image.path, reason)
