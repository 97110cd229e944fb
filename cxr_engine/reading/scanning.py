"""Scan a folder, a file or a DICOMDIR into Patient → Study → Series → Instance.

Only headers are read (``stop_before_pixels=True`` plus ``specific_tags``); pixel data is
never touched, so a scan of thousands of files takes seconds. One bad file never stops a
scan: it becomes a :class:`ScanError` record with a short reason.

Detection rules, per file found by the walk:

* hidden files (``.DS_Store``, ``._IM0001``) and hidden folders are skipped quietly;
* a symbolic link whose target lies outside the chosen folder is not followed and becomes a
  :class:`ScanError` (links inside it are followed; each folder is read once, so loops end);
* the ``DICM`` prefix at byte 128 marks a DICOM file;
* without the prefix, a file named ``*.dcm``/``*.dicom``/``*.dic``/``*.ima`` or with no
  extension (or a numeric one, as in UID-named files) is read with ``force=True`` and kept
  only if it has study, series or instance attributes. A failure is a :class:`ScanError`
  for the DICOM-named file and a quiet skip for the extension-less one;
* with ``include_raster=True``, a ``*.png``/``*.jpg``/``*.jpeg`` file without the prefix, or any
  file that begins with the PNG or JPEG signature (a JPEG named ``.dcm``), is a PNG/JPEG image
  (its size read from its header); one whose header is unreadable or too large is a
  :class:`ScanError`; without ``include_raster`` such a DICOM-named file is one saying what it is;
* a broken symbolic link is a :class:`ScanError` (a hidden one is skipped quietly);
* what is not a regular file (a FIFO, a socket, a device; or a link to one) is never opened: opening a FIFO
  waits for a writer forever, a device reads without end. It is a :class:`ScanError` ("not a regular file
  (a FIFO)") when given directly, referenced by a DICOMDIR or named as a film would be (a DICOM, PNG/JPEG or
  other image suffix, or none), else skipped quietly;
* files this program wrote (``cxr_engine.outputs.own_outputs``: heat-map and lung-mask PNGs named as
  ``cxr-classify`` names them, DICOM objects whose Manufacturer is ``CXR Reader project``) are
  not films: they are skipped, logged and listed in ``own_outputs``;
* a file named as an image format this program does not read (``*.tif``/``*.tiff``/``*.gif``/``*.webp``/
  ``*.bmp``) whose first bytes say what it is is a :class:`ScanError` naming it ("a TIFF image: this program
  reads DICOM, PNG and JPEG files only"): a film stored so is not left out without a word;
* a file a DICOMDIR references is reported like a DICOM-named one (a damaged copy on a CD is named);
* everything else is skipped quietly and counted in ``skipped_non_dicom``.

A file given directly to :func:`scan` is always tried (even one this program wrote), and any
failure is reported.

A DICOMDIR's Referenced File IDs are found on disk as written, else case-insensitively and with
or without an ISO 9660 version (``;1``) or trailing dot, as on a CD copied to (or mounted on) a
case-sensitive file system; a reference leaving the DICOMDIR's folder is an error
(:mod:`cxr_engine.reading.dicomdir`).

Every file is one instance here, copies of one SOP Instance too: ``find_images`` (which knows the
folders left out) folds those into the file whose path sorts first, the others in ``Instance.copies``
(:mod:`cxr_engine.reading.copies`). One file reached by several paths in one walk is read once: a link to a
file read already is left out, and a folder reached again through a link is not walked again; the other
paths are the instance's ``aliases`` (a link that leads back into its own folder, a loop, names none).

Patients are grouped by Patient ID *and* name and birth date (and Issuer of Patient ID): two
people are never merged because an attribute is empty. A file without ID and name is a patient
of its own (one per Study Instance UID, else per file).
"""
from __future__ import annotations

import errno
import logging
import os
import re
import stat
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    UID,
    MediaStorageDirectoryStorage,
)

from .. import messages
from ..outputs import own_outputs
from .dicom_values import file_meta, int_value, text_value
from .dicomdir import UnreadableDicomdir, dicomdir_references
from .dicomdir import find_referenced_file  # noqa: F401  (importable from here, as before)
from ..errors import ImageReadError, UnsupportedImageError
from .pixel_layout import deflated_problem, expects_pixels, inspect_pixel_data, missing_pixel_data, pixel_data_problem
from .raster_io import raster_signature

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, "int | None", Path], None]
CancelCallback = Callable[[], bool]

NO_PATIENT_ID = "(no patient ID)"
DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic", ".ima"})
#: PNG/JPEG files a scan with ``include_raster=True`` takes as images (as ``raster_io`` reads them).
RASTER_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
#: Image formats this program does not read: a file so named whose first bytes say it is one (a TIFF, a GIF,
#: a WebP) is an error naming its kind, so a film stored so is not left out of a folder without a word.
OTHER_IMAGE_SUFFIXES = frozenset({".tif", ".tiff", ".gif", ".webp", ".bmp"})

_MAGIC_OFFSET = 128
_MAGIC = b"DICM"
_MAX_REASON = 200

