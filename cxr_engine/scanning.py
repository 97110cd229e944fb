"""Scan a folder, a file or a DICOMDIR into Patient → Study → Series → Instance.

Only headers are read (``stop_before_pixels=True`` plus ``specific_tags``); pixel data is
never touched, so a scan of thousands of files takes seconds. One bad file never stops a
scan: it becomes a :class:`ScanError` record with a short reason.

Detection rules, per file found by the walk:

* hidden files (``.DS_Store``, ``._IM0001``) and hidden folders are skipped quietly;
* the ``DICM`` prefix at byte 128 marks a DICOM file;
* without the prefix, a file named ``*.dcm``/``*.dicom``/``*.dic``/``*.ima`` or with no
  extension (or a numeric one, as in UID-named files) is read with ``force=True`` and kept
  only if it has study, series or instance attributes. A failure is a :class:`ScanError`
  for the DICOM-named file and a quiet skip for the extension-less one;
* everything else is skipped quietly and counted in ``skipped_non_dicom``.

A file given directly to :func:`scan` is always tried, and any failure is reported.
"""
from __future__ import annotations

import logging
import os
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    UID,
    MediaStorageDirectoryStorage,
)

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, "int | None", Path], None]
CancelCallback = Callable[[], bool]

NO_PATIENT_ID = "(no patient ID)"
DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic", ".ima"})

_MAGIC_OFFSET = 128
_MAGIC = b"DICM"
_MAX_REASON = 200

# Everything the tree needs; pydicom seeks past the values of all other elements.
_HEADER_TAGS = [
    "SpecificCharacterSet",
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "AccessionNumber",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Modality",
    "BodyPartExamined",
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceNumber",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "BitsStored",
    "PhotometricInterpretation",
    "ViewPosition",
]
_IDENTIFYING_TAGS = ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Rows")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Instance:
    """One DICOM file. Text fields are ``""`` and numbers ``None`` when the tag is absent."""

    path: Path
    sop_instance_uid: str
    sop_class_uid: str
    instance_number: int | None
    rows: int | None
    columns: int | None
    number_of_frames: int
    bits_stored: int | None
    photometric: str
    transfer_syntax: str
    modality: str
    view_position: str
    body_part: str

    @property
    def is_image(self) -> bool:
        """True when the header describes pixel data (Rows and Columns are present)."""
        return bool(self.rows and self.columns)


@dataclass(frozen=True)
class Series:
    """Instances sharing a SeriesInstanceUID; ``uid`` is ``""`` for a file without one."""

    uid: str
    number: int | None
    description: str
    modality: str
    body_part: str
    instances: tuple[Instance, ...]


@dataclass(frozen=True)
class Study:
    """Series sharing a StudyInstanceUID; ``date`` is DICOM DA (YYYYMMDD), ``time`` TM."""

    uid: str
    date: str
    time: str
    description: str
    accession_number: str
    series: tuple[Series, ...]


@dataclass(frozen=True)
class Patient:
    """Studies sharing a PatientID (``NO_PATIENT_ID`` when absent).

    ``name`` (DICOM PN, e.g. ``DOE^JANE``) and ``birth_date`` are left out of ``repr`` so
    that logging a patient never writes their name.
    """

    patient_id: str
    name: str = field(repr=False)
    birth_date: str = field(repr=False)
    sex: str
    studies: tuple[Study, ...]


@dataclass(frozen=True)
class ScanError:
    """A file (or folder) that could not be scanned, and why, in words."""

    path: Path
    reason: str


