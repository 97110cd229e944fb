"""The reader's marks are kept on this PC, so that closing the window, opening another folder or a crash
loses none of them: each change is written within a moment (not at closing), and a film shown again, in
this session or a later one, from this folder or a copy, gets its marks back. The same file keeps the film's
other readings: the cardiothoracic ratio's lines as the reader adjusted them (``keep_ctr``, ``ctr_for``; the
lung controller puts them back on the model's proposal) and the PDF comment written for it (``keep_comment``,
``comment_for``; the export dialog offers it again).

One JSON file per film in ``folder`` (``annotations_folder``), named by a digest of the film's bytes (its
size, first and last 64 KiB: a copy of the same file has the same name, a different film never does, and
the name says nothing of the patient). Points are written on the film as stored (a film shown turned or
flipped back has its marks mapped with ``image_checks.stored_points``) and mapped onto the film as shown
when they come back. The source files are never written; notes may hold patient data, so the folder stays
on this PC (as the settings do) and the README says where it is.

A DICOM film's record also holds its SOP Instance UID (0008,0018) and its size as stored (rows, columns): a film
whose file changed since (re-exported with another transfer syntax, its header corrected, rewritten by a copying
tool) has another digest, and gets back the one record with its UID and size (``film_identity``; the folder's
records are read for their UIDs once per session, when first needed), with a word to the reader; the record
then moves to the film's new name. A film without a UID (PNG, JPEG) is never matched so, nor one of another
size, nor another film open in this session (a second copy keeps its own record). Records without a UID (written
before) are read as ever, and get it the next time they are read.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QStandardPaths, QTimer, Signal

from cxr_engine.outputs.atomic import write_bytes_atomic
from cxr_engine.outputs.undecodable import escape_undecodable
from cxr_engine.reading.raster_io import raster_signature

from .annotation_model import KINDS, Annotation

logger = logging.getLogger(__name__)

FORMAT = "cxr-reader-annotations-1"
#: Bytes read from each end of a film for its digest.
DIGEST_SPAN = 64 * 1024
#: A change is written this long after the last one (a drag writes once).
SAVE_DELAY_MS = 300
#: The cardiothoracic ratio's lines kept when the reader moved them (``keep_ctr``).
CTR_LINES = ("thoracic", "cardiac")
#: A UID as DICOM writes it (PS3.5 9.1): digits and dots, at most 64 characters.
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
#: What the reader is told when a film's kept readings were found by its SOP Instance UID.
FOUND_BY_UID = "marks kept for this image (same SOP Instance UID) were put back; the file has changed since."


def annotations_folder(settings_file: str = "") -> Path:
    """Where the marks are kept: beside an INI settings file (``$CXR_DESKTOP_SETTINGS``, as the tests use), else
    the platform's application data folder, ``annotations``."""
    if settings_file:
        return Path(settings_file).resolve().parent / "cxr-reader-annotations"
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".local" / "share" / "cxr-reader") / "annotations"


