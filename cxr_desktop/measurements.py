"""The text a measured annotation shows: a ruler's length, an angle, an ROI's statistics. No Qt.

Computed by the engine (``annotation_model.measure``, ``cxr_engine.pixels.roi``) from the image's own
modality values and spacing; recomputed whenever the annotation is drawn, moved or reshaped.
"""
from __future__ import annotations

from cxr_engine.pixels.image import CxrImage
from cxr_engine.pixels.roi import angle_degrees, roi_stats

from .annotation_model import ANGLE, ELLIPSE, RECTANGLE, RULER, Annotation, measure


def label_for(annotation: Annotation, image: CxrImage | None) -> str:
    """The label of ``annotation`` on ``image`` ("" for kinds that measure nothing or without an image)."""
    kind, points = annotation.kind, annotation.points
    if image is None:
        return ""
    if kind == RULER:
        return str(measure(points[0], points[1], image.spacing_mm, image.spacing_source))
    if kind == ANGLE:
        scale = image.spacing_mm or (image.pixel_aspect, 1.0)
        return f"{angle_degrees(points[0], points[1], points[2], scale):.1f}°"
    if kind in (ELLIPSE, RECTANGLE):
        return "\n".join(roi_stats(image, kind, points[0], points[1]).lines())
    return ""


def report_line(annotation: Annotation, image: CxrImage | None) -> str:
    """One line for the PDF's measurements, the label's lines joined by "; " (a ", " would run into the
    thousands separators of "area 18,561 px²"): "Ellipse ROI: mean 512.3  SD 20.1; min 480.0  max 560.0;
    area 18,561 px²; n = 18,559 pixels"; "" when not measured."""
    label = label_for(annotation, image)
    if not label:
        return ""
    names = {RULER: "Ruler", ANGLE: "Angle", ELLIPSE: "Ellipse ROI", RECTANGLE: "Rectangle ROI"}
    return f"{names[annotation.kind]}: {label.replace(chr(10), '; ')}"
