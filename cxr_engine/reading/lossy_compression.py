"""Whether a film's pixels have been through lossy compression (PS3.3 C.7.6.1.1.5), and how it is said.

Lossy Image Compression (0028,2110) ``01`` says the pixels have been lossy compressed at some time, and once
set it stays (C.7.6.1.1.5: an image derived from such pixels says 01 too); Lossy Image Compression Ratio
(0028,2112) and Method (0028,2114) name each step, value for value. A film stored in a lossy transfer syntax is
lossy whatever its header says: JPEG Baseline and Extended (DCT, always lossy), JPEG-LS near-lossless unless its
code stream says NEAR 0, and JPEG 2000 (.91, Part 2's .93, HTJ2K's .203) unless its header says Lossy Image
Compression 00: even the reversible 5-3 wavelet loses bits when the stream is cut to a rate (quality layers),
and nothing in the stream's main header tells the two apart. JPEG 2000 Lossless (.90) holds only lossless streams.
It is a fact the reader sees, next to the film (the viewer's corner, the PDF's identification), never a warning:
it does not keep a film from the model.

A header's Ratio and Method are the source's, and a source may break their VRs (a ratio written ``10:1``, a method
in lower case): the reader is shown only the valid values, and the Secondary Capture copies the two lists only when
every value is valid (ratios in at most 16 characters, PS3.5 6.2), else neither (both Type 3; they correspond value
for value, so one cannot be kept without the other), keeping 01.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

from .codestream import JpegHeader, first_frame_header

logger = logging.getLogger(__name__)

#: How a stream of a syntax that may be lossy is known to be lossless: never (DCT), by its code stream (JPEG-LS
#: NEAR 0), or only by the header's own Lossy Image Compression 00 (JPEG 2000).
ALWAYS, NEAR_ZERO, HEADER_00 = "always lossy", "lossless when NEAR is 0", "lossless when the header says 00"
#: Transfer syntaxes that may be lossy (PS3.5 A.4), with their Lossy Image Compression Method defined term
#: (PS3.3 C.7.6.1.1.5.1) and what shows a stream of theirs lossless.
LOSSY_SYNTAXES: dict[str, tuple[str, str]] = {
    "1.2.840.10008.1.2.4.50": ("ISO_10918_1", ALWAYS),  # JPEG Baseline (Process 1): DCT
    "1.2.840.10008.1.2.4.51": ("ISO_10918_1", ALWAYS),  # JPEG Extended (Process 2 & 4): DCT
    "1.2.840.10008.1.2.4.81": ("ISO_14495_1", NEAR_ZERO),  # JPEG-LS Lossy (Near-Lossless)
    "1.2.840.10008.1.2.4.91": ("ISO_15444_1", HEADER_00),  # JPEG 2000: a rate-limited 5-3 stream is lossy too
    "1.2.840.10008.1.2.4.93": ("ISO_15444_2", HEADER_00),  # JPEG 2000 Part 2 multi-component
    "1.2.840.10008.1.2.4.203": ("ISO_15444_15", HEADER_00),  # High-Throughput JPEG 2000
}

#: How the reader is told each method (the defined terms of C.7.6.1.1.5.1 and the JPEG XL one).
METHOD_NAMES = {
    "ISO_10918_1": "JPEG", "ISO_14495_1": "JPEG-LS", "ISO_15444_1": "JPEG 2000", "ISO_15444_2": "JPEG 2000",
    "ISO_15444_15": "HTJ2K", "ISO_13818_2": "MPEG-2", "ISO_14496_10": "H.264", "ISO_23008_2": "HEVC",
    "ISO_18181_1": "JPEG XL",
}

#: Code String (PS3.5 Table 6.2-1): upper-case letters, digits, space and underscore, at most 16 characters.
_CODE_STRING = re.compile(r"[A-Z0-9 _]{1,16}")
#: Decimal String (PS3.5 Table 6.2-1): a fixed or floating point number, leading and trailing spaces allowed.
_DECIMAL_STRING = re.compile(r" *[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)? *")


@dataclass(frozen=True)
class LossyCompression:
    """The lossy compression a film's pixels have been through: Lossy Image Compression Ratio and Method values
    as the film's header has them (each may be empty: unknown; each may break its VR: see the module's text)."""

    ratios: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()

    def valid_ratios(self) -> tuple[str, ...]:
        """The ratios that are positive numbers, each a valid DS (:func:`ratio_as_ds`); the others left out."""
        return tuple(v for v in map(ratio_as_ds, self.ratios) if v)

    def valid_methods(self) -> tuple[str, ...]:
        """The methods that are valid CS values (upper case, at most 16 characters); the others left out."""
        return tuple(m for m in self.methods if _CODE_STRING.fullmatch(m))

    def dicom_values(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(Lossy Image Compression Ratio values, Method values) as a derived object may carry them: every value
        valid, ratios as DS (:func:`ratio_as_ds`); ``((), ())`` when any value is not, since the two lists correspond
        value for value (C.7.6.1.1.5) and a list with a value left out would pair the others wrongly."""
        ratios, methods = self.valid_ratios(), self.valid_methods()
        if (len(ratios), len(methods)) != (len(self.ratios), len(self.methods)):
            logger.info("Lossy Image Compression Ratio or Method holds a value its VR does not allow: both left out")
            return (), ()
        return ratios, methods

    def text(self) -> str:
        """``Lossy compressed (JPEG, 10:1)``: what the reader is shown, from the valid values only; methods and ratios
        left out when unknown."""
        methods = list(dict.fromkeys(METHOD_NAMES.get(m, m) for m in self.valid_methods()))
        ratios = [f"{_ratio(r)}:1" for r in self.valid_ratios()]
        detail = ", ".join(part for part in (" + ".join(methods), " + ".join(ratios)) if part)
        return f"Lossy compressed ({detail})" if detail else "Lossy compressed"