def film_digest(path: Path) -> str:
    """A name for the film at ``path`` from its bytes: sha256 of its size, first and last ``DIGEST_SPAN`` bytes
    (the header with the film's UIDs, and the end of its pixel data). ``OSError`` when it cannot be read."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(0)
        head = handle.read(DIGEST_SPAN)
        handle.seek(max(size - DIGEST_SPAN, 0))
        tail = handle.read(DIGEST_SPAN)
    return hashlib.sha256(b"%d\0" % size + head + b"\0" + tail).hexdigest()[:40]


def film_identity(path: Path) -> tuple[str, int, int] | None:
    """The DICOM film's SOP Instance UID (0008,0018) and its size as stored (rows, columns), from its header;
    None for a PNG or JPEG, a film without them, or a header that cannot be read."""
    import pydicom  # the engine imports pydicom lazily

    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
            if raster_signature(head) is not None:
                return None
            handle.seek(0)
            ds = pydicom.dcmread(handle, stop_before_pixels=True, force=head[128:] != b"DICM",
                                 specific_tags=["SOPInstanceUID", "Rows", "Columns"])
        return _identity(ds.get("SOPInstanceUID"), ds.get("Rows"), ds.get("Columns"))
    except Exception as exc:  # a damaged header: the film is kept by its bytes only
        logger.debug("no SOP Instance UID read from %s: %s", path.name, exc)
        return None


def _identity(uid, rows, columns) -> tuple[str, int, int] | None:
    """``(uid, rows, columns)`` when they are a UID and two sizes, else None."""
    uid = str(uid or "").strip("\0 ")
    if not (len(uid) <= 64 and _UID.fullmatch(uid)):
        return None
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in (rows, columns)):
        return None
    return uid, int(rows), int(columns)


class AnnotationAutosave(QObject):
    """Writes ``store``'s marks of a film to ``folder`` shortly after each change, and puts a film's kept marks
    back when it is shown with none. ``to_stored(path, points)`` and ``to_shown(path, points)`` map points
    between the film as shown and as stored (identity when it is shown as stored). ``failed(message)``, the
    window's status bar: marks could not be written (the message names the film and the reason), or a film's
    kept readings were found by its SOP Instance UID (``FOUND_BY_UID``)."""

    failed = Signal(str)
    #: Another folder opens (``forget_films``): what is kept of its films is on disk, read again when shown.
    filmsForgotten = Signal()

    def __init__(self, store, folder: Path, to_stored: Callable, to_shown: Callable, parent: QObject | None = None):
        super().__init__(parent)
        self.store, self.folder = store, Path(folder)
        self.to_stored, self.to_shown = to_stored, to_shown
        self._digests: dict[Path, str | None] = {}
        self._dirty: set[Path] = set()
        self._told: dict[Path, str] = {}
        #: Per film, the readings kept beside the marks (``ctr``: the reader's lines on the film as stored;
        #: ``comment``), read from its file the first time they are asked for or changed.
        self._extras: dict[Path, dict] = {}
        #: The films whose marks the store holds as kept (their file was read, or the reader changed them);
        #: for another film, a write keeps the marks already in its file.
        self._marks_known: set[Path] = set()
        #: Per film, its ``film_identity`` (read once).
        self._identities: dict[Path, tuple[str, int, int] | None] = {}
        #: Per film without a file of its own, the record found by its UID (None: looked for, none), until the
        #: film's own file is written (the found one is removed then: one record per image).
        self._found: dict[Path, Path | None] = {}
        #: The folder's records by UID: ``{uid: {file name: (rows, columns)}}``, read when first needed.
        self._by_uid: dict[str, dict[str, tuple[int, int]]] | None = None
        self._restoring = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SAVE_DELAY_MS)
        self._timer.timeout.connect(self.save_now)
        store.listeners.append(self._changed)

    # ------------------------------------------------------------------ saving
    def _changed(self, path: Path) -> None:
        if self._restoring:
            return
        path = Path(path)
        if path not in self._marks_known:
            # A mark drawn on a film whose kept marks were never put back (a viewport that did not ``restore``):
            # they join the store now, so that the next write keeps them with it instead of replacing them.
            self._marks_known.add(path)
            self._put_back(path, self._kept_marks(path))
        self._dirty.add(path)
        self._timer.start()

    def save_now(self) -> set[Path]:
        """Write every film changed since the last write (also called on closing and before another folder
        opens); the films whose marks could not be written (they stay to be written at the next try, and
        ``failed`` says so once per film and reason)."""
        self._timer.stop()
        dirty, self._dirty = self._dirty, set()
        failed: set[Path] = set()
        for path in dirty:
            target = self._file(path)
            if target is None:
                continue
            try:
                extras = self._extras_of(path)
                if path in self._marks_known:
                    marks = [{"kind": m.kind, "points": [list(p) for p in self.to_stored(path, m.points)],
                              "text": m.text} for m in self.store.for_path(path)]
                else:  # never shown with its marks this session: those in its file stay as they are
                    marks = list((self._read(path) or {}).get("marks") or [])
                if not marks and not extras:
                    target.unlink(missing_ok=True)
                    self._index(target.name, None)
                    self._drop_found(path)
                    continue
                self._write(target, {"format": FORMAT, **self._identity_of(path), "marks": marks, **extras})
                self._drop_found(path)
            except (OSError, ValueError) as exc:  # a full disk or a read-only folder must not stop the reader
                failed.add(path)
                reason = getattr(exc, "strerror", None) or str(exc)
                logger.warning("the marks of %s could not be kept in %s: %s", path.name, self.folder, reason)
                if self._told.get(path) != reason:
                    self._told[path] = reason
                    self.failed.emit(f"The marks on {escape_undecodable(path.name)} could not be kept on this PC ({reason}): they "
                                     f"last only while this window is open.")
        self._dirty |= failed  # tried again at the next change or on closing
        return failed

    def _write(self, target: Path, record: dict) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_bytes_atomic(target, json.dumps(record, ensure_ascii=False, indent=1).encode("utf-8"))
        os.chmod(target, 0o600)  # notes may hold patient data: this user's only
        self._index(target.name, _record_identity(record))

    def _drop_found(self, path: Path) -> None:
        """The film's own file is written (or its readings all deleted): the record found by its UID goes."""
        found, self._found[path] = self._found.get(path), None
        if found is None:
            return
        try:
            found.unlink(missing_ok=True)
        except OSError as exc:  # left as it was: found again only for a film not open in this session
            logger.warning("the kept marks moved from %s could not be removed: %s", found, exc)
            return
        self._index(found.name, None)

    # ------------------------------------------------------------------ restoring
    def restore(self, path: Path) -> int:
        """Put back the kept marks of the film at ``path`` when the store holds none for it; how many."""
        path = Path(path)
        self._extras_of(path)
        self._marks_known.add(path)
        if self.store.for_path(path):
            return 0
        return self._put_back(path, self._kept_marks(path))

    def _kept_marks(self, path: Path) -> list[Annotation]:
        """The marks kept in ``path``'s file, on the film as shown (``[]``: none, or a damaged or foreign file)."""
        record = self._read(path)
        if record is None:
            return []
        try:
            return [_mark(m, lambda points: self.to_shown(path, points)) for m in record["marks"]]
        except Exception as exc:  # a damaged or foreign file: the film is shown without marks, never a crash
            logger.warning("the kept marks of %s could not be read (%s): %s", path.name, self._source(path), exc)
            return []

    def _put_back(self, path: Path, marks: list[Annotation]) -> int:
        self._restoring = True
        try:
            for mark in marks:
                self.store.replay(path, None, mark)  # not an undo step: the reader did not just draw it
        finally:
            self._restoring = False
        return len(marks)

    # ------------------------------------------------------------------ the film's other readings
    def ctr_for(self, path: Path) -> dict | None:
        """The cardiothoracic ratio's lines as the reader left them on the film at ``path``, on the film as
        shown: ``{"thoracic": ((x, y), (x, y)), "cardiac": (...)}``; None when the reader never moved them."""
        path = Path(path)
        kept = self._extras_of(path).get("ctr")
        if kept is None:
            return None
        return {name: tuple((float(x), float(y)) for x, y in self.to_shown(path, kept[name])) for name in CTR_LINES}

    def keep_ctr(self, path: Path, lines: dict | None) -> None:
        """Keep the reader's ratio lines on the film at ``path`` (on the film as shown, as ``ctr_for`` gives
        them), or forget them (None: the lines are the model's proposal again)."""
        path = Path(path)
        extras = self._extras_of(path)
        if lines is None:
            extras.pop("ctr", None)
        else:
            extras["ctr"] = {name: [[float(v) for v in p] for p in self.to_stored(path, lines[name])]
                             for name in CTR_LINES}
        self._dirty.add(path)
        self._timer.start()

    def comment_for(self, path: Path) -> str:
        """The PDF comment last written for the film at ``path`` (``""``: none)."""
        return self._extras_of(Path(path)).get("comment", "")

    def keep_comment(self, path: Path, text: str) -> None:
        """Keep ``text`` as the PDF comment of the film at ``path`` (an empty one forgets it)."""
        path, text = Path(path), str(text).strip()
        extras = self._extras_of(path)
        if extras.get("comment", "") == text:
            return
        if text:
            extras["comment"] = text
        else:
            extras.pop("comment", None)
        self._dirty.add(path)
        self._timer.start()

    def _extras_of(self, path: Path) -> dict:
        """The readings kept for ``path`` beside its marks (read from its file the first time)."""
        if path not in self._extras:
            self._extras[path] = _extras((self._read(path) or {}), path.name)
        return self._extras[path]

    def _read(self, path: Path) -> dict | None:
        """The record kept for the film at ``path``; None without one (or a damaged or foreign one)."""
        source = self._source(path)
        if source is None or not source.is_file():
            return None
        try:
            record = _parsed(source)
        except Exception as exc:  # a damaged or foreign file: nothing kept, never a crash
            logger.warning("the kept marks of %s could not be read (%s): %s", path.name, source, exc)
            return None
        if _record_identity(record) is None and self._identity_of(path):
            # written before records held the film's UID: it gets it now, so it is found if the file changes
            try:
                self._write(source, {"format": FORMAT, **self._identity_of(path),
                                     **{k: v for k, v in record.items() if k != "format"}})
            except (OSError, ValueError) as exc:  # kept by the film's bytes only, as before
                logger.debug("the SOP Instance UID of %s could not be added to %s: %s", path.name, source, exc)
        return record

    def _source(self, path: Path) -> Path | None:
        """The file of the film's kept readings: its own (``_file``), else the record found by its SOP Instance
        UID (looked for once), else its own (none yet); None when the film cannot be read."""
        target = self._file(path)
        if target is None or target.is_file():
            return target
        if path not in self._found:
            self._found[path] = self._found_by_uid(path, target)
        return self._found[path] or target

    def _found_by_uid(self, path: Path, target: Path) -> Path | None:
        """The one record with the film's SOP Instance UID and size as stored, kept for a film whose file has
        changed since (another digest); never one of a film open in this session (a copy with its own record),
        nor one of two with that UID (two images the reader kept apart). The reader is told (``failed``)."""
        identity = self._identity_of(path)
        if not identity:
            return None
        uid, shape = identity["sop_instance_uid"], (identity["rows"], identity["columns"])
        if self._by_uid is None:
            self._by_uid = self._read_uids()
        names = [name for name in self._by_uid.get(uid, {}) if name != target.name]
        if len(names) != 1:
            if names:
                logger.warning("%d kept records have the SOP Instance UID of %s: none is put back", len(names),
                               path.name)
            return None
        name = names[0]
        open_films = {f"{digest}.json" for digest in self._digests.values() if digest}
        open_films |= {found.name for found in self._found.values() if found is not None}
        found = self.folder / name
        if self._by_uid[uid][name] != shape or name in open_films or not found.is_file():
            return None
        logger.info("the kept marks of %s found by its SOP Instance UID in %s", path.name, found)
        self.failed.emit(f"{escape_undecodable(path.name)}: {FOUND_BY_UID}")
        self._dirty.add(path)  # moved to the film's own file within a moment
        self._timer.start()
        return found

    def _read_uids(self) -> dict[str, dict[str, tuple[int, int]]]:
        """The folder's records by SOP Instance UID (those without one are left out)."""
        by_uid: dict[str, dict[str, tuple[int, int]]] = {}
        try:
            files = [entry.path for entry in os.scandir(self.folder) if entry.name.endswith(".json")]
        except OSError:  # no folder yet: nothing kept
            return by_uid
        for file in files:
            try:
                identity = _record_identity(_parsed(Path(file)))
            except Exception:  # a damaged or foreign file: not this film's
                continue
            if identity is not None:
                by_uid.setdefault(identity[0], {})[os.path.basename(file)] = identity[1:]
        return by_uid

    def _index(self, name: str, identity: tuple[str, int, int] | None) -> None:
        """The record ``name`` was written (with ``identity``) or removed (None): the UID index follows."""
        if self._by_uid is None:
            return  # read from the folder when first needed
        for names in self._by_uid.values():
            names.pop(name, None)
        if identity is not None:
            self._by_uid.setdefault(identity[0], {})[name] = identity[1:]

    def _identity_of(self, path: Path) -> dict:
        """The film's SOP Instance UID and size as stored, as its record holds them (``{}``: none)."""
        if path not in self._identities:
            self._identities[path] = film_identity(path)
        identity = self._identities[path]
        return {} if identity is None else dict(zip(("sop_instance_uid", "rows", "columns"), identity))

    def forget_films(self) -> None:
        """Forget the films' digests and what was read from their files (another folder opens: a file may have
        been replaced since); what could not be written yet stays to be written (``save_now``)."""
        self._digests = {path: digest for path, digest in self._digests.items() if path in self._dirty}
        self._extras = {path: extras for path, extras in self._extras.items() if path in self._dirty}
        self._marks_known &= self._dirty
        self._identities = {path: identity for path, identity in self._identities.items() if path in self._dirty}
        self._found = {path: found for path, found in self._found.items() if path in self._dirty}
        self.filmsForgotten.emit()

    def _file(self, path: Path) -> Path | None:
        if path not in self._digests:
            try:
                self._digests[path] = film_digest(path)
            except OSError:
                self._digests[path] = None
        digest = self._digests[path]
        return None if digest is None else self.folder / f"{digest}.json"