@dataclass(frozen=True)
class ScanResult:
    """What a scan found.

    ``files_seen`` counts every regular file considered; ``dicom_files`` those read as DICOM
    (instances and DICOMDIRs); ``skipped_non_dicom`` those skipped quietly. ``elapsed_s`` is
    wall-clock seconds. ``cancelled`` is True when ``should_cancel`` stopped the scan early,
    in which case the tree holds what was read until then.
    """

    patients: tuple[Patient, ...]
    errors: tuple[ScanError, ...]
    files_seen: int
    dicom_files: int
    skipped_non_dicom: int
    elapsed_s: float
    cancelled: bool = False

    def all_studies(self) -> list[Study]:
        """Every study, in tree order."""
        return [study for patient in self.patients for study in patient.studies]

    def all_series(self) -> list[Series]:
        """Every series, in tree order."""
        return [series for study in self.all_studies() for series in study.series]

    def all_instances(self) -> list[Instance]:
        """Every instance, in tree order."""
        return [inst for series in self.all_series() for inst in series.instances]

    def find_instance(self, path: str | os.PathLike[str]) -> Instance | None:
        """The instance read from ``path`` (compared after resolving links), or None."""
        wanted = _resolved(Path(path))
        for inst in self.all_instances():
            if inst.path == Path(path) or _resolved(inst.path) == wanted:
                return inst
        return None


# --------------------------------------------------------------------------- public API


