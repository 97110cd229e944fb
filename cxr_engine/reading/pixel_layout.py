"""Is a DICOM file's pixel data whole? Judged from the file's layout, without decoding.

The pixel data element's tag, VR and length are read where the header ends (PS3.5 7.1: explicit
VR with a 4-byte length for OB/OW/…, 2-byte otherwise; implicit VR always 4-byte), its declared
length is compared with the bytes left in the file and, for native data, with what Rows × Columns ×
Number of Frames × Samples per Pixel × Bits Allocated call for (2 samples a pixel where chrominance is
subsampled, YBR_FULL_422: PS3.3 C.7.6.3.1.2); encapsulated (compressed) data is
walked item by item to its Sequence Delimitation Item (PS3.5 A.4). The reasons are worded by
``cxr_engine.messages``, so a cut file reads alike in the scan, the viewer and the CLI.

A data set stored deflated (Deflated Explicit VR Little Endian, PS3.5 A.5) is judged on its inflated
bytes, inflated here up to a bound (:func:`max_inflated_bytes`): pydicom inflates the whole data set
into memory before it reads a single element, so a deflate bomb is refused before pydicom sees it. The
inflated bytes stream past (:class:`_InflatedDataSet`): they are counted, and only what a check reads (the
header's elements it asks for, the pixel data element's header, each fragment's item header) is held, so
refusing a bomb costs a few megabytes, not the bound.
"""
from __future__ import annotations

import io
import logging
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset, read_preamble
from pydicom.tag import Tag
from pydicom.uid import DeflatedExplicitVRLittleEndian

from .. import messages
from .dicom_values import file_meta, int_value, text_value

logger = logging.getLogger(__name__)

#: What the layout check reads of the header (pydicom seeks past the values of all other elements).
_LAYOUT_TAGS = ["SOPClassUID", "Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "BitsAllocated",
                "PhotometricInterpretation"]


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
#: Photometric interpretations whose native encoding stores Cb and Cr once for each two pixels of a row
#: (PS3.3 C.7.6.3.1.2).
_SUBSAMPLED_422 = {"YBR_FULL_422", "YBR_PARTIAL_422"}
#: Photometric interpretations used for encapsulated (compressed) pixel data only (PS3.3 C.7.6.3.1.2).
_COMPRESSED_ONLY = {"YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT"}
#: Room for the header (icons, overlays, private data) in the bound on an inflated data set.
_HEADER_ROOM = 64 * 2**20
#: The most bytes inflated at a time, and the most read from the deflated file at a time.
_INFLATE_CHUNK = 2**20
#: Inflated bytes kept before the read position, for the short seeks back a reader makes (pydicom rewinds an
#: element's header at ``stop_when``); a seek further back inflates again from the start.
_KEPT_BEHIND = 2**16


def pixel_data_problem(path: str | os.PathLike[str]) -> str | None:
    """A reason when the pixel data of the DICOM file at ``path`` is cut short, else None.

    Read from the file's layout, without decoding: the pixel data element's declared length
    against the bytes left in the file; for native data also against the size the Image Pixel
    module calls for (:func:`_native_size`); for encapsulated (compressed) data each
    fragment's declared length and the closing delimiter. A deflated data set (PS3.5 A.5) is
    judged on its inflated bytes, and refused when it inflates beyond :func:`max_inflated_bytes`.
    None also for any file this cannot judge (no pixel data, unreadable header).
    """
    return inspect_pixel_data(Path(path))[1]


def deflated_problem(path: str | os.PathLike[str], fh: BinaryIO | None = None) -> str | None:
    """For a DICOM file whose data set is stored deflated (PS3.5 A.5), why it cannot be read: it inflates
    beyond :func:`max_inflated_bytes`, or its pixel data, judged on the inflated bytes, is cut short or
    missing. None for a whole deflated file and for any file not stored deflated.

    Call it before pydicom reads the file: pydicom inflates the whole data set into memory, unbounded,
    before it reads a single element, and it cannot read even the header of a deflate stream that was
    cut short, so the scan refuses such a file with this reason rather than listing it. ``fh``, the file
    already open (the scan's), spares a second open; its position is not kept. A file whose first bytes
    show it is not deflated (:func:`may_be_deflated`) costs one read of at most 8 KiB.
    """
    try:
        if fh is not None:
            deflated = may_be_deflated(fh) and _deflated_meta(fh) is not None
        else:
            with open(path, "rb") as own:
                deflated = may_be_deflated(own) and _deflated_meta(own) is not None
    except OSError:  # the reader will say it cannot open the file
        return None
    return inspect_pixel_data(Path(path))[1] if deflated else None


