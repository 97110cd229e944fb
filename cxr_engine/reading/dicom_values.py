"""Header values read defensively: a damaged or missing attribute gives an empty answer, never an error.

For the scan (``cxr_engine.reading.scanning``) and the pixel data layout check (``cxr_engine.reading.pixel_layout``),
which must judge thousands of files whatever their headers hold.
"""
from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from ..display_text import printable


def text_value(ds: Dataset, keyword: str) -> str:
    """The attribute's value as stripped text; multiple values joined with a backslash (the DICOM
    value delimiter, PS3.5 6.4); ``""`` when absent or unreadable. Control characters become
    U+FFFD (``display_text.printable``): these values are shown and written."""
    try:
        value = ds.get(keyword)
    except Exception:  # a malformed value must not lose the whole file
        return ""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, MultiValue)):
        return printable("\\".join(str(v).strip() for v in value))
    return printable(str(value).strip())


def int_value(ds: Dataset, keyword: str) -> int | None:
    """The attribute's value as an int; None when absent, empty or not a number."""
    try:
        value = ds.get(keyword)
        return None if value is None or value == "" else int(value)
    except Exception:
        return None


def file_meta(ds: Dataset) -> Dataset:
    """The file meta group (PS3.10 7.1), or an empty dataset for a file without one."""
    return getattr(ds, "file_meta", None) or Dataset()