def scan(
    path: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCallback | None = None,
) -> ScanResult:
    """Scan a folder (recursively), a single DICOM file or a DICOMDIR.

    ``progress(done, total, current_path)`` is called after each file; ``total`` is None
    while folders are still being listed and may grow when a DICOMDIR references files
    outside the walk. ``should_cancel()`` is polled before each file and folder.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    root = Path(path).absolute()
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder")
    return _Scanner(progress, should_cancel).run(root)


# --------------------------------------------------------------------------- the scanner


class _Rejected(Exception):
    """Internal: a file is not a usable DICOM instance. ``reason`` None means skip quietly."""

    def __init__(self, reason: str | None):
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Header:
    """The header of one instance, flattened, before grouping."""

    instance: Instance
    patient: dict[str, str]
    study: dict[str, str]
    series: dict[str, str | int | None]
    patient_key: str
    study_key: str
    series_key: str


class _Scanner:
    """State of one scan: the queue of files, what was read, and the counters."""

    def __init__(self, progress: ProgressCallback | None, should_cancel: CancelCallback | None):
        self._progress = progress
        self._should_cancel = should_cancel or (lambda: False)
        self._queue: list[Path] = []
        self._explicit: set[Path] = set()
        self._queued: set[Path] = set()
        self._headers: list[_Header] = []
        self._errors: list[ScanError] = []
        self._files_seen = 0
        self._dicom_files = 0
        self._skipped = 0
        self._cancelled = False

    def run(self, root: Path) -> ScanResult:
        start = time.perf_counter()
        if root.is_dir():
            for file in _walk(root, self._errors, self._cancel_requested, self._report_dir):
                self._enqueue(file)
        else:
            self._enqueue(root)
            self._explicit.add(root)
        self._process_queue()
        result = ScanResult(
            patients=_build_tree(self._headers),
            errors=tuple(self._errors),
            files_seen=self._files_seen,
            dicom_files=self._dicom_files,
            skipped_non_dicom=self._skipped,
            elapsed_s=time.perf_counter() - start,
            cancelled=self._cancelled,
        )
        logger.info(
            "Scanned %s: %d files, %d instances, %d errors, %d skipped in %.2f s%s",
            root, result.files_seen, len(self._headers), len(result.errors),
            result.skipped_non_dicom, result.elapsed_s, " (cancelled)" if result.cancelled else "",
        )
        return result

    def _cancel_requested(self) -> bool:
        if not self._cancelled and self._should_cancel():
            logger.info("Scan cancelled")
            self._cancelled = True
        return self._cancelled

    def _report_dir(self, directory: Path) -> None:
        if self._progress is not None:
            self._progress(0, None, directory)

    def _enqueue(self, path: Path) -> None:
        # Deduplicate on the resolved path: symlinks and DICOMDIR references to files the
        # walk already found must not be read twice.
        key = _resolved(path)
        if key not in self._queued:
            self._queued.add(key)
            self._queue.append(path)

    def _process_queue(self) -> None:
        done = 0
        while done < len(self._queue):  # the queue grows when a DICOMDIR is read
            if self._cancel_requested():
                return
            path = self._queue[done]
            self._process(path)
            done += 1
            if self._progress is not None:
                self._progress(done, len(self._queue), path)

    def _process(self, path: Path) -> None:
        self._files_seen += 1
        try:
            ds = _read_header(path, explicit=path in self._explicit)
            if _is_dicomdir(ds):
                self._read_dicomdir(path)
            else:
                self._headers.append(_header_from(ds, path))
            self._dicom_files += 1
        except _Rejected as rejected:
            if rejected.reason is None:
                self._skipped += 1
                logger.debug("Skipped non-DICOM file %s", path)
            else:
                self._add_error(path, rejected.reason)
        except Exception as exc:  # one odd file must never stop a scan
            self._add_error(path, _short(f"unexpected error: {type(exc).__name__}: {exc}"))

    def _read_dicomdir(self, path: Path) -> None:
        for ref in _dicomdir_references(path):
            if ref.is_file():
                self._enqueue(ref)
            else:
                self._add_error(ref, f"referenced by {path.name} but not found")

    def _add_error(self, path: Path, reason: str) -> None:
        logger.warning("Cannot scan %s: %s", path, reason)
        self._errors.append(ScanError(path, reason))


# --------------------------------------------------------------------------- walking


def _walk(
    root: Path,
    errors: list[ScanError],
    cancelled: CancelCallback,
    on_dir: Callable[[Path], None],
) -> Iterator[Path]:
    """Yield regular files under ``root`` depth-first in name order, each folder once.

    Hidden folders are not entered. Symlinked folders are followed, but a folder reached
    twice (a link loop, or two links to one place) is listed only the first time.
    """
    visited: set[str] = set()
    stack = [root]
    while stack and not cancelled():
        directory = stack.pop()
        real = os.path.realpath(directory)
        if real in visited:
            logger.debug("Folder %s already scanned, not following it again", directory)
            continue
        visited.add(real)
        on_dir(directory)
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as exc:
            reason = f"could not list folder: {exc.strerror or exc}"
            logger.warning("Cannot scan %s: %s", directory, reason)
            errors.append(ScanError(directory, reason))
            continue
        subdirs = []
        for entry in entries:
            try:
                if entry.is_dir():
                    if not entry.name.startswith("."):  # .git, .Trashes, .Spotlight-V100
                        subdirs.append(Path(entry.path))
                elif entry.is_file():
                    yield Path(entry.path)
            except OSError:  # a broken link or a file that vanished meanwhile
                continue
        stack.extend(reversed(subdirs))


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


# --------------------------------------------------------------------------- reading


def _read_header(path: Path, *, explicit: bool) -> Dataset:
    """Read the header of one file, or raise ``_Rejected`` with the reason (None: skip quietly).

    Failures are reported for files that claim to be DICOM (the prefix, a DICOM suffix, or
    a file given explicitly); other candidates that fail are skipped quietly.
    """
    if path.name.startswith(".") and not explicit:  # .DS_Store, AppleDouble ._IM0001
        raise _Rejected(None)
    report = explicit or path.suffix.lower() in DICOM_SUFFIXES
    may_be_dicom = report or _has_no_extension(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            has_magic = fh.read(_MAGIC_OFFSET + len(_MAGIC))[_MAGIC_OFFSET:] == _MAGIC
            if not (has_magic or may_be_dicom):
                raise _Rejected(None)
            report = report or has_magic
            if size == 0:
                raise _Rejected("empty file" if report else None)
            fh.seek(0)
            ds = _parse(fh, force=not has_magic, report=report)
            end = fh.tell()
    except OSError as exc:
        raise _Rejected(f"could not read file: {exc.strerror or exc}") from exc
    _check_complete(ds, end=end, size=size, report=report)
    return ds


def _parse(fh: BinaryIO, *, force: bool, report: bool) -> Dataset:
    """``dcmread`` the header, turning pydicom's exceptions into a short reason."""
    try:
        return pydicom.dcmread(
            fh, stop_before_pixels=True, specific_tags=_HEADER_TAGS, force=force
        )
    except OSError:
        raise
    except InvalidDicomError as exc:
        reason = f"not a valid DICOM file: {exc}"
    except (EOFError, struct.error) as exc:
        reason = f"truncated DICOM header: {exc}"
    except Exception as exc:  # pydicom raises many types on malformed headers
        reason = f"not a valid DICOM file: {type(exc).__name__}: {exc}"
    raise _Rejected(_short(reason) if report else None)