#: Bytes read to see whether a file's meta group can declare Deflated Explicit VR Little Endian.
_META_PEEK = 8192
_DEFLATED_UID = DeflatedExplicitVRLittleEndian.encode("ascii")


def may_be_deflated(fh: BinaryIO) -> bool:
    """Whether the file in ``fh`` may be stored deflated, from its first bytes alone (no parsing): a deflated
    data set needs the file meta (PS3.10 7.1: ``DICM`` at byte 128), and its group 0002 then holds the transfer
    syntax's UID; when the meta group's length (0002,0000) is given and the group ends within the bytes read,
    the UID must lie in it. True when that cannot be told from :data:`_META_PEEK` bytes (the full check
    follows). ``fh``'s position is not kept."""
    fh.seek(0)
    head = fh.read(_META_PEEK)
    if head[128:132] != b"DICM":
        return False
    group_end = len(head)
    if head[132:138] == b"\x02\x00\x00\x00UL" and len(head) >= 144:  # (0002,0000) UL, explicit VR little endian
        group_end = 144 + struct.unpack_from("<I", head, 140)[0]
        if group_end > len(head):
            return True
    elif len(head) == _META_PEEK:  # no group length, and the meta group may run on past the bytes read
        return True
    return _DEFLATED_UID in head[132:group_end]


def max_inflated_bytes() -> int:
    """The most bytes a deflated data set (PS3.5 A.5) may inflate to: the largest image the reader takes
    (``dicom_io.MAX_PIXELS`` samples of up to 4 bytes) plus room for its header."""
    from .dicom_io import MAX_PIXELS  # late: dicom_io imports numpy and the decoders

    return MAX_PIXELS * 4 + _HEADER_ROOM


def inflated_too_large(limit: int) -> str:
    """A deflated data set inflates to more than ``limit`` bytes (:func:`max_inflated_bytes`)."""
    return (f"deflated DICOM data set too large: it inflates to more than {limit:,} bytes, more than the "
            "largest image this program reads (a damaged file or a deflate bomb?)")


def inspect_pixel_data(path: Path) -> tuple[bool, str | None]:
    """``(the file has a pixel data element, the reason it is cut short or None)``: see
    :func:`pixel_data_problem`."""
    try:
        with open(path, "rb") as fh:
            meta = _deflated_meta(fh)
            if meta is not None:
                return _inspect_deflated(fh, meta)
            fh.seek(0)
            size = os.fstat(fh.fileno()).st_size
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True, specific_tags=_LAYOUT_TAGS)
            if fh.tell() >= size:
                return False, missing_pixel_data(ds, path, size) if expects_pixels(ds) else None
            return _inspect_element(fh, ds, fh.tell(), size)
    except (OSError, EOFError, struct.error, ValueError, TypeError, AttributeError, KeyError, zlib.error):
        return False, None
    except Exception:  # pydicom raises many types on odd headers; this is only an explanation
        logger.debug("could not judge the pixel data of %s", path, exc_info=True)
        return False, None


def _inspect_deflated(fh: BinaryIO, meta: FileMetaDataset) -> tuple[bool, str | None]:
    """:func:`inspect_pixel_data` for a data set stored deflated (PS3.5 A.5), ``fh`` at its first byte
    after the file meta ``meta``: the same checks on the inflated bytes, which are refused past
    :func:`max_inflated_bytes`."""
    limit = max_inflated_bytes()
    stream = _InflatedDataSet(fh, limit)
    try:
        size, stream_ends = stream.measure()
    except InflatedTooLarge:
        return False, inflated_too_large(limit)
    ds = read_dataset(stream, is_implicit_VR=False, is_little_endian=True, stop_when=_at_pixel_data,
                      specific_tags=[Tag(keyword) for keyword in _LAYOUT_TAGS])
    ds.file_meta = meta
    if stream.tell() < size:
        return _inspect_element(stream, ds, stream.tell(), size)
    if not expects_pixels(ds):
        return False, None
    if stream_ends and _inflated_ends_whole(stream, size):
        return False, messages.no_pixel_data(int_value(ds, "Rows"), int_value(ds, "Columns"))
    return False, messages.ends_before_pixel_data(os.fstat(fh.fileno()).st_size)


