"""Whether a film's pixels have been through lossy compression (PS3.3 C.7.6.1.1.5), and how it is said.

Lossy Image Compression (0028,2110) ``01`` says the pixels have been lossy compressed at some time, and once
set it stays (C.7.6.1.1.5: an image derived from such pixels says 01 too); Lossy Image Compression Ratio
(0028,2112) and Method (0028,2114) name each step. A film stored in a lossy transfer syntax is lossy whatever
its header says: JPEG Baseline and Extended (DCT, always lossy), JPEG-LS near-lossless and JPEG 2000 unless their
code stream says otherwise (NEAR 0; the reversible 5-3 wavelet). It is a fact the reader sees, next to the
film (the viewer's corner, the PDF's identification), never a warning: it does not keep a film from the model.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from .codestream import first_frame, j2k_header, jpeg_header

logger = logging.getLogger(__name__)

#: Transfer syntaxes that may be lossy (PS3.5 A.4), with their Lossy Image Compression Method defined term
#: (PS3.3 C.7.6.1.1.5.1) and whether they always are.
LOSSY_SYNTAXES: dict[str, tuple[str, bool]] = {
    "1.2.840.10008.1.2.4.50": ("ISO_10918_1", True),  # JPEG Baseline (Process 1): DCT
    "1.2.840.10008.1.2.4.51": ("ISO_10918_1", True),  # JPEG Extended (Process 2 & 4): DCT
    "1.2.840.10008.1.2.4.81": ("ISO_14495_1", False),  # JPEG-LS Lossy (Near-Lossless): lossy unless NEAR is 0
    "1.2.840.10008.1.2.4.91": ("ISO_15444_1", False),  # JPEG 2000: lossy unless the 5-3 wavelet
    "1.2.840.10008.1.2.4.93": ("ISO_15444_2", False),  # JPEG 2000 Part 2 multi-component
    "1.2.840.10008.1.2.4.203": ("ISO_15444_15", False),  # High-Throughput JPEG 2000
}

#: How the reader is told each method (the defined terms of C.7.6.1.1.5.1 and the JPEG XL one).
METHOD_NAMES = {
    "ISO_10918_1": "JPEG", "ISO_14495_1": "JPEG-LS", "ISO_15444_1": "JPEG 2000", "ISO_15444_2": "JPEG 2000",
    "ISO_15444_15": "HTJ2K", "ISO_13818_2": "MPEG-2", "ISO_14496_10": "H.264", "ISO_23008_2": "HEVC",
    "ISO_18181_1": "JPEG XL",
}


@dataclass(frozen=True)
class LossyCompression:
    """The lossy compression a film's pixels have been through: Lossy Image Compression Ratio and Method values
    as the film's header has them (each may be empty: unknown)."""

    ratios: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()

    def text(self) -> str:
        """``Lossy compressed (JPEG, 10:1)``: what the reader is shown; methods and ratios left out when unknown."""
        methods = list(dict.fromkeys(METHOD_NAMES.get(m, m) for m in self.methods if m))
        ratios = [f"{_ratio(r)}:1" for r in self.ratios if _ratio(r)]
        detail = ", ".join(part for part in (" + ".join(methods), " + ".join(ratios)) if part)
        return f"Lossy compressed ({detail})" if detail else "Lossy compressed"


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
    syntax_method = _lossy_syntax_method(ds)
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


def _lossy_syntax_method(ds) -> str:
    """The method defined term of the transfer syntax ``ds`` was stored in when that compression was lossy, else
    ``""``: always for a DCT syntax; for JPEG-LS and JPEG 2000 unless the first frame's code stream says lossless
    (NEAR 0, the reversible wavelet), or when it cannot be read."""
    syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
    if syntax not in LOSSY_SYNTAXES:
        return ""
    method, always = LOSSY_SYNTAXES[syntax]
    if always or "PixelData" not in ds:
        return method
    try:
        stream = first_frame(ds)
        if stream[:2] == b"\xff\xd8":
            return method if jpeg_header(stream).near > 0 else ""
        if stream[:2] == b"\xff\x4f":
            return "" if j2k_header(stream).reversible else method
    except Exception as exc:  # a damaged stream: the syntax may be lossy, so it is taken to be
        logger.debug("lossy compression taken from the transfer syntax (%s: %s)", type(exc).__name__, exc)
    return method
