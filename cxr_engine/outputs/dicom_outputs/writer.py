"""Writes the DICOM outputs of classified films into a folder: per film a Secondary Capture, a
Comprehensive SR and an Encapsulated PDF, each kind in one series per study, program version and
model, with UIDs derived from what each object holds (its patient and study, and what it shows), so that a rerun
sent again duplicates nothing and an object that holds anything else is a new instance.
"""
from __future__ import annotations

import io
import logging
import warnings as warnings_module
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from ...errors import CxrError, DicomOutputError
from ...pixels.image import CxrImage
from ...models.classifier import HeatmapResult
from ...reading.dicom_io import burned_in_annotation
from ..deidentify import pixel_text_note
from ..output_paths import safe_name_part, source_problem
from .source import Deidentifier, read_source_header, reference_dataset, referenced_frame, settle_character_set

if TYPE_CHECKING:
    from .presentation_state import SpatialTransformation

logger = logging.getLogger(__name__)

#: Output kinds in writing order, with the series number each gets in its study. ``gsps`` (the
#: reader's annotations) is written only when there are marks to show.
KINDS: dict[str, int] = {"sc": 9901, "sr": 9902, "pdf": 9903, "gsps": 9904}
MANUFACTURER = "CXR Reader project"


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class WrittenObject:
    """One DICOM object on disk: ``kind`` is ``sc``, ``sr``, ``pdf`` or ``gsps``."""

    kind: str
    path: Path
    sop_instance_uid: str
    study_instance_uid: str


@dataclass
class _Series:
    uid: str
    number: int


def _film_instance_number(header: Dataset) -> int:
    """An output's Instance Number: its film's (a positive integer), else 1. Not a count within the run: the
    same object (the same SOP Instance UID, derived from its content) must carry the same number whichever
    films were run with it."""
    try:
        number = int(str(header.get("InstanceNumber", "") or "").strip())
    except ValueError:
        return 1
    return number if 0 < number < 2**31 else 1