def _inspect_element(fh: BinaryIO, ds: Dataset, start: int, size: int) -> tuple[bool, str | None]:
    """:func:`inspect_pixel_data` from the element at ``start`` in ``fh`` (``size`` bytes long), the
    header ``ds`` read up to it: its tag, VR and length (PS3.5 7.1), then the value's bytes."""
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None:
        return False, None
    order = "<" if little else ">"
    fh.seek(start)
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
    if length == _UNDEFINED_LENGTH:
        return True, _encapsulated_problem(fh, value_start, size)
    present = max(0, size - value_start)
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
    next element's tag). For a file not stored deflated (:func:`_inspect_deflated` judges those)."""
    if _ends_whole(path, size):
        return messages.no_pixel_data(int_value(ds, "Rows"), int_value(ds, "Columns"))
    return messages.ends_before_pixel_data(size)


def _ends_whole(path: Path, size: int) -> bool:
    """Whether the DICOM file at ``path`` ends where its last top-level element does (:func:`_last_element_ends`)."""
    try:
        with open(path, "rb") as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True)
            return _last_element_ends(ds, fh, size)
    except Exception:  # an odd header: not judged whole
        logger.debug("could not tell whether %s ends with a whole element", path, exc_info=True)
        return False


def _inflated_ends_whole(stream: BinaryIO, size: int) -> bool:
    """:func:`_ends_whole` for an inflated data set (PS3.5 A.5) held in ``stream``, ``size`` bytes long."""
    try:
        stream.seek(0)
        # values past the chunk size are skipped, not read: only where the last element ends matters
        ds = read_dataset(stream, is_implicit_VR=False, is_little_endian=True, stop_when=_at_pixel_data,
                          defer_size=_INFLATE_CHUNK)
        return _last_element_ends(ds, stream, size)
    except Exception:  # an odd header: not judged whole
        logger.debug("could not tell whether an inflated data set ends with a whole element", exc_info=True)
        return False


def _last_element_ends(ds: Dataset, fh: BinaryIO, size: int) -> bool:
    """Whether the last top-level element of ``ds``, read from ``fh``, ends at ``size``: a defined length
    there; an undefined one with its Sequence Delimitation Item, the last 8 bytes."""
    last = ds.get_item(max(ds.keys()))
    if isinstance(last, RawDataElement) and last.length != _UNDEFINED_LENGTH:
        return last.value_tell + last.length == size
    fh.seek(max(0, size - 8))
    return fh.read(8) in _SEQUENCE_ENDS


def _deflated_meta(fh: BinaryIO) -> FileMetaDataset | None:
    """The file meta group of the file in ``fh`` (PS3.10 7.1: the preamble, ``DICM``, then group 0002 in
    explicit VR little endian) when it declares Deflated Explicit VR Little Endian (PS3.5 A.5), ``fh``
    then left where the deflated data set begins; None for any other file, or a meta group that does not
    read (the reader will say what it finds)."""
    try:
        fh.seek(0)
        read_preamble(fh, force=True)
        meta = read_dataset(fh, is_implicit_VR=False, is_little_endian=True,
                            stop_when=lambda tag, vr, length: tag >> 16 != 0x0002)
        syntax = text_value(meta, "TransferSyntaxUID").rstrip("\0 ")
    except OSError:
        raise
    except Exception:  # pydicom raises many types on odd headers
        logger.debug("could not read the file meta", exc_info=True)
        return None
    return FileMetaDataset(meta) if syntax == DeflatedExplicitVRLittleEndian else None


class InflatedTooLarge(ValueError):
    """A deflated data set inflates to more bytes than the bound (:func:`max_inflated_bytes`)."""