def _check_complete(ds: Dataset, *, end: int, size: int, report: bool) -> None:
    """Reject a dataset that pydicom read without complaint but that is not usable.

    pydicom does not raise on a file cut short: it seeks past the end of the file (with
    ``specific_tags``) or keeps a short value. The read position tells: it lies beyond the
    end of the file when an element was cut, and at the end of the file when the header
    describes an image whose pixel data never came.
    """
    identified = _is_dicomdir(ds) or any(tag in ds for tag in _IDENTIFYING_TAGS) or (
        "MediaStorageSOPInstanceUID" in _meta(ds)
    )
    if not identified:
        if not report:
            raise _Rejected(None)
        if end > size:
            raise _Rejected("not a valid DICOM file: element lengths run past the end of the file")
        raise _Rejected("not a valid DICOM file: no study, series or instance attributes")
    if end > size:
        raise _Rejected(f"truncated DICOM header: the file ends at byte {size} inside an element")
    if end == size and _expects_pixels(ds):
        raise _Rejected(f"truncated DICOM file: it ends at byte {size}, before its pixel data")


def _expects_pixels(ds: Dataset) -> bool:
    """True for an image: Rows is present or the SOP class is an "... Image Storage"."""
    sop_class = _text(ds, "SOPClassUID") or _text(_meta(ds), "MediaStorageSOPClassUID")
    return "Rows" in ds or "Image Storage" in UID(sop_class).name


def _meta(ds: Dataset) -> Dataset:
    """The file meta group, or an empty dataset for a file without one."""
    return getattr(ds, "file_meta", None) or Dataset()


def _has_no_extension(path: Path) -> bool:
    """True for ``IM0001`` and for UID-named files such as ``1.2.840.113619.2.55.3.1``."""
    suffix = path.suffix
    return suffix == "" or suffix[1:].isdigit()


def _is_dicomdir(ds: Dataset) -> bool:
    return _meta(ds).get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage


def _dicomdir_references(path: Path) -> list[Path]:
    """Files referenced by the records of the DICOMDIR at ``path`` (PS3.3 F.3.2.2)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        records = ds.get("DirectoryRecordSequence") or []
    except OSError:
        raise
    except Exception as exc:
        raise _Rejected(_short(f"unreadable DICOMDIR: {type(exc).__name__}: {exc}")) from exc
    refs = []
    for record in records:
        file_id = record.get("ReferencedFileID")
        if file_id:
            parts = [file_id] if isinstance(file_id, str) else list(file_id)
            refs.append(path.parent.joinpath(*parts))
    return refs


def _short(reason: str) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 1] + "…"


# --------------------------------------------------------------------------- values


def _text(ds: Dataset, keyword: str) -> str:
    """The tag's value as stripped text; multiple values joined with a backslash."""
    try:
        value = ds.get(keyword)
    except Exception:  # a malformed value must not lose the whole file
        return ""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, MultiValue)):
        return "\\".join(str(v).strip() for v in value)
    return str(value).strip()


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return None if value is None or value == "" else int(value)
    except Exception:
        return None


