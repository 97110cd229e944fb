"""What a compressed frame's code stream says of its samples, read from its main header without decoding.

JPEG (ISO/IEC 10918-1 B.2.2 frame header) and JPEG-LS (ISO/IEC 14495-1 C.2.2, C.2.3) give the samples'
precision and, for JPEG-LS, the near-lossless bound NEAR; JPEG 2000 (ISO/IEC 15444-1 A.5.1 SIZ, A.6.1 COD)
gives the precision, the signedness and the wavelet's decomposition levels (not whether the stream is lossless:
the reversible 5-3 wavelet is lossy too when the stream is cut to a rate, see ``lossy_compression``).
``reduced_decode`` chooses its resolution from them, ``high_bit`` where the decoded samples sit in their words and
``lossy_compression`` whether a JPEG-LS stream was lossy, both from :func:`first_frame_header`.
"""
from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

#: 10918-1 start-of-frame markers (all processes; not DHT C4, JPG C8 or DAC CC) and JPEG-LS's SOF55 (F7).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}
_JPEG_LS_SOF = 0xF7
#: Markers that stand alone, without a length: TEM and the restart markers RST0–RST7 (10918-1 B.1.1.3).
_NO_LENGTH = frozenset({0x01, *range(0xD0, 0xD8)})

logger = logging.getLogger(__name__)


def first_frame(ds) -> bytes:
    """The first frame's code stream of the encapsulated pixel data of ``ds`` (PS3.5 A.4), whole: every fragment of
    a single-frame image (``reduced_decode`` decodes it). For a multi-frame image without a Basic Offset Table this
    joins every frame's fragments; a reader of the main header alone takes :func:`first_fragment`."""
    from pydicom.encaps import generate_frames

    return next(generate_frames(ds.PixelData, number_of_frames=1))


def first_fragment(ds) -> bytes:
    """The first fragment of the encapsulated pixel data of ``ds`` (PS3.5 A.4), the first bytes of the first frame's
    code stream, where its main header is: a copy of that fragment alone, never of the other frames (a 30-frame
    stream's first frame asked of pydicom without a frame index joined all 30)."""
    from io import BytesIO

    from pydicom.encaps import generate_fragments, parse_basic_offsets

    buffer = BytesIO(ds.PixelData)
    parse_basic_offsets(buffer)  # the Basic Offset Table item, read past
    return next(generate_fragments(buffer))


def first_frame_header(ds) -> JpegHeader | J2kHeader | None:
    """What the main header of the first frame's code stream of ``ds`` says: a :class:`JpegHeader` for a JPEG or
    JPEG-LS stream (SOI first), a :class:`J2kHeader` for a raw JPEG 2000 one (SOC first), read from its first
    fragment (:func:`first_fragment`); None for any other stream, and for one whose header cannot be read there
    (damaged, or split over fragments before its frame or SIZ and COD markers end: the caller's safe default
    holds, and the decode reports what is wrong)."""
    try:
        stream = first_fragment(ds)
        if stream[:2] == b"\xff\xd8":
            return jpeg_header(stream)
        if stream[:2] == b"\xff\x4f":
            return j2k_header(stream)
    except Exception as exc:  # damaged streams raise many types (struct, index, value errors)
        logger.debug("no code stream header (%s: %s)", type(exc).__name__, exc)
    return None


@dataclass(frozen=True)
class J2kHeader:
    """What the main header of a JPEG 2000 code stream says (ISO/IEC 15444-1 A.5.1 SIZ, A.6.1 COD)."""

    width: int
    height: int
    components: int
    precision: int
    signed: bool
    levels: int


def j2k_header(stream: bytes) -> J2kHeader:
    """The SIZ and COD markers of a raw code stream (SOC first; a JP2 box wrapper is refused).
    Raises ``ValueError`` when the stream does not start like one."""
    if stream[:4] != b"\xff\x4f\xff\x51":
        raise ValueError("not a raw JPEG 2000 code stream (no SOC followed by SIZ)")
    (length,) = struct.unpack(">H", stream[4:6])
    x, y, x0, y0 = struct.unpack(">IIII", stream[8:24])
    (components,) = struct.unpack(">H", stream[40:42])
    ssiz = stream[42]
    position, levels = 4 + length, None
    while position + 4 <= len(stream) and levels is None:
        marker, size = struct.unpack(">HH", stream[position:position + 4])
        if marker == 0xFF52:  # COD: Lcod, Scod, SGcod (4 bytes), then SPcod: levels first
            levels = stream[position + 9]
        elif marker == 0xFF90:  # SOT: the main header ended without a COD
            break
        position += 2 + size
    if levels is None:
        raise ValueError("no COD marker in the main header")
    return J2kHeader(x - x0, y - y0, components, (ssiz & 0x7F) + 1, bool(ssiz & 0x80), levels)


@dataclass(frozen=True)
class JpegHeader:
    """What a JPEG or JPEG-LS code stream's frame and first scan headers say."""

    #: Sample precision P in bits (10918-1 B.2.2, 14495-1 C.2.2).
    precision: int
    #: True for a JPEG-LS stream (SOF55).
    jpeg_ls: bool
    #: JPEG-LS's NEAR of the first scan (14495-1 C.2.3): 0 lossless, above 0 near-lossless (lossy); 0 for JPEG.
    near: int = 0


def jpeg_header(stream: bytes) -> JpegHeader:
    """The frame header and first scan header of a JPEG or JPEG-LS code stream (SOI first).
    Raises ``ValueError`` when the stream does not hold them before its first scan's data."""
    if stream[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG code stream (no SOI)")
    position, precision, jpeg_ls = 2, None, False
    while position + 4 <= len(stream):
        if stream[position] != 0xFF:
            raise ValueError(f"no marker at byte {position} of the JPEG header")
        marker = stream[position + 1]
        if marker == 0xFF:  # a fill byte before the marker (10918-1 B.1.1.2)
            position += 1
            continue
        if marker in _NO_LENGTH:
            position += 2
            continue
        (length,) = struct.unpack(">H", stream[position + 2:position + 4])
        if marker in _SOF_MARKERS:
            precision, jpeg_ls = stream[position + 4], marker == _JPEG_LS_SOF
        elif marker == 0xDA:  # SOS: Ls, Ns, Ns × (Cs, Tm), then for JPEG-LS NEAR, ILV, Al/Pt
            if precision is None:
                raise ValueError("a scan before the frame header")
            near_at = position + 5 + 2 * stream[position + 4]
            near = stream[near_at] if jpeg_ls and near_at < len(stream) else 0
            return JpegHeader(precision, jpeg_ls, near)
        position += 2 + length
    raise ValueError("no scan header in the JPEG code stream")
