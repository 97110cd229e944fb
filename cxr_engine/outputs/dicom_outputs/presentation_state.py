"""The reader's annotations (and the window shown) as a Grayscale Softcopy Presentation State
(PS3.3 A.33.1, built by highdicom's ``GrayscaleSoftcopyPresentationState``), so that they reopen
over the original film in another viewer.

Marks are in image pixel coordinates (x, y) = (column, row) with the top-left corner of the first
pixel at (0, 0): exactly GSPS's PIXEL units (PS3.3 C.10.5.1.2), so points are written unchanged.
GSPS has no arrow, ruler or angle, so they become polylines (an arrow also gets its head as a second
polyline) with their measurement as a text object; an ellipse given by two opposite corners becomes
an ELLIPSE by its major and minor axes; a rectangle a closed polyline.

A film shown turned or flipped (corrected by the image checks, or by the reader) carries that view as the
Spatial Transformation (PS3.3 C.10.6: turned clockwise, then mirrored left-right) with the Displayed
Area's corners (C.10.4) named on the film as stored; marks in PIXEL units turn with the film.

A viewer applying a presentation state ignores the film's own Display Shutter (PS3.4 N.2.3.1; the GSPS IOD holds
its own, PS3.3 A.33.1): a state without one showed the collimated border again. So the film's shutter, as this
reader applies it (``reading.display_shutter``), is restated: Shutter Shape and each shape's attributes with the
integers the reader applied (an IS edge ``61.5`` the film gives is written as the 62 it is shown at, in its own VR
whatever VR the film used), and the Shutter Presentation Value the reader shows. They stay in the stored film's pixels: the shutter
comes before the Spatial Transformation in the pipeline (PS3.4 N.2.3.1–N.2.3.3), so it turns with the film as the
marks do.
"""
from __future__ import annotations

import math
from copy import deepcopy
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from highdicom.pr import (
    GraphicAnnotation,
    GraphicLayer,
    GraphicObject,
    GrayscaleSoftcopyPresentationState,
    SoftcopyVOILUTTransformation,
    TextObject,
)
from highdicom import PresentationLUTTransformation
from pydicom.dataset import Dataset

MARK_KINDS = ("arrow", "text", "ellipse", "rectangle", "ruler", "angle")
LAYER = "CXR_READER"  # CS: at most 16 characters
#: Characters a text object's Unformatted Text Value (0070,0006) holds: it is ST, at most 1024 characters
#: (PS3.5 Table 6.2-1; PS3.3 C.10.5). The app's note editor allows no more (``cxr_desktop.text_prompts``).
TEXT_VALUE_MAX = 1024
#: Pixel description attributes GSPS needs of the referenced image.
IMAGE_KEYWORDS = ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored",
                  "HighBit", "PixelRepresentation")


@dataclass(frozen=True)
class Mark:
    """One annotation: ``kind`` in ``MARK_KINDS``; ``points`` (x, y) image pixels: one for text, three
    for an angle (arm end, vertex, arm end), two otherwise; ``text`` the note or label (a ruler's and
    an angle's label are measured here when empty)."""

    kind: str
    points: tuple[tuple[float, float], ...]
    text: str = ""


