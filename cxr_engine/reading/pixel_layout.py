"""Is a DICOM file's pixel data whole? Judged from the file's layout, without decoding.

The pixel data element's tag, VR and length are read where the header ends (PS3.5 7.1: explicit
VR with a 4-byte length for OB/OW/…, 2-byte otherwise; implicit VR always 4-byte), its declared
length is compared with the bytes left in the file and, for native data, with what Rows × Columns ×
Number of Frames × Samples per Pixel × Bits Allocated call for; encapsulated (compressed) data is
walked item by item to its Sequence Delimitation Item (PS3.5 A.4). The reasons are worded by
``cxr_engine.messages``, so a cut file reads alike in the scan, the viewer and the CLI.
"""
from __future__ import annotations

import logging
import os
import struct
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from .. import messages
from .dicom_values import file_meta, int_value, text_value

logger = logging.getLogger(__name__)

#: What the layout check reads of the header (pydicom seeks past the values of all other elements).
_LAYOUT_TAGS = ["SOPClassUID", "Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "BitsAllocated"]


def expects_pixels(ds: Dataset) -> bool:
    """True for an image: Rows is present or the SOP class is an "... Image Storage"."""
    sop_class = text_value(ds, "SOPClassUID") or text_value(file_meta(ds), "MediaStorageSOPClassUID")
    return "Rows" in ds or "Image Storage" in messages.uid_text(sop_class)


#: Element tags of pixel data: Pixel Data, Float Pixel Data, Double Float Pixel Data.
_PIXEL_TAGS = {(0x7FE0, 0x0010), (0x7FE0, 0x0008), (0x7FE0, 0x0009)}
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_UNDEFINED_LENGTH = 0xFFFFFFFF
#: The Sequence Delimitation Item (FFFE,E0DD) with its zero length, little and big endian.
_SEQUENCE_ENDS = (b"\xfe\xff\xdd\xe0\x00\x00\x00\x00", b"\xff\xfe\xe0\xdd\x00\x00\x00\x00")


def pixel_data_problem(path: str | os.PathLike[str]) -> str | None:
    """A reason when the pixel data of the DICOM file at ``path`` is cut short, else None.

    Read from the file's layout, without decoding: the pixel data element's declared length
    against the bytes left in the file; for native data also against Rows × Columns × Number
    of Frames × Samples per Pixel × Bits Allocated; for encapsulated (compressed) data each
    fragment's declared length and the closing delimiter. None also for any file this cannot
    judge (no pixel data, unreadable header).
    """
    return inspect_pixel_data(Path(path))[1]


def inspect_pixel_data(path: Path) -> tuple[bool, str | None]:
    """``(the file has a pixel data element, the reason it is cut short or None)``: see
    :func:`pixel_data_problem`."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True, specific_tags=_LAYOUT_TAGS)
            start = fh.tell()
            if start >= size:
                return False, missing_pixel_data(ds, path, size) if expects_pixels(ds) else None
            implicit, little = getattr(ds, "original_encoding", (None, None))
            if implicit is None:
                return False, None
            order = "<" if little else ">"
            head = fh.read(12)
            if len(head) < 8:
                return False, messages.ends_before_pixel_data(size)
            group, element = struct.unpack(order + "HH", head[:4])
            if (group, element) not in _PIXEL_TAGS:
                return False, None
            if implicit:
                (length,), offset = struct.unpack(order + "L", head[4:8]), 8
            elif head[4:6] in _LONG_VRS:
                if len(head) < 12:
                    return True, messages.ends_before_pixel_data(size)
                (length,), offset = struct.unpack(order + "L", head[8:12]), 12
            else:
                (length,), offset = struct.unpack(order + "H", head[6:8]), 8
            value_start = start + offset
            present = max(0, size - value_start)
            if length == _UNDEFINED_LENGTH:
                return True, _encapsulated_problem(fh, value_start, size)
    except (OSError, EOFError, struct.error, ValueError, TypeError, AttributeError, KeyError):
        return False, None
    except Exception:  # pydicom raises many types on odd headers; this is only an explanation
        logger.debug("could not judge the pixel data of %s", path, exc_info=True)
        return False, None
    if present < length:
        return True, messages.truncated_pixel_data(present, length)
    expected = _native_size(ds)
    if (group, element) == (0x7FE0, 0x0010) and expected and length < expected:
        return True, messages.truncated_pixel_data(length, expected)
    return True, None


def missing_pixel_data(ds: Dataset, path: Path, size: int) -> str:
    """Why an image whose dataset (``ds``: Rows, Columns) reads to the end of its file (``size`` bytes) without
    pixel data gives none: the file holds none (``messages.no_pixel_data``) when it ends with a whole element,
    else it was cut short before it (``messages.ends_before_pixel_data``; pydicom stops without a word in the
    next element's tag)."""
    if _ends_whole(path, size):
        return messages.no_pixel_data(int_value(ds, "Rows"), int_value(ds, "Columns"))
    return messages.ends_before_pixel_data(size)


def _ends_whole(path: Path, size: int) -> bool:
    """Whether the DICOM file at ``path`` ends where its last top-level element does: a defined length ends at
    ``size``; an undefined one with its Sequence Delimitation Item, the file's last 8 bytes."""
    try:
        with open(path, "rb") as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True)
            last = ds.get_item(max(ds.keys()))
            if isinstance(last, RawDataElement) and last.length != _UNDEFINED_LENGTH:
                return last.value_tell + last.length == size
            fh.seek(max(0, size - 8))
            return fh.read(8) in _SEQUENCE_ENDS
    except Exception:  # an odd header: not judged whole
        logger.debug("could not tell whether %s ends with a whole element", path, exc_info=True)
        return False


def _native_size(ds: Dataset) -> int | None:
    """Bytes of uncompressed pixel data the header calls for, or None when it cannot say."""
    rows, columns = int_value(ds, "Rows"), int_value(ds, "Columns")
    bits = int_value(ds, "BitsAllocated")
    if not rows or not columns or not bits or rows < 0 or columns < 0 or bits < 0:
        return None
    frames = int_value(ds, "NumberOfFrames") or 1
    samples = int_value(ds, "SamplesPerPixel") or 1
    if frames < 1 or samples < 1:
        return None
    return (rows * columns * frames * samples * bits + 7) // 8


def _encapsulated_problem(fh: BinaryIO, start: int, size: int, max_items: int = 1_000_000) -> str | None:
    """Walk the items of encapsulated pixel data (always little endian, PS3.5 A.4)."""
    position = start
    for _ in range(max_items):
        fh.seek(position)
        item = fh.read(8)
        if len(item) < 8:
            # Cut between two fragments, or inside an item's tag: the delimiter (8 bytes) is missing.
            return messages.truncated_pixel_data(size - start, position - start + 8, encapsulated=True)
        group, element, length = struct.unpack("<HHL", item)
        if (group, element) == (0xFFFE, 0xE0DD):  # Sequence Delimitation Item: complete
            return None
        if (group, element) != (0xFFFE, 0xE000) or length == _UNDEFINED_LENGTH:
            return None  # not a layout this can judge; the decoder will say what it finds
        end = position + 8 + length
        if end > size:
            return messages.truncated_pixel_data(size - start, end - start + 8, encapsulated=True)
        position = end
    return None