# Everything the tree needs; pydicom seeks past the values of all other elements.
_HEADER_TAGS = [
    "SpecificCharacterSet",
    "PatientID",
    "IssuerOfPatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "SeriesTime",  # these three stand in for an absent StudyTime (same-day studies told apart)
    "AcquisitionTime",
    "ContentTime",
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
    "SamplesPerPixel",
    "BitsAllocated",
    "Manufacturer",  # these two tell this program's own outputs (cxr_engine.outputs.own_outputs)
    "SoftwareVersions",
]
_IDENTIFYING_TAGS = ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Rows")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Instance:
    """One DICOM file (or, from a scan with ``include_raster``, one PNG/JPEG file: ``file_format``
    ``"png"``/``"jpeg"``, its size in ``rows``/``columns`` and every DICOM field empty).

    Text fields are ``""`` and numbers ``None`` when the tag is absent.
    """

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
    file_format: str = "dicom"
    #: Other files holding this same SOP Instance, left out of the tree (``cxr_engine.reading.copies``).
    copies: tuple[Path, ...] = ()
    #: The header says the object is an image (Rows present, or an "... Image Storage" SOP class) even
    #: where Rows or Columns is missing or 0: a damaged film, not an object of another kind.
    image_header: bool = False
    #: Other paths to this very file (a symbolic link, a hard link, a folder reached through a link, a path
    #: named twice), left out: read, listed and classified once (``cxr_engine.reading.copies.fold_same_files``).
    aliases: tuple[Path, ...] = ()

    @property
    def is_image(self) -> bool:
        """True when the header describes pixel data: Rows and Columns are present, or the object is an
        image whose size is missing or 0 (a damaged film, which a batch must name rather than leave out)."""
        return bool(self.rows and self.columns) or self.image_header


@dataclass(frozen=True)
class Series:
    """Instances sharing a SeriesInstanceUID; ``uid`` is ``""`` for a file without one.

    Fields in the order of the General Series Module (PS3.3 Table C.7-5a); ``modality`` and
    ``body_part`` are the first instance's.
    """

    modality: str
    uid: str
    number: int | None
    description: str
    body_part: str
    instances: tuple[Instance, ...]


@dataclass(frozen=True)
class Study:
    """Series sharing a StudyInstanceUID; ``date`` is DICOM DA (YYYYMMDD), ``time`` TM (the Study Time, else
    the first file's Series, Acquisition or Content Time).

    Fields in the order of the General Study Module (PS3.3 Table C.7-3).
    """

    uid: str
    date: str
    time: str
    accession_number: str
    description: str
    series: tuple[Series, ...]


@dataclass(frozen=True)
class Patient:
    """Studies of one person: the same Patient ID (``NO_PATIENT_ID`` when absent), Issuer of
    Patient ID, name and birth date; see :func:`patient_key`.

    ``name`` (DICOM PN, e.g. ``DOE^JANE``), ``birth_date`` and ``key`` are left out of ``repr``
    so that logging a patient never writes their name. ``key`` (a tuple of strings) is what the
    patient was grouped by: equal keys from two scans are the same person.
    """

    patient_id: str
    name: str = field(repr=False)
    birth_date: str = field(repr=False)
    sex: str
    studies: tuple[Study, ...]
    issuer: str = ""
    key: tuple[str, ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True)
class ScanError:
    """A file (or folder) that could not be scanned, and why, in words; ``aliases`` as ``Instance.aliases``."""

    path: Path
    reason: str
    aliases: tuple[Path, ...] = ()


