"""Different images that claim one SOP Instance UID.

A SOP Instance UID names one instance (PS3.3 C.12.1.1.1; PS3.5 9: globally unique), yet edited or
re-encoded files often keep the original's: ``Fake_MONOHR1.dcm`` is the SIIM film relabelled MONOCHROME1
under the same UID. Byte-identical files are one image stored twice (:mod:`cxr_engine.reading.copies`,
listed once); files that differ stay separate images, never merged, and a PACS that receives both keeps
only one of them. This module finds them so that every place that reports copies (CLI warnings, the app's
Problems list, the PDF) also says which images share a UID, and which one a UID in a report may mean.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .scanning import Instance


def uid_clashes(instances: Iterable["Instance"]) -> dict[str, tuple[Path, ...]]:
    """SOP Instance UID -> the paths (sorted, two or more) of the different files that carry it, among
    ``instances`` (after copies are folded: one file per image). The same file reached by two paths is
    one file; files without a UID (PNG, JPEG) take no part."""
    by_uid: dict[str, dict[str, Path]] = {}
    for instance in instances:
        if instance.sop_instance_uid:
            by_uid.setdefault(instance.sop_instance_uid, {}).setdefault(os.path.realpath(instance.path), instance.path)
    return {uid: tuple(sorted(files.values(), key=str)) for uid, files in by_uid.items() if len(files) > 1}


def clash_note(uid: str, paths: Iterable[Path]) -> str:
    """The warning for images that claim one UID (CLI warnings column and standard error, the app's
    Problems list, the PDF): ``two different files claim the same SOP Instance UID <uid>: <a>, <b>``.

    "Files", not "images": the files differ in their bytes, which one image re-encoded (another transfer
    syntax, as the bug cases' big- and little-endian twins) does as much as two different images do."""
    paths = list(paths)
    count = "two" if len(paths) == 2 else str(len(paths))
    return (f"{count} different files claim the same SOP Instance UID {uid}: "
            + ", ".join(str(path) for path in paths) + " (each kept as its own image)")


def clash_note_deidentified(count: int) -> str:
    """``clash_note`` for a de-identified report: no UID, no path (a file name may be a UID)."""
    others = "another of the opened files claims" if count == 2 else f"{count - 1} other opened files claim"
    return f"{others} this image's SOP Instance UID too (different pixels or header): each is kept as its own image"
