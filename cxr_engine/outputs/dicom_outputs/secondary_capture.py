"""The Secondary Capture image of one classified film: the film as displayed, the heat-map, the
result and the intended-use notice burned in (PS3.3 A.8.1, Secondary Capture Image IOD, built by
highdicom's ``SCImage``).
"""
from __future__ import annotations

import textwrap
from typing import Sequence

import numpy as np
from highdicom.sc import SCImage
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from ...pixels.resampling import resize_area
from ...reading.lossy_compression import LossyCompression
from ..band_text import ascii_text, band_font

#: Longest side, in pixels, of the captured film (larger films are shrunk; the band is added below).
MAX_SIDE = 2048
#: Burned into every capture, in capitals so it reads at thumbnail size.
NOTICE = "RESEARCH USE ONLY - NOT FOR DIAGNOSIS"
_BAND_BG = 0
_TEXT_RGB = (255, 255, 255)
_NOTICE_RGB = (255, 200, 60)
_SCOPE_RGB = (255, 60, 60)
_MAYBE_RGB = (255, 200, 60)
_CLOSE_CALL_RGB = (215, 215, 215)
#: Heads the warnings in the band of a film outside the model's scope (``image_checks.FIRM``: the app's red
#: banner; the SR's out-of-scope flag Yes).
SCOPE_HEADING = "OUTSIDE THE MODEL'S SCOPE - RESULT NOT RELIABLE:"
#: Heads them for a film possibly out of scope (``image_checks.MAYBE``: a child's chest without an age; the SR's
#: flag Unknown).
MAYBE_HEADING = "POSSIBLY OUTSIDE THE MODEL'S SCOPE - LESS RELIABLE FOR A CHILD:"
#: Heads them for a close call (``image_checks.CLOSE_CALL``: the model unsure, the film may well be in scope; the
#: SR's flag No), in grey as the app's banner.
CLOSE_CALL_HEADING = "CLOSE CALL - THE MODEL IS UNSURE BETWEEN ITS CLASSES:"
#: Characters per band line for a warning (longer warnings wrap), so the text stays readable.
WRAP_WIDTH = 64


def capture_pixels(film_rgb: np.ndarray, result_lines: Sequence[str], notice: str = NOTICE,
                   max_side: int = MAX_SIDE, warnings: Sequence[str] = (),
                   out_of_scope: bool | str = False) -> np.ndarray:
    """RGB uint8 (H', W, 3): ``film_rgb`` (uint8 (H, W, 3), the film as displayed, heat-map included,
    square pixels) shrunk to ``max_side`` when larger, above a black band holding ``result_lines``
    (white), then the heading of the film's banner kind when it is flagged (``out_of_scope``: the
    ``image_checks.banner_kind`` of its reasons, as the app's banner; ``True`` is ``FIRM``; see
    :func:`scope_heading`), then each of ``warnings`` (the suitability warnings the SR and the CSV carry) wrapped at
    ``WRAP_WIDTH`` characters (amber), then
    ``notice`` (amber). Text is ASCII, drawn with Pillow in the first font of ``band_text.BAND_FONTS`` found:
    dashes, quotes and "°" are spelled in ASCII, other characters print as "?". The band is
    ``line_height(W)`` rows per line.
    """
    if film_rgb.dtype != np.uint8 or film_rgb.ndim != 3 or film_rgb.shape[2] != 3:
        raise ValueError(f"film must be uint8 (H, W, 3), got {film_rgb.dtype} {film_rgb.shape}")
    rows, cols = film_rgb.shape[:2]
    scale = min(1.0, max_side / max(rows, cols))
    if scale < 1.0:
        film_rgb = resize_area(film_rgb, max(1, round(rows * scale)), max(1, round(cols * scale)))
    width = film_rgb.shape[1]
    lines = [(line, _TEXT_RGB) for line in result_lines] + band_warning_lines(warnings, out_of_scope) + \
        [(notice, _NOTICE_RGB)]
    line_h = line_height(width)
    band = np.full((line_h * len(lines), width, 3), _BAND_BG, np.uint8)
    for number, (text, rgb) in enumerate(lines):
        _put_line(band, ascii_text(text), number * line_h, line_h, rgb)
    return np.ascontiguousarray(np.concatenate([film_rgb, band], axis=0))


