"""Worker function for the viewer's lung fields: the mask, its outline and the proposed CTR. No Qt."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from cxr_engine.models.cardiothoracic import CardiothoracicRatio, CtrNotFound, ctr_offered, propose_ctr
from cxr_engine.pixels.contours import outer_contours
from cxr_engine.pixels.image import CxrImage
from cxr_engine.models.lung_fields import LungFields
from cxr_engine.models.suitability import lung_fields_refusal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LungJobResult:
    """What the viewer shows for one image's lung fields.

    ``contours`` are closed polygons, (N, 2) float arrays of (x, y) image coordinates through the
    centres of the boundary pixels; empty when the fields were not found (``fields.warning``).
    ``ctr`` is the proposed ratio, or None with ``ctr_reason`` saying why it is not offered.
    ``refusal`` says why neither is offered on the film as shown (``suitability.lung_fields_refusal``:
    the image checks find it inverted or turned); ``fields`` is then None and nothing was segmented.
    """

    path: Path
    fields: LungFields | None
    contours: tuple[np.ndarray, ...]
    ctr: CardiothoracicRatio | None
    ctr_reason: str
    refusal: str = ""


def outline(mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """The outer boundary of each component of ``mask``, as (x, y) polygons through pixel centres."""
    return tuple(c.astype(np.float64) + 0.5 for c in outer_contours(mask) if len(c) >= 3)


def lung_job(image: CxrImage, segment: Callable[[CxrImage], LungFields] | None = None,
             check: Callable[[CxrImage], object] | None = None) -> LungJobResult:
    """Segment ``image``'s lungs (the bundled model unless ``segment`` is given) and propose its CTR,
    unless the image checks (``check``: the ``ImageCheck`` of ``image`` as shown, or None; the bundled
    checks unless given) find it inverted or turned; run in a worker thread."""
    if check is None:
        from cxr_engine.models.image_checks import check_image as check
    verdict = check(image)
    refusal = lung_fields_refusal(image, verdict.scope_reasons if verdict is not None else "")
    if refusal:
        return LungJobResult(Path(image.path), None, (), None, refusal, refusal)
    if segment is None:
        from cxr_engine.models.lung_fields import segment_lungs as segment
    fields = segment(image)
    contours = outline(fields.mask) if fields.found else ()
    offered, reason = ctr_offered(image.metadata.view_position, fields.found)
    ctr = None
    if offered and not fields.found:
        offered, reason = False, f"no cardiothoracic ratio: {fields.warning}"
    if offered:
        try:
            ctr = propose_ctr(fields.mask, image.display(), image.spacing_mm,
                              detector=image.spacing_source == "ImagerPixelSpacing")
        except CtrNotFound as exc:
            reason = f"no cardiothoracic ratio proposed: {exc}"
    return LungJobResult(Path(image.path), fields, contours, ctr, reason)
