"""Checks on a batch run's output paths before any work starts: can each output folder be created and
written in, is the CSV path a file path that can be written. Each check gives the reason a path cannot
be used (None when it can), worded to follow the path: ``afile/out.csv: afile is a file, not a folder``."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def folder_problem(path: Path) -> str | None:
    """Why ``path`` cannot be used as an output folder (None when it can). Creates the folder (and its
    parents) and writes and removes a probe file in it: only trying tells, e.g. under ``/proc``."""
    path = Path(path)
    blocking = _blocking_file(path)
    if blocking is not None:
        return "is a file, not a folder" if blocking == path else f"{blocking} is a file, not a folder"
    return _create_and_probe(path, "the folder")


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be written as an output file (None when it can): not a folder nor a device,
    in a folder that can be created and written in (the file is written beside itself, then renamed)."""
    path = Path(path)
    if path.is_dir():
        return "is a folder, not a file"
    if path.exists() and not path.is_file():
        return "is not a regular file"
    blocking = _blocking_file(path.parent)
    if blocking is not None:
        return f"{blocking} is a file, not a folder"
    return _create_and_probe(path.parent, f"its folder {path.parent}")


def _create_and_probe(folder: Path, what: str) -> str | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create {what}: {exc.strerror or exc}"
    try:
        fd, probe = tempfile.mkstemp(prefix=".cxr-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write in {what}: {exc.strerror or exc}"
    return None


def _blocking_file(path: Path) -> Path | None:
    """The nearest of ``path`` and its parents that exists, when it is not a folder (None otherwise)."""
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return None
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return None