class _InflatedDataSet:
    """The data set that follows the file meta in ``fh`` (PS3.5 A.5: a raw deflate stream, RFC 1951, without a
    zlib header), as a read-only file of its inflated bytes (``read``, ``seek``, ``tell``: what pydicom's
    ``read_dataset`` and the checks here use) that never holds them whole.

    Bytes are inflated as a read reaches them, at most ``_INFLATE_CHUNK`` at a time (zlib's ``max_length``: a
    small deflated chunk never becomes a large one in memory), and dropped once ``_KEPT_BEHIND`` behind the
    position: a seek forward skips bytes by inflating and counting them, a seek back past what is kept inflates
    again from the start. :class:`InflatedTooLarge` as soon as more than ``limit`` bytes have been inflated.
    """

    def __init__(self, fh: BinaryIO, limit: int) -> None:
        self._fh, self._start, self._limit = fh, fh.tell(), limit
        self._position = 0
        self._measured: tuple[int, bool] | None = None
        self._restart()

    def _restart(self) -> None:
        self._fh.seek(self._start)
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._inflated = 0  # bytes inflated so far
        self._kept, self._kept_at = b"", 0  # the inflated bytes held, from position ``_kept_at``
        self._input_ends = False

    def measure(self) -> tuple[int, bool]:
        """(the inflated size in bytes, whether the deflate stream ends: False when the file was cut short),
        counted by inflating the rest of the stream once and holding none of it; :class:`InflatedTooLarge` past
        the limit."""
        if self._measured is None:
            while self._next_chunk() is not None:
                pass
            self._kept, self._kept_at = b"", self._inflated
            self._measured = self._inflated, self._inflater.eof
        return self._measured

    def _next_chunk(self) -> bytes | None:
        """Up to ``_INFLATE_CHUNK`` more inflated bytes, counted; None when the stream has no more (its end, or
        the end of the file). :class:`InflatedTooLarge` past the limit."""
        out = b""
        while not out:
            if self._inflater.eof or self._input_ends:
                return None
            data = self._inflater.unconsumed_tail or self._fh.read(_INFLATE_CHUNK)
            if data:
                out = self._inflater.decompress(data, _INFLATE_CHUNK)
            else:  # the file ends: what zlib still holds (a back-reference's few bytes at most)
                out, self._input_ends = self._inflater.flush(), True
        self._inflated += len(out)
        if self._inflated > self._limit:
            raise InflatedTooLarge(inflated_too_large(self._limit))
        return out

    def _inflate_to(self, wanted: int | None) -> None:
        """Inflate until position ``wanted`` (None: the end) is held, keeping the bytes from ``_KEPT_BEHIND``
        before the position on and dropping the others."""
        keep_from = max(self._position - _KEPT_BEHIND, 0)
        pieces, pieces_at = [self._kept], self._kept_at
        while wanted is None or self._inflated < wanted:
            out = self._next_chunk()
            if out is None:
                break
            if self._inflated <= keep_from:  # all of it before what is kept: counted only
                pieces, pieces_at = [], self._inflated
            else:
                pieces.append(out)
        drop = max(keep_from - pieces_at, 0)
        self._kept, self._kept_at = b"".join(pieces)[drop:], pieces_at + drop

    def read(self, size: int = -1) -> bytes:
        if self._position < self._kept_at:
            self._restart()
        wanted = None if size < 0 else self._position + size
        if wanted is None or self._inflated < wanted:
            self._inflate_to(wanted)
        start = self._position - self._kept_at
        data = self._kept[start:] if wanted is None else self._kept[start:start + size]
        self._position += len(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = self.measure()[0] if whence == io.SEEK_END else self._position if whence == io.SEEK_CUR else 0
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position


def _at_pixel_data(tag: int, vr: str | None, length: int) -> bool:
    """``read_dataset``'s ``stop_when``: stop before the pixel data element, as ``stop_before_pixels`` does."""
    return (tag >> 16, tag & 0xFFFF) in _PIXEL_TAGS


def _native_size(ds: Dataset) -> int | None:
    """Bytes of uncompressed pixel data the header calls for, or None when it cannot say.

    Rows × Columns × Number of Frames × Samples per Pixel × Bits Allocated, except where the
    Photometric Interpretation subsamples chrominance (PS3.3 C.7.6.3.1.2): YBR_FULL_422 and the
    retired YBR_PARTIAL_422 store, for each two pixels of a row, two Y samples then one Cb and one
    Cr, 4 samples where 3 × 2 are described. For an odd Columns, which the pairs leave undefined,
    the smaller count (Rows × Columns × 2 samples, as pydicom decodes it) so that no file the
    decoder reads is refused. None for an interpretation that exists only compressed (YBR_PARTIAL_420,
    YBR_ICT, YBR_RCT): it has no native layout to count.
    """
    rows, columns = int_value(ds, "Rows"), int_value(ds, "Columns")
    bits = int_value(ds, "BitsAllocated")
    if not rows or not columns or not bits or rows < 0 or columns < 0 or bits < 0:
        return None
    frames = int_value(ds, "NumberOfFrames") or 1
    samples = int_value(ds, "SamplesPerPixel") or 1
    if frames < 1 or samples < 1:
        return None
    photometric = text_value(ds, "PhotometricInterpretation").upper()
    if photometric in _COMPRESSED_ONLY:
        return None
    if photometric in _SUBSAMPLED_422 and samples == 3:
        samples = 2  # Y Y Cb Cr for each two pixels
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