@dataclass(frozen=True)
class ScanResult:
    """What a scan found.

    ``files_seen`` counts every file considered; ``dicom_files`` those read as DICOM
    (instances and DICOMDIRs); ``skipped_non_dicom`` those skipped quietly. ``elapsed_s`` is
    wall-clock seconds. ``cancelled`` is True when ``should_cancel`` stopped the scan early,
    in which case the tree holds what was read until then. ``order`` lists every file the scan
    considered, every missing DICOMDIR reference and every path of the walk's errors (broken links,
    links out of the folder, folders that could not be listed), in the order it reached them (folder
    walk order, then DICOMDIR references). ``own_outputs`` lists the files skipped because this
    program wrote them (``cxr_engine.outputs.own_outputs``), in the order reached.
    """

    patients: tuple[Patient, ...]
    errors: tuple[ScanError, ...]
    files_seen: int
    dicom_files: int
    skipped_non_dicom: int
    elapsed_s: float
    cancelled: bool = False
    order: tuple[Path, ...] = field(default=(), repr=False)
    own_outputs: tuple[Path, ...] = field(default=(), repr=False)

    def all_studies(self) -> list[Study]:
        """Every study, in tree order."""
        return [study for patient in self.patients for study in patient.studies]

    def all_series(self) -> list[Series]:
        """Every series, in tree order."""
        return [series for study in self.all_studies() for series in study.series]

    def all_instances(self) -> list[Instance]:
        """Every instance, in tree order."""
        return [inst for series in self.all_series() for inst in series.instances]

    def image_files(self) -> list[Path]:
        """The path of every image (DICOM with Rows and Columns, or PNG/JPEG) in reading order: the study
        tree's, as the app's study browser lists them (patients by name, then ID; a patient's studies by
        date and time; series and images by number, then file name; numbers in number order, see
        :func:`natural_key`; a PNG/JPEG is a patient of its own, after the named ones). What a batch run
        classifies, in this order, so that ``cxr-classify``'s first row is the app's first film."""
        return [inst.path for inst in self.all_instances() if inst.is_image]

    @property
    def copies(self) -> dict[Path, tuple[Path, ...]]:
        """The path of each instance stored more than once -> its other files (``Instance.copies``)."""
        return {inst.path: inst.copies for inst in self.all_instances() if inst.copies}

    @property
    def aliases(self) -> dict[Path, tuple[Path, ...]]:
        """The path of each instance reached by other paths too -> those paths (``Instance.aliases``)."""
        return {inst.path: inst.aliases for inst in self.all_instances() if inst.aliases}

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
    include_raster: bool = False,
) -> ScanResult:
    """Scan a folder (recursively), a single DICOM file or a DICOMDIR.

    ``progress(done, total, current_path)`` is called after each file; ``total`` is None
    while folders are still being listed and may grow when a DICOMDIR references files
    outside the walk. ``should_cancel()`` is polled before each file and folder. With
    ``include_raster`` PNG/JPEG files are images too (the desktop app and ``cxr-classify``
    scan so, and so find the same files).

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    root = Path(path).absolute()
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder")
    return _Scanner(progress, should_cancel, include_raster).run(root)


def is_dicomdir_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a DICOMDIR (its file meta says Media Storage Directory Storage)."""
    path = Path(path)
    try:
        if not path.is_file():
            return False
        with open(path, "rb") as fh:
            if fh.read(_MAGIC_OFFSET + len(_MAGIC))[_MAGIC_OFFSET:] != _MAGIC:
                return False
        meta = pydicom.filereader.read_file_meta_info(path)
    except Exception:  # unreadable: not a DICOMDIR this function can vouch for
        return False
    return meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage


# --------------------------------------------------------------------------- the scanner


class _OwnOutput(Exception):
    """Internal: a file this program wrote (a heat-map, a mask, an AI result object), with the note."""


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
    patient_key: tuple[str, ...]
    study_key: str
    series_key: str


