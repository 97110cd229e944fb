"""Checks on a batch run's output paths before any work starts: can each output folder be created and
written in, is the CSV path a file path that can be written. Each check gives the reason a path cannot
be used (None when it can), worded to follow the path: ``afile/out.csv: afile is a file, not a folder``;
:func:`source_problem` refuses an output that is an input, lies inside an input folder, or lies in (or
below) the folder that holds an input file; :func:`safe_name_part` is the part of an output's file name taken
from a source's."""
from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def folder_problem(path: Path, inputs: Iterable[str | os.PathLike[str]] = ()) -> str | None:
    """Why ``path`` cannot be used as an output folder (None when it can). Unless it would write a
    source (:func:`source_problem` with the run's ``inputs``), creates the folder (and its parents) and
    writes and removes a probe file in it: only trying tells, e.g. under ``/proc``."""
    path = Path(path)
    try:
        blocking = _blocking_file(path)
    except OSError as exc:
        return _cannot_enter(exc)
    if blocking is not None:
        return "is a file, not a folder" if blocking == path else f"{blocking} is a file, not a folder"
    return source_problem(path, inputs) or _create_and_probe(path, "the folder")


def file_problem(path: Path, inputs: Iterable[str | os.PathLike[str]] = ()) -> str | None:
    """Why ``path`` cannot be written as an output file (None when it can): not a folder nor a device,
    not one of the run's ``inputs`` nor in a source folder (:func:`source_problem`), in a folder
    that can be created and written in (the file is written beside itself, then renamed)."""
    path = Path(path)
    try:
        if path.is_dir():
            return "is a folder, not a file"
        if path.exists() and not path.is_file():
            return "is not a regular file"
        blocking = _blocking_file(path.parent)
    except OSError as exc:
        return _cannot_enter(exc)
    if blocking is not None:
        return f"{blocking} is a file, not a folder"
    return source_problem(path, inputs) or _create_and_probe(path.parent, f"its folder {path.parent}")


def _create_and_probe(folder: Path, what: str) -> str | None:
    """``cannot create <what>: the folder above is not writable (...)`` or ``cannot be written there: <what>
    is not writable (...)``, the cause in words (:func:`not_writable`), None when a probe file could be
    written and removed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create {what}: the folder above is not writable ({not_writable(exc)})"
    try:
        fd, probe = tempfile.mkstemp(prefix=".cxr-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot be written there: {what} is not writable ({not_writable(exc)})"
    return None


def _cannot_enter(error: OSError) -> str:
    """A path that cannot even be looked at: a folder on it that this user may not enter (``/root/x.csv``)."""
    if error.errno in (errno.EACCES, errno.EPERM):
        return "cannot be written there: this user may not enter a folder on its path (permission denied)"
    return f"cannot be written there: {not_writable(error)}"


def not_writable(error: OSError) -> str:
    """Why a folder took no new file or folder, in words: the operating system's "No such file or directory"
    for a file created in ``/proc`` names nothing that is missing."""
    words = {
        errno.EACCES: "permission denied: this user may not write there",
        errno.EPERM: "permission denied: this user may not write there",
        errno.EROFS: "it is on a read-only file system",
        errno.ENOENT: "it accepts no new files, as the virtual /proc and /sys do",
        errno.ENOSPC: "no space is left on its device",
        errno.EDQUOT: "the disk quota is used up",
    }
    return words.get(error.errno, error.strerror or str(error))


def _blocking_file(path: Path) -> Path | None:
    """The nearest of ``path`` and its parents that exists, when it is not a folder (None otherwise)."""
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return None
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return None


def source_problem(path: Path, inputs: Iterable[str | os.PathLike[str]]) -> str | None:
    """Why ``path`` must not be written because it would write a source (None when it may). The one
    rule for every output of the CLI and the app: an output (file or folder) is never an input, nor
    inside an input folder, nor in the folder that holds an input file (nor below it), so the folders a
    reader's studies came from stay as they were. An input that does not exist (a mistyped name in a study
    folder, say) keeps its folder protected all the same (a reviewer's finding: the folder a mistyped study name
    lies in is most likely a study folder), and the refusal says first that it does not exist and what to do (a
    tester read the older wording as a fault of the output's place). Links are resolved; checked before
    anything is created."""
    target = Path(os.path.realpath(path))
    for raw in inputs:
        source = Path(os.path.realpath(raw))
        missing = "" if os.path.lexists(raw) else ", which does not exist"
        if target == source:
            return f"is an input{missing}; source files and folders are never written"
        if source in target.parents and (missing or source.is_dir()):
            return f"lies inside the input {'folder ' if not missing else ''}{raw}{missing}; source folders are never written"
        if not source.is_dir() and (target == source.parent or source.parent in target.parents):
            where = "holds" if target == source.parent else "lies in the folder of"
            if missing:
                return (f"{where} the input {raw}, which does not exist (mistyped?): its folder is kept as a source "
                        "folder, never written; correct the input's name, or write the output elsewhere")
            return f"{where} the input {raw}; source folders are never written"
    return None


def safe_name_part(text: str, limit: int = 60) -> str:
    """``text`` (a source file's stem) made fit for an output file's name: its first ``limit`` characters, each
    that is not printable (``str.isprintable``: control characters such as ESC, newline and DEL; format
    characters such as the right-to-left override; separators other than the space; the bytes of a name that
    is not UTF-8) replaced by ``_``. The name stays recognisable, and listing the folder never recolours a
    terminal or reorders the name; the output's number keeps it unique."""
    return "".join(ch if ch.isprintable() else "_" for ch in text[:limit])