@dataclass
class DicomOutputWriter:
    """Makes and writes the DICOM outputs of one session (a CLI run, one export from the app).

    ``card`` is the classifier's ``ModelCard``. With ``deidentify`` every object carries only what
    PS3.15 Annex E's basic profile lets through (``source.Deidentifier``; the same new study UID
    for every film of a study) and the PDF is the de-identified report. ``deidentifier`` is the session's
    de-identifier when the session outlives this writer (the app makes a writer per Send, and one study sent twice
    must keep one pseudonymous study and patient: ``cxr_desktop.dicom_send.session_deidentifier``); by default the
    writer makes its own (a new random salt), and its Retain Patient Characteristics Option must be the writer's
    ``retain_patient_characteristics`` (``ValueError`` otherwise). ``kinds`` chooses the
    objects (default all). ``inputs`` are the session's other source paths (the CLI's inputs, the
    folders open in the app); ``outbox`` says ``folder`` is this program's own temporary folder of
    objects to send (not checked against the sources). Files are written atomically; a folder that the one output rule
    (``output_paths.source_problem``) refuses for the film or ``inputs`` is refused, so nothing is
    ever written into a source folder. A file already there under an object's name is replaced only by the same
    object (the same SOP Instance UID, so the same content: :meth:`_next`), never by another: the film's outputs are
    then refused, naming the file, before any is written (as ``cxr-classify`` refuses a folder holding an earlier
    run's files, ``earlier_outputs``). Two de-identified saves of one film in one app session share their names
    (``deidentified_stem``: the film's new UID), so a second one made with another window is refused, not put in
    place of the first without a word.
    """

    folder: Path
    card: object
    deidentify: bool = False
    retain_patient_characteristics: bool = False
    kinds: Sequence[str] = ("sc", "sr", "pdf", "gsps")
    inputs: Sequence[Path] = ()
    outbox: bool = False
    deidentifier: Deidentifier | None = field(default=None, repr=False)
    _deidentifier: Deidentifier | None = field(default=None, init=False, repr=False)
    _series: dict[tuple[str, str], _Series] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        self.folder = Path(self.folder)
        self.kinds = tuple(self.kinds)
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown DICOM output kinds {sorted(unknown)} (known: {', '.join(KINDS)})")
        if self.deidentify:
            self._deidentifier = self.deidentifier or Deidentifier(self.retain_patient_characteristics)
            if self._deidentifier.retain_patient_characteristics != self.retain_patient_characteristics:
                raise ValueError("the session's de-identifier and this writer differ on the Retain Patient "
                                 "Characteristics Option")

    @property
    def software_version(self) -> str:
        from ... import __version__

        return f"CXR Reader {__version__}"

    @property
    def model_version(self) -> str:
        return f"weights sha256:{self.card.weights_sha256[:16]}"

    def write(self, image: CxrImage, heatmap_result: HeatmapResult, *,
              warnings: Sequence[str] = (), stem: str | None = None,
              displayed_rgb: np.ndarray | None = None, pdf: bytes | None = None, marks: Sequence = (),
              window: tuple[float, float] | None = None, inverted: bool | None = None,
              spatial_transformation: SpatialTransformation | None = None,
              out_of_scope: str = "") -> list[WrittenObject]:
        """Make and write the outputs for one classified film; raises ``DicomOutputError``.

        ``heatmap_result`` holds the prediction and the heat-map shown. ``displayed_rgb`` (uint8 (H, W, 3),
        square pixels) is the film as the reader saw it, heat-map included; by default the film's
        own window with the heat-map at the usual opacity. ``pdf`` is the report to encapsulate;
        by default a one-page report of this film (de-identified when the writer is), with the banner of
        its ``out_of_scope`` reasons (``scope_score.out_of_scope``; ``""`` in scope).
        ``stem`` names the files (``<stem>_sc.dcm``...; a file there holding another object is never replaced:
        :meth:`replaced_problem`), by default the film's file name; de-identified, never
        the film's (a file name is often the patient's name or ID): a ``stem`` that carries the film's file name
        or an identifier of its patient is not used, and the default is ``deidentified_stem``'s (``anon-`` and a
        digest of the new SOP Instance UID). De-identified, ``warnings`` go through
        ``deidentify.redact_generated_text`` (no identifier, quoted identifying value, UID, path or file name) and
        each object says that text burned into the film is not removed (``deidentify.pixel_text_note``; the source's
        Burned In Annotation decides the wording), and a note that de-identification makes longer than a
        presentation state holds is refused with that cause (:func:`deidentified_note_problem`). ``marks``
        (``presentation_state.Mark`` or anything with ``kind``, ``points``, ``text``) and ``window``
        ((centre, width) in modality units) make the Grayscale Softcopy Presentation State when
        ``gsps`` is among the kinds and there is a mark; ``inverted`` says the film was shown with
        high values dark (default: as the film asks, ``image.invert``); ``spatial_transformation`` that it was
        shown turned or flipped (marks are in the stored film's pixels either way). Of a multi-frame film, the SC, the
        SR and the presentation state reference the frame shown (``source.referenced_frame``).
        """
        source_path = Path(image.path)
        try:
            reason = None if self.outbox else source_problem(self.folder, (source_path, *self.inputs))
            if reason:
                raise DicomOutputError(source_path, f"the DICOM output folder {self.folder} {reason}")
            header = read_source_header(source_path)
            reference = reference_dataset(header, self._deidentifier)
            burned_in = burned_in_annotation(header)
            frame = referenced_frame(header)
            if self.deidentify:
                warnings = self.deidentified_warnings(warnings, image, source_path)
                if "gsps" in self.kinds and marks:
                    problem = deidentified_note_problem(marks, image.metadata)
                    if problem:
                        raise DicomOutputError(source_path, problem)
            with warnings_module.catch_warnings():
                # A source's one-word Patient's Name ("Anonymized") is copied as it is.
                warnings_module.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
                objects = self._build(image, heatmap_result, reference, _film_instance_number(header),
                                      tuple(warnings), displayed_rgb, pdf,
                                      out_of_scope, burned_in, frame)
                if "gsps" in self.kinds and marks:
                    if self.deidentify:  # the reader's notes as the de-identified PDF prints them
                        marks = deidentified_marks(marks, image.metadata)
                    shown_inverted = image.invert if inverted is None else inverted
                    objects.append(("gsps", self._presentation_state(image, header, reference, marks, window,
                                                                     shown_inverted, spatial_transformation, frame)))
            if self.deidentify:
                stem = self.deidentified_stem(stem, image, reference)
            stem = stem or safe_name_part(source_path.stem)
            for kind, dataset in objects:
                problem = self.replaced_problem(self._path(kind, stem), dataset)
                if problem:
                    raise DicomOutputError(source_path, problem)
            return [self._save(kind, dataset, stem) for kind, dataset in objects]
        except DicomOutputError:
            raise
        except CxrError as exc:
            raise DicomOutputError(source_path, getattr(exc, "reason", str(exc))) from exc
        except OSError as exc:
            raise DicomOutputError(source_path, f"cannot write to {self.folder} ({exc.strerror or exc})") from exc
        except Exception as exc:  # a header value the libraries refuse: this film fails, the batch goes on
            logger.exception("DICOM outputs failed for %s", source_path)
            raise DicomOutputError(source_path, f"the DICOM outputs could not be made: {type(exc).__name__}: {exc}") from exc

    def deidentified_warnings(self, warnings: Sequence[str], image: CxrImage, source_path: Path) -> tuple[str, ...]:
        """``warnings`` as a de-identified object may carry them (``deidentify.redact_generated_text``): without the
        patient's identifiers, a quoted identifying value, a UID, a path, or the name of the film's file or of
        another input. The caller's own de-identified wording (``copies.copies_note_deidentified``...) passes as
        it is; this is the rule no caller can forget."""
        from ..deidentify import redact_generated_text

        paths = (source_path, *(Path(p) for p in self.inputs))
        return tuple(redact_generated_text(w, image.metadata, paths=paths) for w in warnings)

    def deidentified_stem(self, stem: str | None, image: CxrImage, reference: Dataset) -> str:
        """The file-name stem of a de-identified object: ``stem`` unless it carries the film's file name or stem
        or an identifier of its patient (``deidentify.redact_text``), each as a whole word, else ``anon-`` and
        twelve hex digits of the new SOP Instance UID (its salt is the session's: nothing traces it back). A stem of
        digits alone is the CLI's input number (``dicom_cli``: ``00003``, tied to the CSV row of that number): the
        run's, not the source's, so it is kept even when the source file happens to be named ``00003.dcm``; only an
        identifier of the patient (an ID that is that number) still sends it to ``anon-``."""
        import re

        from ..deidentify import redact_text

        source = Path(image.path)
        own = [re.escape(t) for t in (source.name, source.stem) if len(t) >= 2]
        input_number = bool(stem) and stem.isascii() and stem.isdigit()
        carries = (not input_number and bool(own)
                   and re.search(rf"(?<![^\W_])(?:{'|'.join(own)})(?![^\W_])", stem or "", re.IGNORECASE))
        if stem and not carries and redact_text(stem, image.metadata) == stem:
            return stem
        if stem:
            logger.info("a de-identified object's name would carry its source's: named by its new UID instead")
        return "anon-" + _digest(str(reference.SOPInstanceUID).encode())[:12]

    def _build(self, image, heatmap_result, reference, number, warnings, displayed_rgb, pdf,
               out_of_scope="", burned_in="", frame: int | None = None) -> list[tuple[str, Dataset]]:
        from ...models.image_checks import banner_kind
        from ...reading.lossy_compression import lossy_compression
        from .encapsulated_pdf import build_encapsulated_pdf
        from .secondary_capture import build_secondary_capture, capture_pixels
        from .structured_report import build_structured_report
        from .source import withdraw_identity_removed

        # A de-identified object says what de-identification leaves: text burned into the film.
        note = pixel_text_note(burned_in) if self.deidentify else ""
        # ... and an object showing a film whose source says it has such text claims no identity removed.
        shows_identity = self.deidentify and burned_in == "YES"
        common = dict(manufacturer=MANUFACTURER, software_version=self.software_version)
        result = (repr(tuple(heatmap_result.prediction.probabilities)), *warnings, out_of_scope)
        # The frame referenced is what the object is about (none named for a single-frame film).
        about_frame = [f"frame {frame}"] if frame is not None else []
        built = []
        if "sc" in self.kinds:
            film = displayed_rgb if displayed_rgb is not None else default_film(image, heatmap_result)
            # Headed by the film's banner kind, as the app and the PDF show it: a close call is not "outside".
            band = band_warnings(warnings, out_of_scope) + ([f"De-identified: {note}"] if note else [])
            pixels = capture_pixels(film, result_lines(heatmap_result), warnings=band,
                                    out_of_scope=banner_kind(out_of_scope))
            # The source's orientation holds for the default film (as stored); the app's displayed
            # film may be rotated or flipped, so its orientation is left unknown.
            orientation = source_orientation(reference) if displayed_rgb is None else None
            # Derived from lossy compressed pixels, the capture says so (PS3.3 C.7.6.1.1.5), and is another object.
            lossy = lossy_compression(image.metadata)
            sc = build_secondary_capture(reference, pixels, patient_orientation=orientation, lossy_compression=lossy,
                                         referenced_frame=frame,
                                         **self._next("sc", reference, _digest(pixels.tobytes()),
                                                      *([repr(lossy)] if lossy else []),
                                                      *about_frame, number=number),
                                         **common)
            built.append(("sc", withdraw_identity_removed(sc) if shows_identity else sc))
        if "sr" in self.kinds:
            built.append(("sr", build_structured_report(
                reference, heatmap_result.prediction, model_version=self.model_version, warnings=warnings,
                out_of_scope=out_of_scope, deidentification_note=note, referenced_frame=frame,
                device_uid=generate_uid(entropy_srcs=["CXR Reader", self.card.name]),
                parameters=self.algorithm_parameters(),
                **self._next("sr", reference, result, self.model_version, *self.algorithm_parameters(), *about_frame,
                             number=number), **common)))
        if "pdf" in self.kinds:
            if pdf is None:  # the report this writer makes: named by what it prints
                page = self._report_page(image, heatmap_result, warnings, out_of_scope, burned_in)
                document, content = self._report(page), self.report_content(page)
            else:  # one given by the caller is its own content (its bytes, its own timestamp included)
                document, content = pdf, _digest(pdf)
            encapsulated = build_encapsulated_pdf(reference, document,
                                                  **self._next("pdf", reference, content, number=number), **common)
            built.append(("pdf", withdraw_identity_removed(encapsulated) if shows_identity else encapsulated))
        return built

    def _presentation_state(self, image, header, reference, marks, window, inverted, spatial_transformation,
                            frame: int | None = None):
        from ...reading.dicom_io import applied_rescale, stored_pixel_aspect, stored_spacing
        from .presentation_state import IMAGE_KEYWORDS, build_presentation_state, display_shutter_attributes

        for keyword in IMAGE_KEYWORDS:
            if keyword in header:
                setattr(reference, keyword, header[keyword].value)
        # The marks are on the stored film: so are the spacing and aspect (the film shown may be turned).
        spacing, aspect = stored_spacing(header), stored_pixel_aspect(header)
        shutter = display_shutter_attributes(header)
        # What the state restates of the film (its Modality LUT, spacing, aspect, shutter) is its content too.
        restated = (repr(applied_rescale(header)), str(header.get("RescaleType", "")),
                    str(header.get("ModalityLUTSequence", "")), repr(spacing), repr(aspect), str(shutter))
        try:
            return build_presentation_state(
                reference, marks, window=window, inverted=inverted, spacing_mm=spacing,
                spatial_transformation=spatial_transformation, pixel_aspect=aspect,
                modality_header=header, display_shutter=shutter, referenced_frame=frame,
                **self._next("gsps", reference, repr([(m.kind, repr(m.points), getattr(m, "text", "")) for m in marks]),
                             repr(window), repr(inverted), repr(spatial_transformation), *restated,
                             *([f"frame {frame}"] if frame is not None else []), number=_film_instance_number(header)),
                manufacturer=MANUFACTURER,
                software_version=self.software_version)
        except ValueError as exc:
            raise DicomOutputError(image.path, f"the annotations cannot be written as a presentation state: {exc}") from exc

    def algorithm_parameters(self) -> list[str]:
        card = self.card
        return [f"temperature={card.temperature:.6g}", f"preprocessing={card.preprocessing_version}",
                f"input_size={card.input_size}"]

    def _next(self, kind: str, reference: Dataset, *content: str, number: int = 1) -> dict:
        """Series and instance attributes of the next ``kind`` object about the film ``reference``, whose
        Instance Number is ``number`` (``_film_instance_number``).

        The UIDs are derived (``generate_uid(entropy_srcs=...)``, a hash under pydicom's root) from what
        the object is: the series from the study, the kind, this program's version and the model's
        weights; the instance from those, the film, every attribute the object copies from ``reference``
        (:func:`copied_attributes`: the patient's name, ID, issuer, birth date, sex and age, the study's) and
        ``content`` (what the object shows). A rerun that makes the same result therefore makes the same UIDs, and
        sending it again replaces nothing and duplicates nothing in a PACS; a different result (another window,
        warning or model), or the same film whose header was corrected to another patient or study, is a new
        instance of the same series (one UID, one object: PS3.3 C.12.1.1.1, PS3.5 9). De-identified objects
        derive from the de-identified UIDs, so they never match the identified ones."""
        study = str(reference.StudyInstanceUID)
        made_by = [self.software_version, self.card.weights_sha256, kind]
        series = self._series.setdefault(
            (study, kind), _Series(generate_uid(entropy_srcs=["CXR Reader series", study, *made_by]), KINDS[kind]))
        instance = generate_uid(entropy_srcs=["CXR Reader instance", study, str(reference.SOPInstanceUID), *made_by,
                                              copied_attributes(reference), *map(str, content)])
        return dict(series_instance_uid=series.uid, series_number=series.number,
                    sop_instance_uid=instance, instance_number=number)

    def _report_page(self, image: CxrImage, heatmap_result: HeatmapResult, warnings, out_of_scope: str = "",
                     burned_in: str = ""):
        """The one page of the report this writer makes of ``image`` (``report.ReportPage``)."""
        from ...pixels.rendering import render
        from ..report import ReportPage

        page = ReportPage.for_image(image, render(image), heatmap_result=heatmap_result)
        return replace(page, warnings=tuple(warnings) or page.warnings, out_of_scope=out_of_scope,
                       displayed_note="The film in its own default window, as stored (not a reader's view).",
                       burned_in_annotation=burned_in)

    def _report(self, page) -> bytes:
        from ... import __version__
        from ..report import build_report_pdf

        return build_report_pdf([page], model_card=self.card, deidentify=self.deidentify,
                                app_version=__version__)  # the footer says "CXR Reader <version>"

    def report_content(self, page) -> str:
        """A digest of what the report of ``page`` (:meth:`_report`) prints, but for when it was made (each report
        says so, to the minute: a rerun that prints the same is the same object): every field of the page (its
        pictures by their pixels; the patient and study as the film's header gives them; the result, warnings and
        notes), the model card (the report's model box and limits page), de-identification and this program's
        version."""
        card = self.card.to_json() if hasattr(self.card, "to_json") else repr(self.card)
        parts = [self.software_version, f"deidentify={self.deidentify}", card]
        for page_field in fields(page):
            value = getattr(page, page_field.name)
            if isinstance(value, np.ndarray):
                value = (value.shape, value.dtype.str, _digest(np.ascontiguousarray(value).tobytes()))
            parts.append(f"{page_field.name}={value!r}")
        return _digest("\x1f".join(parts).encode("utf-8", "backslashreplace"))

    def _path(self, kind: str, stem: str) -> Path:
        return self.folder / f"{stem}_{kind}.dcm"

    def replaced_problem(self, path: Path, dataset: Dataset) -> str | None:
        """Why writing ``dataset`` as ``path`` would replace another object (None when nothing is there, or the same
        object, the same SOP Instance UID, is: writing it again changes nothing). A file that is no readable DICOM
        object, or holds another one (this film saved before with another window, result or annotations), is never
        replaced."""
        if not (path.exists() or path.is_symlink()):
            return None
        try:
            held = str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
                       .get("SOPInstanceUID", ""))
        except Exception:  # noqa: BLE001 - not a DICOM file this program could have written: never replaced
            held = ""
        if path.is_file() and not path.is_symlink() and held == str(dataset.SOPInstanceUID):
            return None
        return (f"{path.name} is already in {self.folder} and holds another object (made earlier with another view, "
                "result or annotations, or not one of this program's): it is not replaced; choose another folder, "
                "or move that file away")

    def _save(self, kind: str, dataset: Dataset, stem: str) -> WrittenObject:
        from ..atomic import write_bytes_atomic

        buffer = io.BytesIO()
        settle_character_set(dataset).save_as(buffer, enforce_file_format=True)
        path = self._path(kind, stem)
        write_bytes_atomic(path, buffer.getvalue())
        logger.info("wrote %s (%s)", path, kind)
        return WrittenObject(kind, path, str(dataset.SOPInstanceUID), str(dataset.StudyInstanceUID))


