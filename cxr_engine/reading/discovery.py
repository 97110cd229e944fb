"""One way to find the images in what a user named: files, folders and DICOMDIRs.

The CLI and the desktop app both call :func:`find_images`, so they find the same files: it runs the
study scan (:func:`cxr_engine.reading.scanning.scan` with PNG/JPEG included) on every folder,
DICOMDIR and file, and lists a folder's images in reading order, the study tree's
(:meth:`~cxr_engine.reading.scanning.ScanResult.image_files`): the order the app's study browser shows,
so the CLI's first row is the app's first film.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .copies import file_identity, fold_copies, fold_same_files
from .scanning import ScanResult, is_dicomdir_file, missing_reason, scan
from .uid_clashes import uid_clashes


@dataclass
class FoundImages:
    """What :func:`find_images` found.

    ``files``: the images in reading order (see :func:`find_images`), and the files named directly
    (whatever they are); ``problems``:
    the reason, in the words of the app's Problems list, for each listed file the scan found unreadable
    (logged by the scan);
    ``own_outputs``: files skipped because this program wrote them (``cxr_engine.outputs.own_outputs``);
    ``scans``: one ``ScanResult`` (the Patient → Study → Series tree) per path scanned, in the order given;
    ``cancelled``: True when ``should_cancel`` stopped the search (what was found until then is kept);
    ``copies``: the listed file of each SOP Instance found as more than one file -> its other files, which
    are not listed (``cxr_engine.reading.copies``: the file named first is kept, else the path that sorts first);
    ``uid_clashes``: SOP Instance UID -> the listed files (two or more) that carry it with different bytes,
    each listed as its own image (``cxr_engine.reading.uid_clashes``);
    ``aliases``: the listed path of each file reached by several paths (a symbolic or hard link, paths named
    that overlap) -> the other paths, which are not listed (``cxr_engine.reading.copies.fold_same_files``).
    """

    files: list[Path]
    problems: dict[Path, str] = field(default_factory=dict)
    own_outputs: list[Path] = field(default_factory=list)
    scans: list[ScanResult] = field(default_factory=list)
    cancelled: bool = False
    copies: dict[Path, tuple[Path, ...]] = field(default_factory=dict)
    uid_clashes: dict[str, tuple[Path, ...]] = field(default_factory=dict)
    aliases: dict[Path, tuple[Path, ...]] = field(default_factory=dict)


def find_images(paths: Iterable[str | os.PathLike[str]], exclude: Iterable[str | os.PathLike[str]] = (), *,
                should_cancel: Callable[[], bool] | None = None,
                progress: Callable[[int, int | None, Path], None] | None = None) -> FoundImages:
    """The images in ``paths``: files named directly (always listed, whatever they are), and what a
    folder (recursively) or a DICOMDIR holds, except what lies in the ``exclude`` folders (e.g. a run's
    own output folders, so that a rerun does not classify the heat-maps and masks of the last run).

    Found by content and by name: DICOM files with the ``DICM`` prefix, or named ``*.dcm``, ``*.dicom``,
    ``*.dic``, ``*.ima``, or without a suffix or with a numeric one (UID-named files); the files a
    DICOMDIR lists (found case-insensitively); PNG and JPEG. Hidden entries are skipped; symbolic links
    inside the folder are followed, each folder once (loops end); links leaving it are problems. Each
    image is listed once, ``paths`` in the order given and a folder's or DICOMDIR's images in reading order
    (``ScanResult.image_files``: the study tree's, patients by name and ID, then study date, series and image
    numbers), followed by the files it could not read in walk order; DICOM objects that are not images
    (reports, presentation states) are left out. The rules are the scan's (:mod:`cxr_engine.reading.scanning`). A SOP Instance
    stored as several files, in one path or across them, is listed once (``copies`` names the others):
    as the file named first where the user named one or more of them, else as the one that sorts first. So is
    one file reached by several paths (one device and inode: ``aliases`` names the other paths), whatever it
    holds, a file that cannot be read too.

    ``should_cancel()`` is polled before each file and folder; ``progress(done, total or None, path)``
    is called after each file of each scan. A path that does not exist (or a broken link, or a link
    loop) is a problem (``no such file or folder``), listed so that it keeps its place and its CLI row;
    nothing is raised for one bad path. A single ``str`` or ``PathLike`` is
    taken as one path.
    """
    if isinstance(paths, (str, os.PathLike)):  # one path, not an iterable of its characters
        paths = [paths]
    found = FoundImages([])
    named: list[Path] = []  # the files named one by one, in order
    excluded = [Path(os.path.realpath(folder)) for folder in exclude]
    for raw in paths:
        if should_cancel is not None and should_cancel():
            found.cancelled = True
            break
        path = Path(raw)
        direct = not (path.is_dir() or is_dicomdir_file(path))
        if direct and not path.exists():  # listed, with the reason: a row of its own in the CLI
            found.files.append(path)
            found.problems[path] = missing_reason(path)
            continue
        result = scan(path, progress=progress, should_cancel=should_cancel, include_raster=True)
        found.scans.append(result)
        found.own_outputs.extend(result.own_outputs)
        if direct:
            found.files.append(path)
            named.append(path)
            if result.errors:  # the scan has logged it; reading the file again would only repeat the reason
                found.problems[path] = result.errors[0].reason
            continue
        _add_listed(found, result, excluded)
        if result.cancelled:
            found.cancelled = True
            break
    _leave_out_copies(found, excluded, named)
    return found


def _leave_out_copies(found: FoundImages, excluded: list[Path], named: list[Path]) -> None:
    """Fold the paths to one file, then copies, across the scans (files in ``excluded`` folders take no part;
    of ``named``, the files named one by one, the first named is kept) and list each file once (a path listed
    twice is listed once; a file reached by two paths that are not both in the trees, as the one the scans
    read, else the one named first, else the first listed, its ``aliases`` the rest)."""
    left_out_of = (lambda path: _inside(path, excluded)) if excluded else None
    found.scans = fold_same_files(found.scans, left_out_of, named=named)
    found.scans = fold_copies(found.scans, left_out_of, named=named)
    found.copies = {path: copies for result in found.scans for path, copies in result.copies.items()}
    aliases = {_absolute(path): list(others) for result in found.scans for path, others in
               (*result.aliases.items(), *((error.path, error.aliases) for error in result.errors if error.aliases))}
    left_out = {_absolute(path) for groups in (found.copies, aliases) for others in groups.values()
                for path in others}
    candidates: dict[Path, Path] = {}  # absolute -> the path as listed first
    for path in found.files:
        if _absolute(path) not in left_out:
            candidates.setdefault(_absolute(path), path)
    # A path the scans read stands before one they could not (a link out of its folder, not followed, to a
    # film another input reaches); then the path named first; else the first listed (the sort is stable).
    rank = {_absolute(path): index for index, path in reversed(list(enumerate(named)))}
    kept: dict[object, Path] = {}  # file_identity -> the path listed for it
    for path in sorted(candidates.values(), key=lambda path: (path in found.problems,
                                                                rank.get(_absolute(path), len(rank)))):
        kept.setdefault(file_identity(path), path)
    files = []
    for path in candidates.values():
        first = kept[file_identity(path)]
        if first == path:
            files.append(path)
        else:
            aliases.setdefault(_absolute(first), []).extend([path, *aliases.pop(_absolute(path), ())])
    found.files = files
    listed = set(files)
    found.problems = {path: reason for path, reason in found.problems.items() if path in listed}
    found.aliases = {path: tuple(aliases[_absolute(path)]) for path in files if aliases.get(_absolute(path))}
    absolute = {_absolute(path) for path in files}
    instances = [instance for result in found.scans for instance in result.all_instances()
                 if _absolute(instance.path) in absolute]
    found.uid_clashes = uid_clashes(instances)


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _add_listed(found: FoundImages, result: ScanResult, excluded: list[Path]) -> None:
    """The images of a folder or DICOMDIR scan in reading order (``ScanResult.image_files``, the study tree's),
    then the files and folders it could not read, in the order reached."""
    found.files.extend(path for path in result.image_files() if not (excluded and _inside(path, excluded)))
    reasons = {error.path: error.reason for error in result.errors}
    reached = set(result.order)
    for path in result.order:
        if path in reasons and not (excluded and _inside(path, excluded)):
            found.files.append(path)
            found.problems[path] = reasons[path]
    for error in result.errors:  # folders that could not be listed
        if error.path not in reached and not (excluded and _inside(error.path, excluded)):
            found.files.append(error.path)
            found.problems[error.path] = error.reason


def _inside(path: Path, folders: list[Path]) -> bool:
    """Whether ``path`` (links resolved) is one of ``folders`` (resolved) or lies under one of them."""
    path = Path(os.path.realpath(path))
    return any(path == folder or folder in path.parents for folder in folders)