class _Scanner:
    """State of one scan: the queue of files, what was read, and the counters."""

    def __init__(self, progress: ProgressCallback | None, should_cancel: CancelCallback | None,
                 include_raster: bool = False):
        self._progress = progress
        self._should_cancel = should_cancel or (lambda: False)
        self._include_raster = include_raster
        self._order: list[Path] = []
        self._queue: list[Path] = []
        self._walk_marks: list[int | None] = []  # per queued file: the walk's errors found before it
        self._explicit: set[Path] = set()
        self._referenced: set[Path] = set()  # files a DICOMDIR names (resolved)
        self._queued: set[Path] = set()
        self._headers: list[_Header] = []
        self._errors: list[ScanError] = []
        self._files_seen = 0
        self._dicom_files = 0
        self._skipped = 0
        self._own: list[Path] = []
        self._cancelled = False
        self._first_path: dict[Path, Path] = {}  # resolved -> the path the walk reached a file by first
        self._aliases: dict[Path, list[Path]] = {}  # that path -> the walk's other paths to the file

    def run(self, root: Path) -> ScanResult:
        start = time.perf_counter()
        if root.is_dir():
            revisits: list[tuple[Path, Path]] = []
            for file in _walk(root, self._errors, self._cancel_requested, self._report_dir, revisits):
                self._enqueue(file, walk_errors=len(self._errors))
            self._add_folder_aliases(revisits)
        else:
            self._enqueue(root)
            self._explicit.add(root)
        self._process_queue()
        result = ScanResult(
            patients=_build_tree(self._with_aliases(self._headers)),
            errors=tuple(self._errors_with_aliases()),
            files_seen=self._files_seen,
            dicom_files=self._dicom_files,
            skipped_non_dicom=self._skipped,
            elapsed_s=time.perf_counter() - start,
            cancelled=self._cancelled,
            order=tuple(self._order),
            own_outputs=tuple(self._own),
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

    def _enqueue(self, path: Path, walk_errors: int | None = None) -> None:
        # Deduplicate on the resolved path: symlinks and DICOMDIR references to files the
        # walk already found must not be read twice. A link the walk found is another path to the file, named
        # in the note on it; a DICOMDIR's reference is the same file found through its index, not another path.
        key = _resolved(path)
        if key not in self._queued:
            self._queued.add(key)
            self._queue.append(path)
            self._walk_marks.append(walk_errors)
            self._first_path[key] = path
        elif walk_errors is not None and self._first_path.get(key, path) != path:
            self._aliases.setdefault(self._first_path[key], []).append(path)

    def _add_folder_aliases(self, revisits: list[tuple[Path, Path]]) -> None:
        """For each folder the walk reached again by another path (``(again, first)``, a link to a folder it
        walked), the files found under ``first`` get their path under ``again`` as an alias."""
        for again, first in revisits:
            for path in self._queue:
                if first in path.parents:
                    self._aliases.setdefault(path, []).append(again / path.relative_to(first))

    def _with_aliases(self, headers: list[_Header]) -> list[_Header]:
        """``headers``, each instance reached by other paths in the walk carrying them (``Instance.aliases``)."""
        for header in headers:
            others = self._aliases.get(header.instance.path)
            if others:
                header.instance = replace(header.instance, aliases=tuple(sorted(set(others), key=str)))
        return headers

    def _errors_with_aliases(self) -> list[ScanError]:
        """The errors, a file reached by other paths in the walk carrying them (``ScanError.aliases``)."""
        return [replace(error, aliases=tuple(sorted(set(self._aliases[error.path]), key=str)))
                if self._aliases.get(error.path) else error for error in self._errors]

    def _process_queue(self) -> None:
        # The walk's errors come first in self._errors; each takes its place in ``order`` among the files.
        walk_errors, placed = len(self._errors), 0
        done = 0
        while done < len(self._queue):  # the queue grows when a DICOMDIR is read
            if self._cancel_requested():
                return
            path = self._queue[done]
            mark = self._walk_marks[done]
            if mark is not None and mark > placed:
                self._order.extend(error.path for error in self._errors[placed:mark])
                placed = mark
            if placed < walk_errors and mark is None:  # the walk is over: DICOMDIR references follow
                self._order.extend(error.path for error in self._errors[placed:walk_errors])
                placed = walk_errors
            self._process(path)
            done += 1
            if self._progress is not None:
                self._progress(done, len(self._queue), path)
        self._order.extend(error.path for error in self._errors[placed:walk_errors])

    def _process(self, path: Path) -> None:
        self._files_seen += 1
        self._order.append(path)
        try:
            explicit = path in self._explicit
            # A file a DICOMDIR names is meant to be DICOM, whatever its name: a damaged one is named, not skipped.
            referenced = bool(self._referenced) and _resolved(path) in self._referenced  # no resolve without a DICOMDIR
            _check_regular(path, explicit=explicit or referenced)
            if self._include_raster and _is_raster_candidate(path):
                self._headers.append(_raster_header(path, skip_own=not explicit))
                return
            ds = _read_header(path, explicit=explicit or referenced)
            if not explicit and own_outputs.is_own_dicom(ds):
                raise _OwnOutput(own_outputs.DICOM_NOTE)
            if _is_dicomdir(ds):
                self._read_dicomdir(path)
            else:
                self._headers.append(_header_from(ds, path))
            self._dicom_files += 1
        except _OwnOutput as own:
            logger.info("Skipped %s: %s", path, own)
            self._own.append(path)
        except _Rejected as rejected:
            if rejected.reason is None:
                self._skipped += 1
                logger.debug("Skipped non-DICOM file %s", path)
            elif self._referenced and _resolved(path) in self._referenced and not explicit:
                self._add_error(path, f"referenced by DICOMDIR, but {rejected.reason}")
            else:
                self._add_error(path, rejected.reason)
        except Exception as exc:  # one odd file must never stop a scan
            self._add_error(path, _short(f"unexpected error: {type(exc).__name__}: {exc}"))

    def _read_dicomdir(self, path: Path) -> None:
        try:
            refs = dicomdir_references(path)
        except UnreadableDicomdir as exc:
            raise _Rejected(_short(str(exc))) from exc
        for ref, problem in refs:
            if problem is None:
                self._referenced.add(_resolved(ref))
                self._enqueue(ref)
            else:
                self._order.append(ref)
                self._add_error(ref, problem)

    def _add_error(self, path: Path, reason: str) -> None:
        reason = messages.printable(reason, _MAX_REASON)
        logger.warning("Cannot scan %s: %s", path, reason)
        self._errors.append(ScanError(path, reason))


# --------------------------------------------------------------------------- why no image


def no_image_error(path: str | os.PathLike[str], ds: Dataset | None = None) -> ImageReadError:
    """The error for a DICOM file read without Pixel Data (see :func:`why_no_image`):
    ``UnsupportedImageError`` for a whole object that is not an image (DICOMDIR, report,
    Float Pixel Data), ``ImageReadError`` for a damaged or cut file."""
    path = Path(path)
    reason = why_no_image(path, ds) or "the DICOM file holds no pixel data"
    whole = reason.startswith(("a DICOM", "a DICOMDIR", "the image is stored as"))
    return (UnsupportedImageError if whole else ImageReadError)(path, reason)


def check_pixel_data(path: str | os.PathLike[str]) -> None:
    """Raise ``ImageReadError`` when the file's pixel data is cut short (:func:`pixel_data_problem`)."""
    problem = pixel_data_problem(path)
    if problem is not None:
        raise ImageReadError(Path(path), problem)



def why_no_image(path: str | os.PathLike[str], ds: Dataset | None = None) -> str | None:
    """Why the DICOM file at ``path`` gives no image, in the words a scan uses, or None when
    its header and pixel data look whole (a decoder must then say what is wrong).

    For the decoder (``dicom_io``), so that a file reads the same in the viewer, the Problems
    list and the CLI: a header the scan rejects gets the scan's reason; a DICOMDIR, a report,
    a presentation state or another object without pixels is named; Float/Double Float Pixel
    Data is named; pixel data cut short says how many bytes of how many. ``ds``, the dataset
    already read in full (if any), is consulted for the Float Pixel Data elements.
    """
    path = Path(path)
    try:
        header = _read_header(path, explicit=True)
    except _Rejected as rejected:
        return rejected.reason or messages.NOT_DICOM_NO_ATTRIBUTES
    except Exception as exc:  # never let the explanation itself fail
        return _short(messages.not_dicom(f"{type(exc).__name__}: {exc}"))
    if _is_dicomdir(header):
        try:
            count = len(dicomdir_references(path))
        except Exception:
            count = None
        return messages.dicomdir(count)
    for keyword in ("FloatPixelData", "DoubleFloatPixelData"):
        if ds is not None and keyword in ds:
            return messages.float_pixel_data(keyword)
    has_pixels, problem = inspect_pixel_data(path)
    if problem is not None or has_pixels:
        return problem
    if expects_pixels(header):
        return "the DICOM header describes an image, but the file holds no Pixel Data element"
    sop_class = text_value(header, "SOPClassUID") or text_value(file_meta(header), "MediaStorageSOPClassUID")
    if not sop_class:
        return messages.not_an_image("object without a SOP Class UID (of unknown kind)")
    kind = messages.uid_text(sop_class)
    if kind.endswith(" Storage"):
        kind = kind[: -len(" Storage")]
    return messages.not_an_image(kind)


# --------------------------------------------------------------------------- walking


def _walk(
    root: Path,
    errors: list[ScanError],
    cancelled: CancelCallback,
    on_dir: Callable[[Path], None],
    revisits: list[tuple[Path, Path]] | None = None,
) -> Iterator[Path]:
    """Yield the files under ``root`` depth-first in name order, each folder once: regular files, and FIFOs,
    sockets and devices (which the scan names without opening them, :func:`_check_regular`).

    Hidden folders are not entered. Symbolic links (to files or folders) are followed only where
    their target lies inside ``root`` (links resolved): a link out of the chosen folder is not
    followed and becomes one :class:`ScanError`, so a scan never reaches another patient's folder
    that the user did not choose. A folder reached twice (a link loop, or two links to one place)
    is listed only the first time; ``revisits`` gets ``(the path reached again, the path walked)`` for each
    one that is not a loop (a path inside the folder it leads back to).
    """
    visited: dict[str, Path] = {}
    real_root = os.path.realpath(root)
    stack = [root]
    while stack and not cancelled():
        directory = stack.pop()
        real = os.path.realpath(directory)
        if real in visited:
            logger.debug("Folder %s already scanned, not following it again", directory)
            first = visited[real]
            if revisits is not None and first not in directory.parents:
                revisits.append((directory, first))
            continue
        visited[real] = directory
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
                if entry.is_symlink() and entry.name.startswith("."):
                    continue  # hidden, as hidden files and folders are
                if entry.is_symlink() and not os.path.exists(entry.path):
                    errors.append(_broken_link(Path(entry.path)))
                    continue
                if entry.is_symlink() and not _links_inside(entry.path, real_root):
                    reason = (f"symbolic link to {messages.printable(os.path.realpath(entry.path), 160)}, "
                              f"outside the chosen folder {messages.printable(root, 160)}: not followed")
                    logger.warning("Cannot scan %s: %s", entry.path, reason)
                    errors.append(ScanError(Path(entry.path), reason))
                    continue
                if entry.is_dir():
                    if not entry.name.startswith("."):  # .git, .Trashes, .Spotlight-V100
                        subdirs.append(Path(entry.path))
                else:  # a regular file, or a FIFO, socket or device: judged by _check_regular, never opened
                    yield Path(entry.path)
            except OSError:  # a file that vanished meanwhile
                continue
        stack.extend(reversed(subdirs))


def _broken_link(path: Path) -> ScanError:
    reason = missing_reason(path)
    logger.warning("Cannot scan %s: %s", path, reason)
    return ScanError(path, reason)


def missing_reason(path: str | os.PathLike[str]) -> str:
    """Why ``path``, which does not lead to a file or folder, cannot be read: a symbolic link loop (the
    link leads back to itself, ``ELOOP``), a broken symbolic link (its target does not exist), or
    no such file or folder."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop: the link leads back to itself"
    if os.path.islink(path):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return f"broken symbolic link: its target {messages.printable(target, 160)} does not exist"
    return "no such file or folder"


def _links_inside(link: str, real_root: str) -> bool:
    """Whether the symbolic link ``link`` (resolved to its final target) points into ``real_root``."""
    target = os.path.realpath(link)
    return target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep)


def _check_regular(path: Path, *, explicit: bool) -> None:
    """Raise ``_Rejected`` for what is not a regular file (links followed), before anything opens it: opening a
    FIFO waits for a writer forever, and a device (``/dev/zero``) reads without end. The reason
    (``messages.not_regular_file``) for a path given directly (``explicit``) or named as a film would be (a
    DICOM, PNG/JPEG or other image suffix, or none), else None (skipped quietly, as a text file is)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # opening it says why
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    hidden = path.name.startswith(".")
    claims = explicit or (not hidden and (_has_no_extension(path) or path.suffix.lower() in (
        DICOM_SUFFIXES | RASTER_SUFFIXES | OTHER_IMAGE_SUFFIXES)))
    raise _Rejected(messages.not_regular_file(mode) if claims else None)


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
            head = fh.read(_MAGIC_OFFSET + len(_MAGIC))
            has_magic = head[_MAGIC_OFFSET:] == _MAGIC
            if not (has_magic or may_be_dicom):
                # A film saved as TIFF (or another image format) beside the others is named, not left out unseen.
                kind = _other_image_kind(path, head)
                raise _Rejected(f"{kind}: this program reads DICOM, PNG and JPEG files only" if kind else None)
            report = report or has_magic
            raster = None if has_magic else raster_signature(head)
            if raster:
                raise _Rejected(f"a {raster} image, not a DICOM file" if report else None)
            if size == 0:
                raise _Rejected(messages.EMPTY_FILE if report else None)
            # A run of zero bytes parses as endless empty elements (0000,0000): pydicom walks a 2 GB file
            # of zeros for minutes. No DICOM file holds one where its first element is.
            first = head[:8] if not has_magic else head[_MAGIC_OFFSET + len(_MAGIC):] + fh.read(8)
            if first and not any(first):
                raise _Rejected(messages.NOT_DICOM_ZEROS if report else None)
            deflated = deflated_problem(path, fh)  # before pydicom inflates a deflated data set whole, unbounded
            if deflated:
                raise _Rejected(deflated if report else None)
            fh.seek(0)
            ds = _parse(fh, force=not has_magic, report=report)
            end = fh.tell()
    except OSError as exc:
        raise _Rejected(f"could not read file: {exc.strerror or exc}") from exc
    except _Rejected as rejected:
        raise _unclaimed(rejected, path, has_magic, head) from None
    try:
        _check_complete(ds, path, end=end, size=size, report=report)
    except _Rejected as rejected:
        raise _unclaimed(rejected, path, has_magic, head) from None
    return ds


def _other_image_kind(path: Path, head: bytes) -> str | None:
    """What a file named as an image format this program does not read is, from its first bytes ("a TIFF
    image", "a BMP image", "a text file": ``messages.file_kind``), else None."""
    suffix = path.suffix.lower()
    if suffix not in OTHER_IMAGE_SUFFIXES:
        return None
    if suffix == ".bmp":  # two signature bytes: trusted only with the name
        return "a BMP image" if head.startswith(b"BM") else None
    return messages.file_kind(head)


def _unclaimed(rejected: "_Rejected", path: Path, has_magic: bool, head: bytes = b"") -> "_Rejected":
    """``rejected``, except for a file without the ``DICM`` prefix that does not parse as DICOM: when its first
    bytes say what it is (``messages.file_kind``: text, PDF...), the reason names it ("a text file, not a
    DICOM file"); one that never claimed to be DICOM either (no DICOM suffix: a file named directly) is
    "not a DICOM or image file"."""
    if not rejected.reason or has_magic or not rejected.reason.startswith("not a valid DICOM file"):
        return rejected
    claims = path.suffix.lower() in DICOM_SUFFIXES
    kind = messages.file_kind(head)
    if kind:  # "a GIF image, not a DICOM or image file" would contradict itself
        return _Rejected(f"{kind}, not a DICOM file" if claims else
                         f"{kind}: this program reads DICOM, PNG and JPEG files only")
    return rejected if claims else _Rejected(messages.NOT_DICOM_OR_IMAGE)


def _parse(fh: BinaryIO, *, force: bool, report: bool) -> Dataset:
    """``dcmread`` the header, turning pydicom's exceptions into a short reason."""
    try:
        return pydicom.dcmread(
            fh, stop_before_pixels=True, specific_tags=_HEADER_TAGS, force=force
        )
    except OSError:
        raise
    except InvalidDicomError as exc:
        reason = messages.not_dicom(str(exc))
    except (EOFError, struct.error) as exc:
        reason = f"truncated DICOM header: {messages.printable(exc, 160)}"
    except Exception as exc:  # pydicom raises many types on malformed headers
        reason = messages.not_dicom(f"{type(exc).__name__}: {exc}")
    raise _Rejected(_short(reason) if report else None)


def _check_complete(ds: Dataset, path: Path, *, end: int, size: int, report: bool) -> None:
    """Reject a dataset that pydicom read without complaint but that is not usable.

    pydicom does not raise on a file cut short: it seeks past the end of the file (with
    ``specific_tags``) or keeps a short value. The read position tells: it lies beyond the
    end of the file when an element was cut, and at the end of the file when the header
    describes an image whose pixel data never came (``pixel_layout.missing_pixel_data``: none in the file, or
    cut short before it).
    """
    identified = _is_dicomdir(ds) or any(tag in ds for tag in _IDENTIFYING_TAGS) or (
        "MediaStorageSOPInstanceUID" in file_meta(ds)
    )
    if not identified:
        if not report:
            raise _Rejected(None)
        if end > size:
            raise _Rejected(messages.NOT_DICOM_LENGTHS)
        raise _Rejected(messages.NOT_DICOM_NO_ATTRIBUTES)
    if text_value(file_meta(ds), "TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        return  # PS3.5 A.5: end and size count deflated bytes; deflated_problem judged the inflated ones
    if end > size:
        raise _Rejected(messages.truncated_header(size))
    if end == size and expects_pixels(ds):
        raise _Rejected(missing_pixel_data(ds, path, size))


def _is_raster_candidate(path: Path) -> bool:
    """A PNG/JPEG by name, or by content whatever its name (a JPEG named ``.dcm``), that does not carry
    the DICOM prefix (a ``.png`` DICOM is DICOM)."""
    if path.name.startswith("."):
        return False
    named = path.suffix.lower() in RASTER_SUFFIXES
    try:
        with open(path, "rb") as fh:
            head = fh.read(_MAGIC_OFFSET + len(_MAGIC))
    except OSError:
        return named  # reported by _raster_header
    if head[_MAGIC_OFFSET:] == _MAGIC:
        return False
    return named or raster_signature(head) is not None


def _raster_header(path: Path, *, skip_own: bool = True) -> _Header:
    """A PNG/JPEG file as an instance of its own patient; its size from the header only. With
    ``skip_own``, a heat-map or lung mask this program wrote raises ``_OwnOutput``."""
    from PIL import Image

    try:
        with Image.open(path) as probe:
            columns, rows = probe.size
            file_format = "png" if probe.format == "PNG" else "jpeg"
            own = skip_own and file_format == "png" and own_outputs.is_own_png(path, probe)
    except Image.DecompressionBombError as exc:  # Pillow's limit on the header's size
        from .dicom_io import MAX_PIXELS

        raise _Rejected(messages.raster_too_large(exc, MAX_PIXELS)) from exc
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) or exc.errno is not None:
            raise _Rejected(f"could not read file: {exc.strerror or exc}") from exc
        raise _Rejected(_short(messages.not_png_or_jpeg(exc))) from exc
    except Exception as exc:  # Pillow raises several types on damaged headers
        raise _Rejected(_short(messages.not_png_or_jpeg(exc))) from exc
    if own:
        raise _OwnOutput(own_outputs.PNG_NOTE)
    instance = Instance(
        path=path, sop_instance_uid="", sop_class_uid="", instance_number=None, rows=rows,
        columns=columns, number_of_frames=1, bits_stored=None, photometric="", transfer_syntax="",
        modality="", view_position="", body_part="", file_format=file_format,
    )
    key = ("file", str(path))
    return _Header(
        instance=instance,
        patient={"patient_id": NO_PATIENT_ID, "name": "", "birth_date": "", "sex": "", "issuer": ""},
        study={"uid": "", "date": "", "time": "", "description": "", "accession_number": ""},
        series={"uid": "", "number": None, "description": ""},
        patient_key=key,
        study_key=f"file:{path}",
        series_key=f"file:{path}",
    )


def _has_no_extension(path: Path) -> bool:
    """True for ``IM0001`` and for UID-named files such as ``1.2.840.113619.2.55.3.1``."""
    suffix = path.suffix
    return suffix == "" or suffix[1:].isdigit()


def _is_dicomdir(ds: Dataset) -> bool:
    return file_meta(ds).get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage


def _short(reason: str) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 1] + "…"