def copied_attributes(reference: Dataset) -> str:
    """Every attribute of ``reference`` (``source.reference_dataset``: the patient, the study and the source image
    the outputs copy, identified or de-identified), nested ones included, as one text for a UID's entropy
    (``DicomOutputWriter._next``): two objects that differ in any of them never share a SOP Instance UID."""
    return "\x1f".join(f"{element.tag}={element.value}" for element in reference.iterall() if element.VR != "SQ")


def deidentified_marks(marks: Sequence, metadata) -> list:
    """``marks`` as ``presentation_state.Mark`` with their text through ``deidentify.redact_free_text`` (the
    patient's name parts, ID, accession number and birth date, paths, UIDs and typed dates become ``[removed]``),
    as the de-identified PDF shows the reader's text."""
    from ..deidentify import redact_free_text
    from .presentation_state import Mark

    return [Mark(m.kind, tuple(m.points), redact_free_text(getattr(m, "text", "") or "", metadata)) for m in marks]


def deidentified_note_problem(marks: Sequence, metadata) -> str:
    """Why the de-identified presentation state of ``marks`` cannot hold a note whole, naming the note: the first
    whose text :func:`deidentified_marks` makes longer than ``presentation_state.TEXT_VALUE_MAX`` (a short
    identifier or a typed date becomes ``[removed]``, nine characters), quoted by its de-identified first words,
    with its length as typed and after de-identification; ``""`` when every note fits. The note is never cut."""
    from ..deidentify import REDACTED
    from .presentation_state import TEXT_VALUE_MAX

    for typed, redacted in zip(marks, deidentified_marks(marks, metadata)):
        if len(redacted.text) > TEXT_VALUE_MAX:
            start = " ".join(redacted.text.split())[:40].rstrip()
            return (f"after de-identification the note \"{start}…\" is {len(redacted.text)} characters (typed "
                    f"{len(getattr(typed, 'text', '') or '')}; the patient's identifiers and typed dates become "
                    f"{REDACTED}), more than the {TEXT_VALUE_MAX} a presentation state's text holds: shorten it by "
                    f"{len(redacted.text) - TEXT_VALUE_MAX} characters or more, or send it without de-identification "
                    "or without the annotations")
    return ""


