"""Text shown to the reader, as pure functions of engine records (no Qt, no state)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cxr_engine.display_text import format_age, format_date, format_percent, format_person_name, format_time
from cxr_engine.outputs.undecodable import escape_undecodable
from cxr_engine.pixels.image import CxrImage, ImageMetadata
from cxr_engine.pixels.windowing import VoiLut, Window
from cxr_engine.reading.lossy_compression import lossy_compression_text


def voi_text(voi: Window | VoiLut) -> str:
    """``C 2048 W 4096`` for a window, ``VOI LUT`` (and its explanation) for a table."""
    if isinstance(voi, VoiLut):
        return f"VOI LUT {voi.explanation}".strip()
    return f"C {voi.center:.6g} W {voi.width:.6g}"


def failure_reason(exc: BaseException) -> str:
    """What the reader is told about a failed job: the engine error's ``reason`` (the file's problem in
    words, e.g. ``FileError``), else the exception's type and message."""
    return getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"


#: How :func:`classification_problem` starts for a film that holds no image (the study tree says so, not "error").
NOT_CLASSIFIED = "not classified"


def classification_problem(exc: BaseException) -> str:
    """What the reader is told when a film gets no class: ``not classified: <reason>`` for a film that
    holds no image (the engine's ``NoImageContentError``: nothing went wrong, there is nothing to
    classify), else ``classification failed: <reason>`` (:func:`failure_reason`)."""
    from cxr_engine.errors import NoImageContentError

    verb = NOT_CLASSIFIED if isinstance(exc, NoImageContentError) else "classification failed"
    return f"{verb}: {failure_reason(exc)}"


#: Unreadable files named one by one in :func:`no_image_text`; the rest are counted.
NAMED_PROBLEMS = 3


def no_image_text(results) -> str:
    """Why the scans ``results`` (``ScanResult``s) gave no image to show, naming the files: the scan's
    reasons (``path: reason``, as the Problems list words them, the first :data:`NAMED_PROBLEMS`), else the
    DICOM objects without pixel data, else that nothing was found in the paths scanned, with how many files this
    program wrote were skipped (:func:`own_outputs_text`). The reasons name
    each file's kind themselves (``not a PNG or JPEG image (...)``, ``not a valid DICOM file: ...``)."""
    from cxr_engine.messages import printable

    errors = [error for result in results for error in result.errors]
    if errors:
        named = "; ".join(f"{printable(error.path, None)}: {error.reason}" for error in errors[:NAMED_PROBLEMS])
        more = f"; {len(errors) - NAMED_PROBLEMS} more" if len(errors) > NAMED_PROBLEMS else ""
        return f"no image can be read: {named}{more}"
    objects = [instance.path for result in results for instance in result.all_instances() if not instance.is_image]
    if objects:
        more = f" and {len(objects) - 1} more" if len(objects) > 1 else ""
        return (f"no image to show: {printable(objects[0], None)}{more} hold(s) no pixel data "
                "(DICOM objects that are not images)")
    own = own_outputs_text(results)
    return "no DICOM, PNG or JPEG image was found in the paths given" + (f": {own}" if own else "")


def own_outputs_text(results) -> str:
    """How many files the scans ``results`` skipped because this program wrote them (``ScanResult.own_outputs``:
    heat-maps, lung masks, AI result objects), in ``cxr-classify``'s words, naming the first; ``""`` for none."""
    from cxr_engine.messages import own_outputs_skipped

    own = [path for result in results for path in result.own_outputs]
    return own_outputs_skipped(own) if own else ""


def cannot_display_text(reason: str, file_fault: bool = True) -> str:
    """The viewport's message for a file that could not be decoded; without ``file_fault`` (the decoding process
    could not start: ``DecoderStartError``) the file is not blamed, no film can be shown."""
    return f"This file cannot be displayed:\n{reason}" if file_fault else f"No film can be displayed:\n{reason}"


