"""A DICOM file's header as a tree of display rows, for the reader's header viewer. No Qt here.

Every data element of the file meta information (group 0002) and of the data set, with its tag,
keyword, name, VR and value as safe text: non-printable characters escaped (a damaged or
crafted file cannot inject control characters), long values elided, binary values summarised
by their length, sequences (VR SQ, PS3.5 7.5) as items holding their own elements. Private data
elements (odd group, PS3.5 7.8) are marked. Values longer than ``DEFER_SIZE`` stay on disk where
pydicom can defer them (defined-length values; encapsulated pixel data is read).
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImageReadError
from ..messages import printable

#: Values longer than this many characters are elided (the full length is stated).
MAX_VALUE_CHARS = 160
#: Values longer than this many bytes stay on disk (pixel data, large private blobs).
DEFER_SIZE = "64 KB"
#: VRs whose value is binary: shown as their length and first bytes, never as text.
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "ox", "ob or ow", "OB or OW", "US or OW"})
_PREVIEW_BYTES = 16
#: What converting one damaged element's value may raise: that element shows the reason, the rest stays.
_VALUE_ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError, NotImplementedError,
                 UnicodeError, EOFError, LookupError, struct.error, zlib.error)


@dataclass(frozen=True)
class HeaderItem:
    """One item of a sequence: ``number`` counts from 1 as in PS3.5 7.5."""

    number: int
    elements: tuple["HeaderElement", ...]


@dataclass(frozen=True)
class HeaderElement:
    """One data element as the reader sees it.

    ``tag`` is ``(gggg,eeee)`` in hex; ``keyword`` and ``name`` come from the DICOM dictionary
    (PS3.6), for a private element from pydicom's private dictionary when its creator is known,
    else ``""`` and ``Private tag data`` / ``Unknown``; ``value`` is escaped, elided text;
    ``items`` holds a sequence's items (empty for any other VR).
    """

    tag: str
    keyword: str
    name: str
    vr: str
    value: str
    private: bool
    items: tuple[HeaderItem, ...] = ()

    def matches(self, text: str) -> bool:
        """True when ``text`` (case-insensitive) is in the tag, keyword, name or value."""
        needle = text.casefold()
        return any(needle in field.casefold() for field in (self.tag, self.tag.replace(",", ""), self.keyword,
                                                             self.name, self.value))


def read_header(path: str | Path) -> tuple[HeaderElement, ...]:
    """The file meta elements then the data set's, in tag order; pixel data is not read.

    Raises ``ImageReadError`` naming ``path`` and the reason when the file is not readable DICOM.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    from .read import is_dicom_file
    from .raster_io import RASTER_SUFFIXES

    path = Path(path)
    if path.suffix.lower() in RASTER_SUFFIXES and not is_dicom_file(path):
        raise ImageReadError(path, "PNG and JPEG files have no DICOM header")
    try:
        ds = pydicom.dcmread(path, force=True, defer_size=DEFER_SIZE)
        meta = header_elements(ds.file_meta) if getattr(ds, "file_meta", None) is not None else ()
        elements = header_elements(ds)
    except (InvalidDicomError, OSError) as exc:
        raise ImageReadError(path, f"not a readable DICOM file ({exc})") from exc
    except MemoryError as exc:
        raise ImageReadError(path, "not enough memory to read this header (damaged or crafted lengths?)") from exc
    except RecursionError as exc:
        raise ImageReadError(path, "damaged DICOM header (sequences nested too deeply)") from exc
    except _value_errors() as exc:
        raise ImageReadError(path, f"damaged DICOM header ({type(exc).__name__}: {printable(exc)})") from exc
    # Without the DICM prefix pydicom reads any bytes as some elements: demand a known one.
    if not meta and not any(element.keyword for element in elements):
        raise ImageReadError(path, "not a DICOM file (no DICM prefix and no standard data element)")
    return meta + elements


def header_elements(dataset) -> tuple[HeaderElement, ...]:
    """Rows for every element of a pydicom ``Dataset`` (or ``FileMetaDataset``), sequences included."""
    rows, errors = [], _value_errors()
    for tag in sorted(dataset.keys()):
        raw = dataset.get_item(tag)
        if getattr(raw, "value", True) is None and getattr(raw, "length", 0):
            rows.append(_deferred_row(dataset, tag, raw))  # left on disk by defer_size
            continue
        try:
            rows.append(_row(dataset[tag]))
        except errors as exc:  # one damaged value must not hide the others
            rows.append(_unreadable_row(tag, raw, exc))
    return tuple(rows)