def ratio_as_ds(value: str) -> str:
    """A Lossy Image Compression Ratio value as a valid DS (PS3.5 Table 6.2-1): as written when it is one, a number
    longer than DS's 16 characters rounded to fit (``pydicom.valuerep.format_number_as_ds``); ``""`` when it is not
    a positive finite number written as DS allows (``10:1``, ``NaN``, ``1_0``)."""
    from pydicom.valuerep import format_number_as_ds

    text = str(value or "")
    if not _DECIMAL_STRING.fullmatch(text):
        return ""
    number = float(text)
    if not (math.isfinite(number) and number > 0):
        return ""
    text = text.strip()
    return text if len(text) <= 16 else format_number_as_ds(number)


def header_facts(ds) -> tuple[str, str, str]:
    """(Lossy Image Compression, Ratio, Method) of ``ds`` as ``ImageMetadata`` holds them: ``01`` when the header
    says so or the transfer syntax was lossy (:data:`LOSSY_SYNTAXES`), else the attribute's own value (``00``,
    ``""``); the ratio's and method's values as stored, joined by ``\\``, the method being the syntax's when the
    header names none for a film lossy by its syntax alone."""
    from ..display_text import printable
    from .header_checks import multi_values

    flag = printable(str(ds.get("LossyImageCompression", "") or "").strip()).upper()
    ratios = [printable(str(v).strip()) for v in multi_values(ds.get("LossyImageCompressionRatio"))]
    methods = [printable(str(v).strip()) for v in multi_values(ds.get("LossyImageCompressionMethod"))]
    syntax_method = _lossy_syntax_method(ds, flag)
    if syntax_method:
        flag = "01"
        if not any(methods) and len(ratios) <= 1:
            methods = [syntax_method]
    return flag, "\\".join(v for v in ratios if v), "\\".join(v for v in methods if v)


def lossy_compression(metadata) -> LossyCompression | None:
    """The lossy compression of the film ``metadata`` (``ImageMetadata``) describes; None when it is not known to
    have been lossy compressed (Lossy Image Compression not ``01``), as for a PNG or JPEG file."""
    if str(getattr(metadata, "lossy_image_compression", "") or "").strip().upper() != "01":
        return None
    ratios = str(getattr(metadata, "lossy_compression_ratio", "") or "")
    methods = str(getattr(metadata, "lossy_compression_method", "") or "")
    return LossyCompression(tuple(v for v in ratios.split("\\") if v), tuple(v for v in methods.split("\\") if v))


def lossy_compression_text(metadata) -> str:
    """``Lossy compressed (JPEG 2000, 10:1)`` for a film whose pixels have been lossy compressed, else ``""``."""
    lossy = lossy_compression(metadata)
    return lossy.text() if lossy else ""


def _ratio(value: str) -> str:
    """A ratio value as a short number (``10``, ``2.5``), ``""`` when it is not a positive number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return f"{number:g}" if math.isfinite(number) and number > 0 else ""


def _lossy_syntax_method(ds, flag: str) -> str:
    """The method defined term of the transfer syntax ``ds`` was stored in when that compression was, or may have
    been, lossy, else ``""``: always for a DCT syntax; for JPEG-LS near-lossless unless the first frame's code
    stream says NEAR 0 (taken to be lossy when it cannot be read); for JPEG 2000 unless the header's Lossy Image
    Compression ``flag`` is ``00`` (see the module's text)."""
    syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
    if syntax not in LOSSY_SYNTAXES:
        return ""
    method, lossless_when = LOSSY_SYNTAXES[syntax]
    if lossless_when == HEADER_00:
        return "" if flag == "00" else method
    if lossless_when == NEAR_ZERO and "PixelData" in ds:
        header = first_frame_header(ds)
        if isinstance(header, JpegHeader) and header.jpeg_ls and header.near == 0:
            return ""
    return method
