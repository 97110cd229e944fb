"""DICOMDIR references: the files a DICOMDIR's directory records name, found on disk.

A DICOMDIR (PS3.10 section 8, PS3.3 annex F) lists its file-set's files by Referenced File ID: path
components relative to the DICOMDIR's folder, in upper case on ISO 9660 media, sometimes with a
version suffix (``;1``) or a trailing dot. Copied from a CD to (or mounted on) a case-sensitive file
system, the names on disk no longer match as written; :func:`find_referenced_file` finds them
anyway. A reference leaving the DICOMDIR's folder is reported, never followed.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import pydicom

from .. import messages


class UnreadableDicomdir(ValueError):
    """A file that claims to be a DICOMDIR but cannot be read as one; the message is the reason."""


def dicomdir_references(path: Path) -> list[tuple[Path, str | None]]:
    """``(file, problem)`` for each Referenced File ID in the records of the DICOMDIR at ``path``
    (PS3.3 F.3.2.2, PS3.10 8.5); ``problem`` is None when the file was found, else a short reason
    (a reference outside the DICOMDIR's folder, or not found).

    Raises ``OSError`` when the file cannot be read and :class:`UnreadableDicomdir` when it does not
    parse as a DICOMDIR.

    The records are read from the dataset rather than through ``pydicom.fileset.FileSet``:
    ``FileSet.load`` drops every reference whose exact path is missing (with only a warning)
    and raises ``PermissionError`` for the whole set on one reference outside its folder, while
    here each reference is looked for case-insensitively (:func:`find_referenced_file`) and judged
    alone. With pydicom 3.0.2, ``FileSet`` finds 0 instances in the bug case
    ``dicomdir-lowercase`` (a CD copied with lower-case names), this function 1
    (``tests/test_dicomdir_fileset.py`` checks both, so a pydicom that learns this shows up).
    Orphan records (outside the record hierarchy) are read too, as ``FileSet`` does by default.
    """
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        records = ds.get("DirectoryRecordSequence") or []
    except OSError:
        raise
    except Exception as exc:  # pydicom raises many types on damaged files
        raise UnreadableDicomdir(f"unreadable DICOMDIR: {type(exc).__name__}: {exc}") from exc
    root = path.parent
    refs = []
    for record in records:
        try:
            file_id = record.get("ReferencedFileID")
        except Exception:  # a damaged record must not lose the others
            continue
        if not file_id:
            continue
        parts = [str(file_id)] if isinstance(file_id, (str, bytes)) else [str(p) for p in file_id]
        # Some writers put the whole ID in one value with backslashes (or slashes) inside.
        parts = [piece.strip() for part in parts for piece in part.replace("/", "\\").split("\\") if piece.strip()]
        written = root.joinpath(*parts) if parts else root
        shown = messages.printable("/".join(parts))
        if not parts or any(p in (".", "..") or os.path.isabs(p) for p in parts):
            refs.append((written, f"referenced by {path.name} with a path outside its folder: {shown}"))
            continue
        found = find_referenced_file(root, parts)
        if found is None:
            refs.append((written, f"referenced by {path.name} but not found (looked for {shown} "
                                  "in any letter case)"))
        else:
            refs.append((found, None))
    return refs


def find_referenced_file(root: Path, parts: list[str]) -> Path | None:
    """The file a DICOMDIR in ``root`` means by the File ID components ``parts``, or None.

    Each component is matched exactly first, else ignoring letter case and an ISO 9660 version
    suffix (``;1``) or trailing dot on either side (``IM000001;1``, ``IM000001.`` and
    ``im000001`` are one file), as a CD copied to or mounted on a case-sensitive file system
    names them. Where several entries match, the one whose name sorts first is taken.
    """
    current = root
    for part in parts:
        exact = current / part
        if os.path.lexists(exact):
            current = exact
            continue
        wanted = _file_id_key(part)
        matches = sorted(name for name in _listing(str(current)) if _file_id_key(name) == wanted)
        if not matches:
            return None
        current = current / matches[0]
    return current if current.is_file() else None


def _file_id_key(name: str) -> str:
    """A File ID component compared without letter case, ISO 9660 version or trailing dot."""
    stem, sep, version = name.rpartition(";")
    if sep and version.isdigit():
        name = stem
    return name.rstrip(".").casefold()


@lru_cache(maxsize=256)
def _listing_cached(directory: str, mtime_ns: int) -> tuple[str, ...]:
    try:
        return tuple(os.listdir(directory))
    except OSError:
        return ()


def _listing(directory: str) -> tuple[str, ...]:
    """The names in ``directory`` (cached per modification time: a DICOMDIR lists thousands)."""
    try:
        mtime = os.stat(directory).st_mtime_ns
    except OSError:
        return ()
    return _listing_cached(directory, mtime)