# --------------------------------------------------------------------------- values


def _transfer_syntax(ds: Dataset) -> str:
    """The file meta's transfer syntax, or the encoding pydicom found in a meta-less file."""
    uid = text_value(file_meta(ds), "TransferSyntaxUID")
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
    sop_uid = text_value(ds, "SOPInstanceUID") or text_value(file_meta(ds), "MediaStorageSOPInstanceUID")
    sop_class = text_value(ds, "SOPClassUID") or text_value(file_meta(ds), "MediaStorageSOPClassUID")
    instance = Instance(
        path=path,
        sop_instance_uid=sop_uid,
        sop_class_uid=sop_class,
        instance_number=int_value(ds, "InstanceNumber"),
        rows=int_value(ds, "Rows"),
        columns=int_value(ds, "Columns"),
        number_of_frames=int_value(ds, "NumberOfFrames") or 1,
        bits_stored=int_value(ds, "BitsStored"),
        photometric=text_value(ds, "PhotometricInterpretation"),
        transfer_syntax=_transfer_syntax(ds),
        modality=text_value(ds, "Modality"),
        view_position=text_value(ds, "ViewPosition"),
        body_part=text_value(ds, "BodyPartExamined"),
        image_header=expects_pixels(ds),
    )
    raw_id = text_value(ds, "PatientID")
    name = text_value(ds, "PatientName")
    birth_date = text_value(ds, "PatientBirthDate")
    issuer = text_value(ds, "IssuerOfPatientID")
    study_uid = text_value(ds, "StudyInstanceUID")
    series_uid = text_value(ds, "SeriesInstanceUID")
    # A missing UID cannot be grouped with anything: key it on the file itself.
    study_key = study_uid or f"file:{path}"
    return _Header(
        instance=instance,
        patient={
            "patient_id": raw_id or NO_PATIENT_ID,
            "name": name,
            "birth_date": birth_date,
            "sex": text_value(ds, "PatientSex"),
            "issuer": issuer,
        },
        study={
            "uid": study_uid,
            "date": text_value(ds, "StudyDate"),
            # Study Time, else the Series, Acquisition or Content Time: two studies of one day told apart
            "time": (text_value(ds, "StudyTime") or text_value(ds, "SeriesTime") or text_value(ds, "AcquisitionTime")
                     or text_value(ds, "ContentTime")),
            "description": text_value(ds, "StudyDescription"),
            "accession_number": text_value(ds, "AccessionNumber"),
        },
        series={
            "uid": series_uid,
            "number": int_value(ds, "SeriesNumber"),
            "description": text_value(ds, "SeriesDescription"),
        },
        patient_key=patient_key(raw_id, name, birth_date, issuer, study_key),
        study_key=study_key,
        series_key=series_uid or f"file:{path}",
    )