def scope_heading(kind: bool | str) -> tuple[str, tuple[int, int, int]] | None:
    """The band's heading (text, RGB) of a film with the banner ``kind`` (``image_checks.banner_kind``; ``True``
    for ``FIRM``, as callers that only knew "out of scope" passed it): red ``SCOPE_HEADING`` for a film outside
    the model's scope, amber ``MAYBE_HEADING`` for one possibly outside, grey ``CLOSE_CALL_HEADING`` for a close
    call (a close call was headed "OUTSIDE THE MODEL'S SCOPE" while the app and the PDF showed it grey, as may be
    in scope); ``None`` in scope."""
    from ...models.image_checks import CLOSE_CALL, FIRM, MAYBE

    kind = FIRM if kind is True else kind or ""
    return {FIRM: (SCOPE_HEADING, _SCOPE_RGB), MAYBE: (MAYBE_HEADING, _MAYBE_RGB),
            CLOSE_CALL: (CLOSE_CALL_HEADING, _CLOSE_CALL_RGB)}.get(kind)


def band_warning_lines(warnings: Sequence[str],
                       out_of_scope: bool | str = False) -> list[tuple[str, tuple[int, int, int]]]:
    """(text, RGB) band lines: the heading of the banner kind ``out_of_scope`` (:func:`scope_heading`), then each
    of ``warnings`` wrapped at ``WRAP_WIDTH`` characters, continuation lines indented (none for a film in scope
    without warnings)."""
    heading = scope_heading(out_of_scope)
    lines = [heading] if heading else []
    for warning in warnings:
        wrapped = textwrap.wrap(ascii_text(warning), WRAP_WIDTH, initial_indent="- ", subsequent_indent="  ")
        lines.extend((line, _NOTICE_RGB) for line in wrapped)
    return lines


def line_height(width: int) -> int:
    """Rows of one text line in the band under a film ``width`` pixels wide."""
    return max(22, round(width * 0.04))


_REFERENCE_SIZE = 100
#: Glyphs spanning the font's capital height and descender, sized to fit the line.
_TALLEST = "H(gy)"