def _parsed(file: Path) -> dict:
    """The record in ``file``; ``ValueError`` (or ``OSError``) when it is not one."""
    record = json.loads(file.read_text(encoding="utf-8"))
    if not isinstance(record, dict) or record.get("format") != FORMAT or not isinstance(record.get("marks"), list):
        raise ValueError(f"not {FORMAT}")
    return record


def _record_identity(record: dict) -> tuple[str, int, int] | None:
    """The SOP Instance UID and size a record was kept with; None for one kept before they were written."""
    return _identity(record.get("sop_instance_uid"), record.get("rows"), record.get("columns"))


def _extras(record: dict, name: str) -> dict:
    """The readings of a kept ``record`` beside its marks: ``ctr`` (checked) and ``comment``; those that are
    damaged are left out (and logged)."""
    extras: dict = {}
    ctr = record.get("ctr")
    if ctr is not None:
        try:
            extras["ctr"] = {line: _line(ctr[line]) for line in CTR_LINES}
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning("the kept ratio lines of %s could not be read: %s", name, exc)
    comment = record.get("comment")
    if isinstance(comment, str) and comment.strip():
        extras["comment"] = comment
    return extras


def _line(points) -> list[list[float]]:
    """A kept line's two ends; ``ValueError`` for anything else."""
    line = [[float(v) for v in point] for point in points]
    if len(line) != 2 or any(len(p) != 2 or not all(math.isfinite(v) for v in p) for p in line):
        raise ValueError(f"not a line: {points!r}"[:80])
    return line


def _mark(item, to_shown) -> Annotation:
    """One kept mark as an ``Annotation`` on the film as shown; ``ValueError`` for anything else."""
    if not isinstance(item, dict) or item.get("kind") not in KINDS:
        raise ValueError(f"not a mark: {item!r}"[:80])
    points = [tuple(float(v) for v in point) for point in item["points"]]
    if not points or any(len(p) != 2 or not all(math.isfinite(v) for v in p) for p in points):
        raise ValueError(f"not a mark's points: {item['points']!r}"[:80])
    return Annotation(item["kind"], tuple(to_shown(points)), str(item.get("text", "")))
