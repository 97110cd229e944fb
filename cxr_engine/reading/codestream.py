"""What a compressed frame's code stream says of its samples, read from its main header without decoding.

JPEG (ISO/IEC 10918-1 B.2.2 frame header) and JPEG-LS (ISO/IEC 14495-1 C.2.2, C.2.3) give the samples'
precision and, for JPEG-LS, the near-lossless bound NEAR; JPEG 2000 (ISO/IEC 15444-1 A.5.1 SIZ, A.6.1 COD)
gives the precision, the signedness, the wavelet's decomposition levels and whether that wavelet is the
reversible 5-3 one. ``reduced_decode`` chooses its resolution from them, ``high_bit`` where the decoded
samples sit in their words, ``lossy_compression`` whether a stream that may be either was lossy.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

#: 10918-1 start-of-frame markers (all processes; not DHT C4, JPG C8 or DAC CC) and JPEG-LS's SOF55 (F7).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}
_JPEG_LS_SOF = 0xF7
#: Markers that stand alone, without a length: TEM and the restart markers RST0–RST7 (10918-1 B.1.1.3).
_NO_LENGTH = frozenset({0x01, *range(0xD0, 0xD8)})


def first_frame(ds) -> bytes:
    """The first frame's code stream of the encapsulated pixel data of ``ds`` (PS3.5 A.4)."""
    from pydicom.encaps import generate_frames

    return next(generate_frames(ds.PixelData, number_of_frames=1))


@dataclass(frozen=True)
class J2kHeader:
    """What the main header of a JPEG 2000 code stream says (ISO/IEC 15444-1 A.5.1 SIZ, A.6.1 COD)."""

    width: int
    height: int
    components: int
    precision: int
    signed: bool
    levels: int
    #: The COD's wavelet transformation (A.6.1, Table A.20): True for the reversible 5-3 filter, False for the
    #: irreversible 9-7 one (always lossy).
    reversible: bool = True


def j2k_header(stream: bytes) -> J2kHeader:
    """The SIZ and COD markers of a raw code stream (SOC first; a JP2 box wrapper is refused).
    Raises ``ValueError`` when the stream does not start like one."""
    if stream[:4] != b"\xff\x4f\xff\x51":
        raise ValueError("not a raw JPEG 2000 code stream (no SOC followed by SIZ)")
    (length,) = struct.unpack(">H", stream[4:6])
    x, y, x0, y0 = struct.unpack(">IIII", stream[8:24])
    (components,) = struct.unpack(">H", stream[40:42])
    ssiz = stream[42]
    position, levels, transform = 4 + length, None, 1
    while position + 4 <= len(stream) and levels is None:
        marker, size = struct.unpack(">HH", stream[position:position + 4])
        if marker == 0xFF52:  # COD: Lcod, Scod, SGcod (4 bytes), then SPcod: levels, xcb, ycb, style, transformation
            levels = stream[position + 9]
            transform = stream[position + 13] if position + 13 < len(stream) else 1
        elif marker == 0xFF90:  # SOT: the main header ended without a COD
            break
        position += 2 + size
    if levels is None:
        raise ValueError("no COD marker in the main header")
    return J2kHeader(x - x0, y - y0, components, (ssiz & 0x7F) + 1, bool(ssiz & 0x80), levels, transform == 1)


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