# --------------------------------------------------------------------------- grouping


def patient_key(patient_id: str, name: str, birth_date: str, issuer: str = "",
                study_key: str = "") -> tuple[str, ...]:
    """What tells one person from another: files with equal keys are one patient.

    Patient ID, Issuer of Patient ID, name (PN compared without letter case, surrounding spaces
    or empty trailing components) and birth date must all agree: two people who share an ID
    but not a name stay apart, and so do two people without an ID. Without an ID, a name *and*
    a birth date are needed to join studies; with less (no ID, and no name or no birth date),
    the person is only known within one study, so ``study_key`` (the Study Instance UID, else
    the file) is part of the key and no two studies are ever merged on an empty attribute.
    """
    norm_name = _normalised_name(name)
    key = (issuer.strip(), patient_id.strip(), norm_name, birth_date.strip())
    if not patient_id.strip() and not (norm_name and birth_date.strip()):
        key += (study_key,)
    return key


def _normalised_name(name: str) -> str:
    groups = []
    for group in name.split("="):
        components = [" ".join(c.split()) for c in group.split("^")]
        groups.append("^".join(components).rstrip("^"))
    return "=".join(groups).rstrip("=").casefold()



def _build_tree(headers: Iterable[_Header]) -> tuple[Patient, ...]:
    """Group headers into sorted patients; the first header seen fills each level's fields."""
    tree: dict[tuple, tuple[_Header, dict[str, tuple[_Header, dict[str, list[_Header]]]]]] = {}
    for header in headers:
        _, studies = tree.setdefault(header.patient_key, (header, {}))
        _, series = studies.setdefault(header.study_key, (header, {}))
        series.setdefault(header.series_key, []).append(header)
    patients = [
        Patient(
            **first.patient,
            key=first.patient_key,
            studies=tuple(sorted(
                (_make_study(study_first, series) for study_first, series in studies.values()),
                key=study_order,
            )),
        )
        for first, studies in tree.values()
    ]
    return tuple(sorted(patients, key=patient_order))