def _value_errors() -> tuple[type[Exception], ...]:
    """``_VALUE_ERRORS`` and pydicom's own (imported late: the engine imports pydicom lazily)."""
    from pydicom.errors import BytesLengthException

    return _VALUE_ERRORS + (BytesLengthException,)


def _unreadable_row(tag, raw, exc: Exception) -> HeaderElement:
    from pydicom.tag import Tag

    tag = Tag(tag)
    reason = printable(f"{type(exc).__name__}: {exc}")
    return HeaderElement(_tag_text(tag), "", "Private tag data" if tag.is_private else "Unreadable",
                         str(getattr(raw, "VR", "") or ""), f"<cannot be read: {reason}>", bool(tag.is_private))


def _row(element) -> HeaderElement:
    vr = str(element.VR)
    private = bool(element.tag.is_private)
    keyword = element.keyword or ""
    name = element.name if element.name else ("Private tag data" if private else "Unknown")
    if vr == "SQ":
        items = tuple(HeaderItem(i, header_elements(item)) for i, item in enumerate(element.value, start=1))
        count = len(items)
        return HeaderElement(_tag_text(element.tag), keyword, name, vr, f"{count} item{'s' if count != 1 else ''}",
                             private, items)
    return HeaderElement(_tag_text(element.tag), keyword, name, vr, value_text(element.value, vr), private)


def _deferred_row(dataset, tag, raw) -> HeaderElement:
    from pydicom.datadict import dictionary_description, dictionary_keyword
    from pydicom.tag import Tag

    tag = Tag(tag)
    try:
        keyword, name = dictionary_keyword(tag), dictionary_description(tag)
    except KeyError:
        keyword, name = "", "Private tag data" if tag.is_private else "Unknown"
    vr = str(raw.VR or "")
    return HeaderElement(_tag_text(tag), keyword, name, vr, f"<{raw.length:,} bytes, not read>", bool(tag.is_private))


def value_text(value, vr: str = "", limit: int = MAX_VALUE_CHARS) -> str:
    """A value as one escaped line of at most ``limit`` characters.

    Multiple values are joined with ``\\`` as in the file (PS3.5 6.4); binary values read
    ``<N bytes: 01 02 …>``; an absent value is ``""``. Longer text ends ``… (N characters)``.
    """
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)) and (vr in BINARY_VRS or not vr):
        data = bytes(value)
        preview = " ".join(f"{b:02x}" for b in data[:_PREVIEW_BYTES])
        return f"<{len(data):,} bytes: {preview}{' …' if len(data) > _PREVIEW_BYTES else ''}>"
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
        if vr == "UI":
            text = _with_uid_name(text)
    text = printable(text, limit=None)
    if len(text) > limit:
        return f"{text[: limit - 1]}… ({len(text):,} characters)"
    return text


def _with_uid_name(uid: str) -> str:
    """A UID followed by its registered name (PS3.6 Annex A) when pydicom knows it."""
    from pydicom.uid import UID

    clean = uid.strip("\x00 ")
    if not clean.replace(".", "").isdigit():
        return uid
    name = UID(clean).name
    return f"{uid} ({name})" if name and name != clean else uid


def _tag_text(tag) -> str:
    return f"({tag.group:04X},{tag.element:04X})"


def filter_elements(elements: tuple[HeaderElement, ...], text: str) -> tuple[HeaderElement, ...]:
    """The elements matching ``text``, with a sequence kept (holding only its matching items'
    elements) when something inside it matches; all of them for an empty ``text``."""
    if not text.strip():
        return elements
    kept = []
    for element in elements:
        items = tuple(HeaderItem(item.number, inner) for item in element.items
                      if (inner := filter_elements(item.elements, text)))
        if element.matches(text):
            kept.append(element)
        elif items:
            kept.append(HeaderElement(element.tag, element.keyword, element.name, element.vr, element.value,
                                      element.private, items))
    return tuple(kept)