def heatmap_caption(target_class: str, probability: float) -> str:
    """``Heat-map: COVID-19 98.8 %``: the class whose score a heat-map shows and the model's
    probability of it, shown in the corner of each viewport (``""`` without a class)."""
    from cxr_engine.models.model_card import CLASS_DISPLAY_NAMES

    if not target_class:
        return ""
    return f"Heat-map: {CLASS_DISPLAY_NAMES.get(target_class, target_class)} {format_percent(probability)}"


@dataclass(frozen=True)
class CornerText:
    """Four blocks of lines for the viewer's corners."""

    top_left: tuple[str, ...]
    top_right: tuple[str, ...]
    bottom_left: tuple[str, ...]
    bottom_right: tuple[str, ...]


def corner_text(meta: ImageMetadata, shape: tuple[int, int], voi: Window | VoiLut, zoom: float,
                rotation: int, flip_h: bool, flip_v: bool, inverted: bool) -> CornerText:
    """Demographics (top), technique (bottom left) and display state (bottom right); names, dates, times
    and ages as the PDF report writes them (``cxr_engine.display_text``). The technique ends with the pixels'
    lossy compression when they have been through one (``Lossy compressed (JPEG, 10:1)``, PS3.3 C.7.6.1.1.5:
    ``cxr_engine.reading.lossy_compression``), as the PDF's identification says it."""
    sex_age = " ".join(v for v in (meta.patient_sex, format_age(meta.patient_age)) if v)
    top_left = [format_person_name(meta.patient_name), f"ID {meta.patient_id}" if meta.patient_id else "",
                f"Born {format_date(meta.patient_birth_date)}" if meta.patient_birth_date else "", sex_age]
    when = " ".join(v for v in (format_date(meta.study_date), format_time(meta.study_time)) if v)
    top_right = [meta.institution_name, meta.study_description, when,
                 f"Acc {meta.accession_number}" if meta.accession_number else ""]
    technique = " ".join(v for v in (meta.modality, meta.view_position, meta.body_part) if v)
    series = " ".join(v for v in (f"Se {meta.series_number}" if meta.series_number else "",
                                  f"Im {meta.instance_number}" if meta.instance_number else "") if v)
    bottom_left = [technique, meta.series_description, series, f"{shape[1]} × {shape[0]} px",
                   lossy_compression_text(meta)]
    transform = [f"rotated {rotation}°" if rotation else "", "flipped H" if flip_h else "",
                 "flipped V" if flip_v else "", "inverted" if inverted else ""]
    bottom_right = [voi_text(voi), f"Zoom {100.0 * zoom:.0f} %", " ".join(t for t in transform if t)]
    blocks = (top_left, top_right, bottom_left, bottom_right)
    return CornerText(*(tuple(line for line in block if line) for block in blocks))


def pixel_readout(image: CxrImage, row: int, col: int) -> str:
    """``x 512  y 300  value 1234  (86.0, 50.4 mm)`` for a pixel inside ``image``, else ``""``."""
    height, width = image.shape
    if not (0 <= row < height and 0 <= col < width):
        return ""
    value = image.modality[row, col]
    value_text = f"{value:.6g}" if image.modality.dtype.kind == "f" else str(int(value))
    text = f"x {col}  y {row}  value {value_text}"
    if image.spacing_mm:
        row_mm, col_mm = image.spacing_mm
        text += f"  ({(col + 0.5) * col_mm:.1f}, {(row + 0.5) * row_mm:.1f} mm{spacing_note(image)})"
    return text


def spacing_note(image: CxrImage) -> str:
    """`` at detector`` when only ImagerPixelSpacing calibrates the image (not corrected for magnification)."""
    return " at detector" if image.spacing_source == "ImagerPixelSpacing" else ""


def loading_text(path) -> str:
    """``Loading RG1_J2KI.dcm…``: what the viewer and the result panel say while the film of ``path`` is
    being decoded, in place of the film and the result shown before it."""
    return f"Loading {escape_undecodable(Path(path).name)}…"