def _make_study(first: _Header, series: dict[str, list[_Header]]) -> Study:
    made = (_make_series(members) for members in series.values())
    return Study(**first.study, series=tuple(sorted(made, key=series_order)))


def _make_series(members: list[_Header]) -> Series:
    instances = sorted((h.instance for h in members), key=instance_order)
    first = instances[0]
    return Series(
        **members[0].series,
        modality=first.modality,
        body_part=first.body_part,
        instances=tuple(instances),
    )


# A hexadecimal identifier, e.g. an anonymised name that is a UUID ("0004cfab-14fd-4e49-…", RSNA's films) or a
# hash of 16 or more hex digits, letters among them. Its digit runs are not numbers. Shorter names of hex letters
# and digits ("ACE100000", "abc123") are names, whose numbers sort by value.
HEX_IDENTIFIER = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?=[^a-f]*[a-f])[0-9a-f]{16,}",
                            re.IGNORECASE)


def natural_key(text: str) -> tuple:
    """A sort key that orders the numbers inside ``text`` by value and the rest case-blind: ``j2`` before
    ``j10`` before ``J100`` (a reader's order; plain text order gives j1, j10, j100, j2). Text and number
    parts alternate, so any two keys compare; ``text`` itself breaks ties (``01`` and ``1``). A hexadecimal
    identifier (:data:`HEX_IDENTIFIER`, e.g. a UUID) sorts as one text part, case-blind: by value its digit
    runs would scramble it (``003d8fa0`` between ``0004cfab`` and ``00313ee0``)."""
    if HEX_IDENTIFIER.fullmatch(text):
        return ((text.casefold(),), text)
    parts = re.split(r"(\d+)", text)
    return (tuple(int(part) if i % 2 else part.casefold() for i, part in enumerate(parts)), text)


# The study tree's reading order, one sort key per level (also the study browser's, so several scans merged
# into one tree keep it): patients by name, then ID (unnamed last); studies by date and time (undated last);
# series and instances by number (unnumbered last), then UID or path.
def patient_order(patient: Patient) -> tuple:
    return (patient.name == "", natural_key(patient.name), natural_key(patient.patient_id),
            tuple(natural_key(str(part)) for part in patient.key))  # a PNG/JPEG's own patient: ("file", path)


def study_order(study: Study) -> tuple:
    return (study.date == "", study.date, study.time, study.uid)


def series_order(series: Series) -> tuple:
    return (series.number is None, series.number or 0, series.uid)


def instance_order(instance: Instance) -> tuple:
    return (instance.instance_number is None, instance.instance_number or 0, natural_key(str(instance.path)))