def _transfer_syntax(ds: Dataset) -> str:
    """The file meta's transfer syntax, or the encoding pydicom found in a meta-less file."""
    uid = _text(_meta(ds), "TransferSyntaxUID")
    if uid:
        return uid
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None:
        return ""
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _header_from(ds: Dataset, path: Path) -> _Header:
    """Flatten one dataset into the attributes of each level and its grouping keys."""
    sop_uid = _text(ds, "SOPInstanceUID") or _text(_meta(ds), "MediaStorageSOPInstanceUID")
    sop_class = _text(ds, "SOPClassUID") or _text(_meta(ds), "MediaStorageSOPClassUID")
    instance = Instance(
        path=path,
        sop_instance_uid=sop_uid,
        sop_class_uid=sop_class,
        instance_number=_int(ds, "InstanceNumber"),
        rows=_int(ds, "Rows"),
        columns=_int(ds, "Columns"),
        number_of_frames=_int(ds, "NumberOfFrames") or 1,
        bits_stored=_int(ds, "BitsStored"),
        photometric=_text(ds, "PhotometricInterpretation"),
        transfer_syntax=_transfer_syntax(ds),
        modality=_text(ds, "Modality"),
        view_position=_text(ds, "ViewPosition"),
        body_part=_text(ds, "BodyPartExamined"),
    )
    patient_id = _text(ds, "PatientID") or NO_PATIENT_ID
    study_uid = _text(ds, "StudyInstanceUID")
    series_uid = _text(ds, "SeriesInstanceUID")
    # A missing UID cannot be grouped with anything: key it on the file itself.
    study_key = study_uid or f"file:{path}"
    return _Header(
        instance=instance,
        patient={
            "patient_id": patient_id,
            "name": _text(ds, "PatientName"),
            "birth_date": _text(ds, "PatientBirthDate"),
            "sex": _text(ds, "PatientSex"),
        },
        study={
            "uid": study_uid,
            "date": _text(ds, "StudyDate"),
            "time": _text(ds, "StudyTime"),
            "description": _text(ds, "StudyDescription"),
            "accession_number": _text(ds, "AccessionNumber"),
        },
        series={
            "uid": series_uid,
            "number": _int(ds, "SeriesNumber"),
            "description": _text(ds, "SeriesDescription"),
        },
        patient_key=patient_id,
        study_key=study_key,
        series_key=series_uid or f"file:{path}",
    )


# --------------------------------------------------------------------------- grouping


def _build_tree(headers: Iterable[_Header]) -> tuple[Patient, ...]:
    """Group headers into sorted patients; the first header seen fills each level's fields."""
    tree: dict[str, tuple[_Header, dict[str, tuple[_Header, dict[str, list[_Header]]]]]] = {}
    for header in headers:
        _, studies = tree.setdefault(header.patient_key, (header, {}))
        _, series = studies.setdefault(header.study_key, (header, {}))
        series.setdefault(header.series_key, []).append(header)
    patients = [
        Patient(
            **first.patient,
            studies=tuple(sorted(
                (_make_study(study_first, series) for study_first, series in studies.values()),
                key=_study_order,
            )),
        )
        for first, studies in tree.values()
    ]
    return tuple(sorted(patients, key=_patient_order))


def _make_study(first: _Header, series: dict[str, list[_Header]]) -> Study:
    made = (_make_series(members) for members in series.values())
    return Study(**first.study, series=tuple(sorted(made, key=_series_order)))


def _make_series(members: list[_Header]) -> Series:
    instances = sorted((h.instance for h in members), key=_instance_order)
    first = instances[0]
    return Series(
        **members[0].series,
        modality=first.modality,
        body_part=first.body_part,
        instances=tuple(instances),
    )


def _patient_order(patient: Patient) -> tuple:
    return (patient.name == "", patient.name.casefold(), patient.patient_id)


def _study_order(study: Study) -> tuple:
    return (study.date == "", study.date, study.time, study.uid)


def _series_order(series: Series) -> tuple:
    return (series.number is None, series.number or 0, series.uid)


def _instance_order(instance: Instance) -> tuple:
    return (instance.instance_number is None, instance.instance_number or 0, str(instance.path))
