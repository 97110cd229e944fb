"""Copies of one SOP Instance: the same DICOM image stored as more than one file.

A SOP Instance UID identifies one instance (PS3.3 C.12.1.1.1), so files with the same UID under the same
patient, study and series whose bytes are identical are one image stored twice (a study copied into two
folders, a file and its backup). A reader wants it once: listed once, classified once, exported once,
with the other paths named. The file kept is the one the user named first, else (all found by
walking folders) the one whose path sorts first; the others are its ``Instance.copies``.

Nothing else is folded: files without a SOP Instance UID (and PNG/JPEG files), instances of different
patients (``Patient.key``), studies or series, and files that share a UID but differ in any byte (an
edited or re-encoded file, e.g. the same pixels relabelled MONOCHROME1, is a different object to read)
stay separate. Only files that share a UID are read in full, to compare them.

The same file reached by several paths (paths named that overlap, a symbolic link to the file or to a folder
above it, a hard link: one device and inode) is no copy but one file: :func:`fold_same_files` keeps it once,
whatever it holds (a PNG, a file without UID), with the other paths in its ``Instance.aliases``.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .scanning import Instance, Patient, ScanResult, Series, Study


def fold_same_files(results: Sequence["ScanResult"], left_out: Callable[[Path], bool] | None = None,
                    named: Sequence[Path] = ()) -> list["ScanResult"]:
    """``results`` with each file once across all of them, however many paths reach it (:func:`file_identity`):
    the path kept is the first of ``named`` that reaches it (files the user named one by one, in the order
    named), else the one that sorts first; it carries the other paths (those it was reached by, and those
    each scan noted) in its ``aliases``, sorted, and the other instances leave the tree. The same path reached
    twice (a file named and found in a folder named too) is no alias. Returns new ``ScanResult`` objects in
    the same order; ``order``, ``errors`` and the counters are unchanged. Instances whose path ``left_out``
    take no part, as in :func:`fold_copies`."""
    rank = {_same_path(path): index for index, path in reversed(list(enumerate(named)))}
    groups: dict[object, list["Instance"]] = {}
    for result in results:
        for instance in result.all_instances():
            if not (left_out is not None and left_out(instance.path)):
                groups.setdefault(file_identity(instance.path), []).append(instance)
    kept: dict[int, "Instance"] = {}
    dropped: set[int] = set()
    for members in (group for group in groups.values() if len(group) > 1):
        first = min(members, key=lambda m: (rank.get(_same_path(m.path), len(rank)), str(m.path)))
        own = _same_path(first.path)
        others = {_same_path(p): p for m in members for p in (m.path, *m.aliases) if _same_path(p) != own}
        kept[id(first)] = replace(first, aliases=tuple(sorted(others.values(), key=str)))
        dropped.update(id(m) for m in members if m is not first)
    if not dropped:
        return list(results)
    return [replace(result, patients=_pruned(result.patients, kept, dropped)) for result in results]


def file_identity(path: str | os.PathLike[str]) -> object:
    """What makes two paths one file: the device and inode of what ``path`` leads to (links followed, so a
    symbolic link, a hard link and a path named twice are one), else, where it cannot be looked at, the path
    with its links resolved."""
    try:
        info = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return info.st_dev, info.st_ino


def fold_copies(results: Sequence["ScanResult"], left_out: Callable[[Path], bool] | None = None,
                named: Sequence[Path] = ()) -> list["ScanResult"]:
    """``results`` with each SOP Instance once, across all of them: the copy kept is the first of
    ``named`` (files the user named one by one, in the order named: a file named keeps its row), else
    the copy whose path sorts first; it stays where it was found with the other paths in its ``copies``
    (sorted), the others leave the tree (series, studies and patients left empty go too). Instances whose path ``left_out`` (e.g. in an
    excluded folder) take no part: they neither stand for nor count as copies. Returns new
    ``ScanResult`` objects in the same order; ``order``, ``errors`` and the counters are unchanged."""
    rank = {_same_path(path): index for index, path in reversed(list(enumerate(named)))}
    groups: dict[tuple, list["Instance"]] = {}
    for result in results:
        for patient in result.patients:
            for study in patient.studies:
                for series in study.series:
                    for instance in series.instances:
                        key = _identity(patient, study, series, instance)
                        if key is not None and not (left_out is not None and left_out(instance.path)):
                            groups.setdefault(key, []).append(instance)
    kept: dict[int, "Instance"] = {}  # id(instance) -> the instance with its copies
    dropped: set[int] = set()
    for members in (same for group in groups.values() if len(group) > 1 for same in _by_content(group)):
        if len(members) < 2:
            continue
        first = min(members, key=lambda m: (rank.get(_same_path(m.path), len(rank)), str(m.path)))
        seen = {file_identity(first.path)}
        copies = []
        for path in sorted({p for m in members for p in (m.path, *m.copies)}, key=str):
            identity = file_identity(path)
            if identity not in seen:
                seen.add(identity)
                copies.append(path)
        kept[id(first)] = replace(first, copies=tuple(copies))
        dropped.update(id(m) for m in members if m is not first)
    if not dropped and not kept:
        return list(results)
    return [replace(result, patients=_pruned(result.patients, kept, dropped)) for result in results]


#: Paths of a copy group named in a warning; the rest are counted (a folder of 200 copies made a 9 KB line).
COPIES_NAMED = 2


def copies_note(copies: Sequence[Path]) -> str:
    """The warning on the kept file of an instance stored as ``copies`` too (CLI warnings column, app
    tooltip): the count and the first ``COPIES_NAMED`` paths (``cxr-classify -v`` and the app's Problems
    list name every one)."""
    files = "file" if len(copies) == 1 else "files"
    named = ", ".join(str(path) for path in copies[:COPIES_NAMED])
    more = f" and {len(copies) - COPIES_NAMED} more" if len(copies) > COPIES_NAMED else ""
    return f"the same SOP Instance is also stored as {len(copies)} other identical {files}, left out: {named}{more}"


def aliases_note(aliases: Sequence[Path]) -> str:
    """The warning on a file also reached by the other paths ``aliases`` (a symbolic or hard link, a path named
    twice): the count and the first ``COPIES_NAMED`` of them (``cxr-classify -v`` names every one)."""
    paths = "path" if len(aliases) == 1 else "paths"
    named = ", ".join(str(path) for path in aliases[:COPIES_NAMED])
    more = f" and {len(aliases) - COPIES_NAMED} more" if len(aliases) > COPIES_NAMED else ""
    return f"the same file is also reached by {len(aliases)} other {paths}, left out: {named}{more}"


def aliases_line(kept: Path, aliases: Sequence[Path]) -> str:
    """One line for a file reached by several paths (the CLI's standard error): how many, which file, and that
    it is read once."""
    paths = "path" if len(aliases) == 1 else "paths"
    return f"{len(aliases)} other {paths} to the same file {kept} left out (a link, or named twice): classified once"


def copies_note_deidentified(count: int) -> str:
    """:func:`copies_note` for a de-identified report: the count alone, no path (a file or folder name may be
    the patient's name or a UID)."""
    files = "file" if count == 1 else "files"
    return f"the same SOP Instance is also stored as {count} other identical {files}, left out"


def copies_line(kept: Path, copies: Sequence[Path]) -> str:
    """One line for a group of copies (the CLI's standard error): how many, of which file, and that they
    are not errors."""
    what = "copy" if len(copies) == 1 else "copies"
    return (f"{len(copies)} identical {what} of {kept} left out (same SOP Instance, same bytes): "
            "classified once, as that file")


def copy_reason(kept: Path, count: int = 1) -> str:
    """Why ``count`` copies are left out, in the words of the app's Problems list (one row per group)."""
    what = "an identical copy" if count == 1 else f"{count} identical copies"
    return f"{what} of the SOP Instance in {kept}: listed, classified and exported once, as that file"


def _identity(patient: "Patient", study: "Study", series: "Series", instance: "Instance") -> tuple | None:
    """What makes two files one SOP Instance; None for a file that cannot be told apart so."""
    if not (instance.sop_instance_uid and study.uid and series.uid and patient.key):
        return None
    return (patient.key, study.uid, series.uid, instance.sop_instance_uid, instance.sop_class_uid,
            instance.rows, instance.columns, instance.number_of_frames)


def _by_content(members: list["Instance"]) -> list[list["Instance"]]:
    """``members`` (one UID) split by the files' bytes (size, then SHA-256); an unreadable file stays alone."""
    parts: dict[object, list["Instance"]] = {}
    for member in members:
        parts.setdefault(_digest(member.path) or ("unreadable", id(member)), []).append(member)
    return list(parts.values())


def _digest(path: Path) -> tuple[int, str] | None:
    try:
        with open(path, "rb") as handle:
            return os.fstat(handle.fileno()).st_size, hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def _same_path(path: Path) -> Path:
    """The path as named (links not resolved: a link named is the file the user chose), made absolute."""
    return Path(os.path.abspath(path))


def _pruned(patients: tuple["Patient", ...], kept: dict[int, "Instance"], dropped: set[int]) -> tuple["Patient", ...]:
    out_patients = []
    for patient in patients:
        studies = []
        for study in patient.studies:
            series_list = []
            for series in study.series:
                instances = tuple(kept.get(id(i), i) for i in series.instances if id(i) not in dropped)
                if instances:
                    series_list.append(replace(series, instances=instances))
            if series_list:
                studies.append(replace(study, series=tuple(series_list)))
        if studies:
            out_patients.append(replace(patient, studies=tuple(studies)))
    return tuple(out_patients)