def source_orientation(reference: Dataset) -> tuple[str, str] | None:
    """The source's Patient Orientation (0020,0020) when it has two values, else None."""
    value = reference.get("PatientOrientation")
    values = [] if not value else [value] if isinstance(value, str) else [str(v).strip() for v in value]
    return (values[0], values[1]) if len(values) == 2 and all(values) else None


def default_film(image: CxrImage, heatmap_result: HeatmapResult, opacity: float = 0.5) -> np.ndarray:
    """The film in its own default window with the heat-map over it as the app shows it
    (``HeatmapResult.shown``), at square pixels (RGB uint8)."""
    from ...pixels.overlay import blend
    from ...pixels.rendering import render, to_square_pixels

    return to_square_pixels(blend(render(image), heatmap_result.shown(), opacity), image.pixel_aspect)


def result_lines(heatmap_result: HeatmapResult) -> list[str]:
    """The result in words for the capture, with one decimal as the app and the PDF print it:
    ``AI result: COVID-19 84.2 % (efficientnet-lite0)`` and ``Normal 10.1 %  Pneumonia 5.7 % | heat-map: COVID-19``."""
    from ...display_text import format_percent
    from ...models.model_card import CLASS_DISPLAY_NAMES

    prediction = heatmap_result.prediction
    others = "  ".join(f"{CLASS_DISPLAY_NAMES.get(c, c)} {format_percent(p)}"
                       for c, p in zip(prediction.classes, prediction.probabilities) if c != prediction.label)
    target = CLASS_DISPLAY_NAMES.get(heatmap_result.target_class, heatmap_result.target_class)
    return [f"AI result: {prediction.display_label} {format_percent(prediction.probability(prediction.label))} "
            f"({prediction.model_name})", f"{others} | heat-map: {target}"]


def band_warnings(warnings: Sequence[str], out_of_scope: str) -> list[str]:
    """The warnings the capture's band lists: ``warnings``, led by the out-of-scope reasons in the CSV's
    words (``image_checks.scope_warning``) when the film is out of scope and no warning says them yet."""
    from ...models.image_checks import scope_warning

    band = list(warnings)
    reason = scope_warning(out_of_scope) if out_of_scope else ""
    if reason and all(reason not in warning for warning in band):
        band.insert(0, reason)
    return band