@dataclass(frozen=True)
class SpatialTransformation:
    """The view of a stored film as PS3.3 C.10.6 states it: Image Rotation (0070,0042), ``rotation``
    degrees clockwise (0, 90, 180 or 270), then, when ``horizontal_flip``, Image Horizontal Flip
    (0070,0041) mirrors the turned film left-right. Every view made of quarter turns and mirrors is one
    of these eight."""

    rotation: int = 0
    horizontal_flip: bool = False

    def __post_init__(self):
        if self.rotation not in (0, 90, 180, 270):
            raise ValueError(f"Image Rotation must be 0, 90, 180 or 270 degrees, not {self.rotation!r}")

    def apply(self, array: np.ndarray) -> np.ndarray:
        """``array`` (rows, columns, ...) as a viewer that honours this transformation shows it."""
        out = np.rot90(array, k=-(self.rotation // 90))
        return out[:, ::-1] if self.horizontal_flip else out

    @classmethod
    def of(cls, view: Callable[[np.ndarray], np.ndarray]) -> "SpatialTransformation":
        """The transformation that shows a film as ``view`` does; ``view`` takes a 2-D array to the same
        array turned and/or mirrored (quarter turns, ``[:, ::-1]``, ``[::-1]`` in any order) and must not
        change its values. ``ValueError`` when ``view`` does anything else."""
        corners = np.arange(4).reshape(2, 2)  # the eight views place a square's four corners eight ways
        shown = np.asarray(view(corners))
        for rotation in (0, 90, 180, 270):
            for flip in (False, True):
                candidate = cls(rotation, flip)
                if np.array_equal(candidate.apply(corners), shown):
                    return candidate
        raise ValueError("the view is not made of quarter turns and mirrors")

    def displayed_area(self, rows: int, columns: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """Displayed Area Top Left and Bottom Right Hand Corners (PS3.3 C.10.4) of the whole film: the
        stored pixels, (column, row) counted from 1, that the transformation puts top left and bottom right."""
        stored = {0: (1, 1), 1: (columns, 1), 2: (1, rows), 3: (columns, rows)}
        shown = self.apply(np.arange(4).reshape(2, 2))
        return stored[int(shown[0, 0])], stored[int(shown[1, 1])]


def graphics(marks: Sequence, spacing_mm: tuple[float, float] | None = None) -> tuple[list[GraphicObject], list[TextObject]]:
    """GSPS graphic and text objects for ``marks`` (anything with ``kind``, ``points``, ``text``);
    ``ValueError`` for an unknown kind, and for a text longer than ``TEXT_VALUE_MAX`` characters (a note is
    written whole or not at all: :func:`text_object`). A mark with no extent (a zero-size ellipse) is left out."""
    objects: list[GraphicObject] = []
    texts: list[TextObject] = []
    for mark in marks:
        if mark.kind not in MARK_KINDS:
            raise ValueError(f"unknown annotation kind {mark.kind!r}; known: {', '.join(MARK_KINDS)}")
        points = [(float(x), float(y)) for x, y in mark.points]
        text = str(getattr(mark, "text", "") or "")
        if mark.kind == "text":
            if text:
                texts.append(text_object(text, points[0]))
            continue
        if mark.kind == "ellipse":
            axes = _ellipse_axes(points[0], points[1])
            if axes is not None:
                objects.append(GraphicObject("ELLIPSE", np.array(axes), "PIXEL"))
        elif mark.kind == "rectangle":
            (x0, y0), (x1, y1) = points
            objects.append(_polyline([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]))
        elif mark.kind == "arrow":
            objects.append(_polyline(points))
            head = _arrow_head(points[0], points[1])
            if head is not None:
                objects.append(_polyline(head))
        elif mark.kind == "ruler":
            objects.append(_polyline(points))
            text = text or _length(points[0], points[1], spacing_mm)
        elif mark.kind == "angle":
            objects.append(_polyline(points))
            text = text or f"{_angle(*points):.1f}°"
        if text:
            texts.append(text_object(text, points[-1]))
    return objects, texts


def text_object(text: str, anchor: tuple[float, float]) -> TextObject:
    """A text object holding the whole of ``text`` at the image point ``anchor`` (PIXEL units, no anchor line).
    Unformatted Text Value (0070,0006) is ST (PS3.5 Table 6.2-1: at most 1024 characters; PS3.3 C.10.5):
    ``ValueError`` naming that limit for a longer text, which is never cut (the reader's note cut short, or split
    over text objects drawn on top of each other at one anchor, would say less than the reader wrote)."""
    if len(text) > TEXT_VALUE_MAX:
        raise ValueError(f"a text note of {len(text)} characters is longer than the {TEXT_VALUE_MAX} a presentation "
                         "state's Unformatted Text Value (0070,0006, ST, PS3.5 6.2) holds; shorten the note, or leave "
                         "the annotations out")
    return TextObject(text, "PIXEL", anchor_point=anchor, anchor_point_visible=False)


def build_presentation_state(reference: Dataset, marks: Sequence, *, series_instance_uid: str, series_number: int,
                             sop_instance_uid: str, instance_number: int, manufacturer: str, software_version: str,
                             window: tuple[float, float] | None = None, inverted: bool = False,
                             spacing_mm: tuple[float, float] | None = None,
                             spatial_transformation: SpatialTransformation | None = None,
                             pixel_aspect: float = 1.0, modality_header: Dataset | None = None,
                             display_shutter: Dataset | None = None,
                             referenced_frame: int | None = None) -> GrayscaleSoftcopyPresentationState:
    """The GSPS that shows ``marks`` on the image ``reference`` describes (``source.reference_dataset``
    plus ``IMAGE_KEYWORDS``), in its study; ``window`` is (centre, width) in modality units, the
    window the reader used, else the viewer's own choice. ``inverted``: the film was shown with high
    values dark (a MONOCHROME1 film, or the reader's invert), so the Presentation LUT Shape is INVERSE
    (PS3.3 C.11.6), else IDENTITY. ``spatial_transformation``: the film was shown turned or flipped
    (marks stay in the stored film's pixels). ``pixel_aspect``: physical height / width of a stored pixel
    (``dicom_io.stored_pixel_aspect``), written as the Presentation Pixel Aspect Ratio (C.10.4) so that a film
    with non-square pixels is not shown squashed. ``modality_header``: the film's header; its Modality LUT
    (rescale or table, as this reader applies it: ``dicom_io.applied_rescale``) is restated in the state
    (PS3.3 C.11.1), since a presentation state replaces the image's own and ``window`` is in modality units:
    without it a film with a Rescale Intercept reopened black. ``display_shutter``: the film's Display Shutter
    (``display_shutter_attributes``), written as it is (PS3.3 C.7.6.11, C.11.12): a state replaces the film's
    shutter, and without it the collimated border was shown again. ``referenced_frame``: the number of the frame
    shown of a multi-frame film (1 for the first), which every reference to the film names as its Referenced Frame
    Number (the Presentation State Relationship's and the Graphic Annotation's Referenced Image Sequence, PS3.3
    C.11.11, C.10.5, Table 10-3: Type 1C, required when the reference is not to every frame); None for a
    single-frame film. ``ValueError`` when no mark can be drawn."""
    objects, texts = graphics(marks, spacing_mm)
    if not objects and not texts:
        raise ValueError("no annotation to put in a presentation state")
    layer = GraphicLayer(layer_name=LAYER, order=1, description="Annotations made in CXR Reader")
    annotation = GraphicAnnotation(referenced_images=[reference], graphic_layer=layer,
                                   graphic_objects=objects or None, text_objects=texts or None)
    voi = [SoftcopyVOILUTTransformation(window_center=float(window[0]), window_width=float(window[1]))] if window else None
    modality = _modality_lut(modality_header)
    gsps = GrayscaleSoftcopyPresentationState(
        referenced_images=[reference], series_instance_uid=series_instance_uid, series_number=series_number,
        sop_instance_uid=sop_instance_uid, instance_number=instance_number, manufacturer=manufacturer,
        manufacturer_model_name="CXR Reader", software_versions=software_version, device_serial_number="",
        content_label="CXR_ANNOTATIONS", content_description="Reader's annotations (research use only)",
        graphic_annotations=[annotation], graphic_layers=[layer], voi_lut_transformations=voi,
        modality_lut_transformation=modality,
        presentation_lut_transformation=PresentationLUTTransformation(
            presentation_lut_shape="INVERSE" if inverted else "IDENTITY"),
    )
    if modality_header is not None and modality_header.get("ModalityLUTSequence"):
        gsps.ModalityLUTSequence = deepcopy(modality_header.ModalityLUTSequence)
    for area in gsps.DisplayedAreaSelectionSequence:
        area.PresentationPixelAspectRatio = list(aspect_ratio_pair(pixel_aspect))
    if spatial_transformation is not None and spatial_transformation != SpatialTransformation():
        gsps.ImageRotation = spatial_transformation.rotation
        gsps.ImageHorizontalFlip = "Y" if spatial_transformation.horizontal_flip else "N"
        top_left, bottom_right = spatial_transformation.displayed_area(int(reference.Rows), int(reference.Columns))
        for area in gsps.DisplayedAreaSelectionSequence:
            area.DisplayedAreaTopLeftHandCorner = list(top_left)
            area.DisplayedAreaBottomRightHandCorner = list(bottom_right)
    if display_shutter is not None:
        for element in display_shutter:
            gsps[element.tag] = deepcopy(element)
    if referenced_frame is not None:
        _reference_frame(gsps, str(reference.SOPInstanceUID), referenced_frame)
    for keyword in ("PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence"):
        if keyword in reference:
            setattr(gsps, keyword, reference[keyword].value)
    if any(not text.text_value.isascii() for text in texts):
        # A note or "°" outside the default repertoire: every string of the object is then written as UTF-8.
        gsps.SpecificCharacterSet = "ISO_IR 192"
    return gsps


def _reference_frame(gsps: Dataset, sop_instance_uid: str, frame: int) -> None:
    """Give every Referenced Image Sequence item of ``gsps`` that references ``sop_instance_uid`` the Referenced Frame
    Number ``frame`` (the marks and the window are on that frame alone)."""
    for element in gsps.iterall():
        if element.keyword == "ReferencedImageSequence":
            for item in element.value:
                if str(item.get("ReferencedSOPInstanceUID", "")) == sop_instance_uid:
                    item.ReferencedFrameNumber = frame


def display_shutter_attributes(header: Dataset) -> Dataset | None:
    """The Display Shutter (PS3.3 C.7.6.11) of the film ``header`` describes, as a presentation state restates it:
    Shutter Shape (its shapes this reader applies, BITMAP left out) and those shapes' attributes, in the film's
    stored pixels, holding the integers the reader applied (``DisplayShutter.values``: a film's IS ``61.5`` is
    shown at 62, and a state holding ``61.5`` would break the IS rules and describe another opening), written in
    their dictionary VR (IS); and Shutter Presentation Value (0018,1622): the P-value the reader shows the outside at
    (the film's own; else the L* of its CIELab value; else 0, black), which a grayscale state must hold with a
    shutter (C.11.12). None when the reader applies no shutter to the film: none, open over the whole image, or
    ignored as unreadable (``display_shutter.read_shutter``)."""
    from ...reading.dicom_io import stored_pixel_aspect
    from ...reading.display_shutter import read_shutter

    if "ShutterShape" not in header:
        return None
    shutter, _ = read_shutter(header, (int(header.Rows), int(header.Columns)),
                              pixel_aspect=stored_pixel_aspect(header))
    if shutter is None:
        return None
    attributes = Dataset()
    attributes.ShutterShape = shutter.shapes[0] if len(shutter.shapes) == 1 else list(shutter.shapes)
    for keyword, values in shutter.values.items():
        setattr(attributes, keyword, values[0] if len(values) == 1 else list(values))
    attributes.ShutterPresentationValue = shutter.presentation_value
    return attributes


def _modality_lut(header: Dataset | None):
    """highdicom's Modality LUT transformation restating the rescale this reader applies to the film, or None
    (no rescale, or a Modality LUT Sequence, which is copied as it is)."""
    from highdicom import ModalityLUTTransformation

    from ...reading.dicom_io import applied_rescale

    rescale = applied_rescale(header) if header is not None else None
    if rescale is None or rescale == (1.0, 0.0):
        return None
    slope, intercept = rescale
    rescale_type = str(header.get("RescaleType", "") or "").strip() or "US"  # US: unspecified (C.11.1.1.2)
    return ModalityLUTTransformation(rescale_intercept=intercept, rescale_slope=slope, rescale_type=rescale_type)


def aspect_ratio_pair(aspect: float, largest: int = 1000) -> tuple[int, int]:
    """``aspect`` (vertical / horizontal) as the pair of integers (vertical, horizontal) an IS pair holds
    (the nearest fraction with a denominator up to ``largest``; (1, 1) for square pixels)."""
    from fractions import Fraction

    if not (math.isfinite(aspect) and aspect > 0):
        return 1, 1
    ratio = Fraction(aspect).limit_denominator(largest)
    if ratio.numerator == 0:
        return 1, largest
    return ratio.numerator, ratio.denominator


def _polyline(points) -> GraphicObject:
    return GraphicObject("POLYLINE", np.array(points, dtype=np.float64), "PIXEL")


def _ellipse_axes(a, b):
    """Major-axis then minor-axis end points of the ellipse inscribed in the box with corners a and b."""
    cx, cy = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    rx, ry = abs(b[0] - a[0]) / 2, abs(b[1] - a[1]) / 2
    if rx <= 0 or ry <= 0:
        return None
    horizontal = [(cx - rx, cy), (cx + rx, cy)]
    vertical = [(cx, cy - ry), (cx, cy + ry)]
    return horizontal + vertical if rx >= ry else vertical + horizontal


def _arrow_head(tail, tip, fraction: float = 0.2, spread_deg: float = 25.0):
    """The head's two barbs and the tip as one polyline: barb, tip, barb."""
    dx, dy = tip[0] - tail[0], tip[1] - tail[1]
    length = math.hypot(dx, dy)
    if length <= 0:
        return None
    back, spread, size = math.atan2(-dy, -dx), math.radians(spread_deg), length * fraction
    barbs = [(tip[0] + size * math.cos(back + turn), tip[1] + size * math.sin(back + turn)) for turn in (spread, -spread)]
    return [barbs[0], tip, barbs[1]]


def _length(a, b, spacing_mm) -> str:
    dx, dy = b[0] - a[0], b[1] - a[1]
    if spacing_mm:
        return f"{math.hypot(dx * spacing_mm[1], dy * spacing_mm[0]):.1f} mm"
    return f"{math.hypot(dx, dy):.0f} px"


def _angle(a, vertex, b) -> float:
    first = math.atan2(a[1] - vertex[1], a[0] - vertex[0])
    second = math.atan2(b[1] - vertex[1], b[0] - vertex[0])
    degrees = abs(math.degrees(first - second)) % 360
    return 360 - degrees if degrees > 180 else degrees