def _put_line(band: np.ndarray, text: str, top: int, height: int, rgb: tuple[int, int, int]) -> None:
    """Draw ``text`` (anti-aliased, Pillow ``ImageDraw``) left-aligned in rows ``top``..``top + height``
    of ``band``, as large as fits within a margin of ``height // 5`` (at least 4) pixels: the font's
    capital-to-descender box (``_TALLEST``) in the line's height, ``text`` in the band's width."""
    from PIL import Image, ImageDraw

    margin = max(4, height // 5)
    width = band.shape[1]
    reference = band_font(_REFERENCE_SIZE)
    text_w = max(reference.getlength(text), 1.0)
    box = reference.getbbox(_TALLEST)
    size = int(_REFERENCE_SIZE * min((height - 2 * margin) / max(box[3] - box[1], 1), (width - 2 * margin) / text_w))
    font = band_font(max(size, 1))
    box_top, box_bottom = font.getbbox(_TALLEST)[1::2]
    region = Image.fromarray(np.ascontiguousarray(band[top:top + height]))
    # Anchor "la": y is the ascender line; shift it so the tallest glyphs' box sits mid-line.
    y = (height - (box_bottom - box_top)) / 2 - box_top
    ImageDraw.Draw(region).text((margin, y), text, fill=rgb, font=font, anchor="la")
    band[top:top + height] = np.asarray(region)


def build_secondary_capture(reference: Dataset, pixels: np.ndarray, *, series_instance_uid: str,
                            series_number: int, sop_instance_uid: str, instance_number: int,
                            manufacturer: str, software_version: str,
                            patient_orientation: tuple[str, str] | None = None,
                            series_description: str = "CXR Reader AI result (research use only)",
                            lossy_compression: LossyCompression | None = None,
                            referenced_frame: int | None = None) -> SCImage:
    """The SC instance for ``pixels`` (RGB uint8 from :func:`capture_pixels`) in ``reference``'s study.

    ``reference`` comes from ``source.reference_dataset`` (patient, study and source image; the
    de-identified one when the outputs are de-identified); its patient and study attributes are copied as the SR and
    the Encapsulated PDF copy them (PS3.3 A.8.1: Patient, General Study and Patient Study modules, Issuer of Patient
    ID, Patient's Age and Study Description included). The capture is a new series of the same
    study, Modality OT (see below), Burned In Annotation YES, and it references the
    source image (Source Image Sequence, PS3.3 C.7.6.1.1.4). ``patient_orientation`` is the
    capture's row and column directions (e.g. ``("L", "F")``) when known: the source's own when the
    film is shown as stored; ``None`` leaves Patient Orientation empty (Type 2: unknown).
    ``lossy_compression`` is the source film's (``lossy_compression.lossy_compression`` of its metadata), None
    when its pixels were never lossy compressed: an image derived from lossy compressed pixels says so too, Lossy
    Image Compression 01 with the source's Ratio and Method (PS3.3 C.7.6.1.1.5: once 01, never reset), both left out
    when a value of either breaks its VR (``LossyCompression.dicom_values``: a source's bad value never stops the
    capture). ``referenced_frame`` is the number of the frame shown of a multi-frame source (1 for the first), written
    as the Source Image Sequence's Referenced Frame Number (PS3.3 Table 10-3, Type 1C: required when the reference is
    not to every frame); None for a single-frame source.

    Modality is OT ("Other", PS3.3 C.7.3.1.1.1), highdicom's value for a Secondary Capture, not the
    source's CR or DX: the SC Equipment module (C.8.6.1) lets Modality name the source equipment (Type 3),
    but an RGB capture with burned-in text made on a workstation (Conversion Type WSD) is not a radiograph,
    and with the film's modality a PACS files it under the study's CR/DX films (modality filters, hanging
    protocols, Modalities in Study). The film it derives from is in Source Image Sequence.
    """
    known = patient_orientation is not None and len(patient_orientation) == 2 and all(patient_orientation)
    sc = SCImage.from_ref_dataset(
        ref_dataset=reference, pixel_array=pixels, photometric_interpretation="RGB", bits_allocated=8,
        coordinate_system="PATIENT", series_instance_uid=series_instance_uid, series_number=series_number,
        sop_instance_uid=sop_instance_uid, instance_number=instance_number, manufacturer=manufacturer,
        transfer_syntax_uid=ExplicitVRLittleEndian, series_description=series_description,
        software_versions=software_version,
        # highdicom wants an orientation for patient coordinates; an unknown one is emptied below.
        patient_orientation=tuple(patient_orientation) if known else ("L", "F"),
    )
    if not known:
        sc.PatientOrientation = None
    # The Patient, General Study and Patient Study modules as the SR and the Encapsulated PDF copy them (highdicom's
    # ``copy_patient_and_study_information``): ``from_ref_dataset`` keeps only some (no Issuer of Patient ID,
    # Patient's Age or Study Description). A de-identified ``reference`` holds only what Annex E lets through.
    sc.copy_patient_and_study_information(reference)
    sc.Modality = "OT"
    sc.ConversionType = "WSD"  # made on a workstation (PS3.3 C.8.6.1), not digitised film
    sc.BurnedInAnnotation = "YES"
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.DerivationDescription = "Chest X-ray as displayed with the AI heat-map and result burned in"
    if reference.get("BodyPartExamined"):
        sc.BodyPartExamined = reference.BodyPartExamined
    sc.SourceImageSequence = [_image_reference(reference, referenced_frame)]
    if lossy_compression is not None:
        sc.LossyImageCompression = "01"
        ratios, methods = lossy_compression.dicom_values()  # none when a source's value breaks its VR
        if ratios:
            sc.LossyImageCompressionRatio = list(ratios)
        if methods:
            sc.LossyImageCompressionMethod = list(methods)
    _copy_deidentification(reference, sc)
    return sc


def _image_reference(reference: Dataset, referenced_frame: int | None = None) -> Dataset:
    """An Image SOP Instance Reference (PS3.3 Table 10-3) to ``reference``, to its frame ``referenced_frame`` of a
    multi-frame source."""
    item = Dataset()
    item.ReferencedSOPClassUID = reference.SOPClassUID
    item.ReferencedSOPInstanceUID = reference.SOPInstanceUID
    if referenced_frame is not None:
        item.ReferencedFrameNumber = referenced_frame
    return item


def _copy_deidentification(reference: Dataset, target: Dataset) -> None:
    for keyword in ("PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence"):
        if keyword in reference:
            setattr(target, keyword, reference[keyword].value)

